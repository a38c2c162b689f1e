#!/usr/bin/env node
/**
 * The browser bundle: dist/browser/{index.js, engineWorker.js, chunks} as ES modules with the wasm
 * kernels and WGSL shaders inlined (src/**\/*.generated.ts), and assets/qwen.tiktoken.gz copied
 * beside them (fetched relative to the module, for synthetic models). Regenerates the generated
 * sources first (needs build/qwen-rt.wasm from `npm run build:wasm`). Prints the sizes.
 */
import { rolldown } from 'rolldown';
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/browser');
const minify = !process.argv.includes('--no-minify');

// The bundle inlines src/**/*.generated.ts: regenerate them from build/qwen-rt.wasm and wgsl/ so
// it never ships stale shaders (cheap; the wasm itself comes from `npm run build:wasm`).
if (!existsSync(join(root, 'build/qwen-rt.wasm'))) {
  console.error('missing build/qwen-rt.wasm: run `npm run build:wasm` first');
  process.exit(1);
}
execFileSync(process.execPath, [join(root, 'scripts/generate-assets.mjs')], { stdio: 'ignore' });

rmSync(out, { recursive: true, force: true });
const bundle = await rolldown({
  input: {
    index: join(root, 'bindings/browser/index.ts'),
    engineWorker: join(root, 'bindings/browser/engineWorker.ts'),
  },
  platform: 'browser',
  resolve: { extensionAlias: { '.js': ['.ts', '.js'] } },
  transform: { define: { __QWEN_RT_ASSETS__: JSON.stringify('./assets/') } },
  logLevel: 'warn',
});
await bundle.write({ dir: out, format: 'esm', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js', minify, sourcemap: true });
await bundle.close();
mkdirSync(join(out, 'assets'), { recursive: true });
copyFileSync(join(root, 'assets/qwen.tiktoken.gz'), join(out, 'assets/qwen.tiktoken.gz'));

let total = 0;
let gz = 0;
const rows = [];
const walk = (d) => {
  for (const f of readdirSync(d)) {
    const p = join(d, f);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.js')) {
      const n = statSync(p).size;
      const g = gzipSync(readFileSync(p)).length;
      total += n;
      gz += g;
      rows.push(`${p.slice(out.length + 1).padEnd(32)} ${(n / 1024).toFixed(1).padStart(8)} KiB  (gzip ${(g / 1024).toFixed(1)} KiB)`);
    }
  }
};
walk(out);
console.log(rows.join('\n'));
console.log(`JS total ${(total / 1024).toFixed(1)} KiB (gzip ${(gz / 1024).toFixed(1)} KiB); assets/qwen.tiktoken.gz ${(statSync(join(out, 'assets/qwen.tiktoken.gz')).size / 1024).toFixed(1)} KiB`);
