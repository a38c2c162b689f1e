/**
 * Headless Chromium for the browser tests: Debian's /usr/bin/chromium through playwright-core,
 * WebGPU on SwiftShader, a fresh user-data-dir per run, the bundle served by demo/serve.mjs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
// @ts-expect-error plain JS module without types
import { startServer as startServerJs } from '../../demo/serve.mjs';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';

/** The flags that work here (headless, root, offline, WebGPU through SwiftShader's Vulkan). */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export interface LogEntry {
  method: string;
  path: string;
  range: string | null;
  status: number;
  bytes: number;
}

export interface TestServer {
  url: string;
  port: number;
  log: LogEntry[];
  close(): Promise<void>;
}

export interface ServerOptions {
  mounts?: Record<string, string>;
  files?: Record<string, string | Uint8Array>;
  onRequest?: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, entry: LogEntry) => boolean;
}

export const startServer = startServerJs as (opts?: ServerOptions) => Promise<TestServer>;

/** Builds dist/browser (the bundle under test). */
export function buildBundle(): void {
  execFileSync(process.execPath, [join(ROOT, 'scripts/build-browser.mjs')], { cwd: ROOT, stdio: 'pipe' });
}

export interface Browser {
  ctx: BrowserContext;
  page: Page;
  /** Page console lines and errors (shown when a test fails). */
  messages: string[];
  close(): Promise<void>;
}

export async function launch(): Promise<Browser> {
  const dir = mkdtempSync(join(tmpdir(), 'qwen-rt-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1000, height: 900 },
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const messages: string[] = [];
  page.on('console', (m) => messages.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => messages.push(`pageerror: ${e.message}`));
  return {
    ctx,
    page,
    messages,
    async close() {
      await ctx.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
