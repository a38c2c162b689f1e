#!/usr/bin/env node
/**
 * The browser bundle: dist/browser/{index.js, engineWorker.js, chunks} as ES modules with the wasm
 * kernels and WGSL shaders inlined (src/**\/*.generated.ts), and assets/qwen.tiktoken.gz copied
 * beside them (fetched relative to the module, for synthetic models). Needs `npm run build:gen`
 * first (the generated sources). Prints the sizes.
 */
import { rolldown } from 'rolldown';
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/browser');
const minify = !process.argv.includes('--no-minify');

for (const f of ['src/backend/cpu/kernels.generated.ts', 'src/backend/webgpu/shaders.generated.ts']) {
  if (!existsSync(join(root, f))) {
    console.error(`missing ${f}: run \`npm run build:wasm && npm run build:gen\` first`);
    process.exit(1);
  }
}

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
