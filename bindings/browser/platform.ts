/**
 * The browser Platform: checkpoints behind a URL prefix (HTTP Range), assets fetched from the
 * package's assets/ folder. createWorker / gpu are added by the CPU and WebGPU bindings.
 */
import { QwenRtError } from '../../src/errors.js';
import type { Platform } from '../../src/platform.js';
import { fetchSource, type FetchSourceOptions } from './fetchSource.js';

export interface BrowserPlatformOptions extends FetchSourceOptions {
  /**
   * Where assets/ is served. Default: the package's assets/ relative to this module
   * (dist/bindings/browser/platform.js → ../../../assets/); set it when a bundler moves modules.
   */
  assetsBase?: string;
}

// scripts/build-browser.mjs defines this: the bundle keeps assets/ beside its own files.
declare const __QWEN_RT_ASSETS__: string | undefined;

export function createBrowserPlatform(opts: BrowserPlatformOptions = {}): Platform {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const rel = typeof __QWEN_RT_ASSETS__ === 'string' ? __QWEN_RT_ASSETS__ : '../../../assets/';
  const assetsBase = opts.assetsBase ?? new URL(rel, import.meta.url).href;
  const pageBase = (globalThis as { location?: { href: string } }).location?.href;
  return {
    name: 'browser',
    async openSource(location: string) {
      return fetchSource(pageBase ? new URL(location, pageBase).href : location, opts);
    },
    hardwareConcurrency() {
      return (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency || 1;
    },
    async readAsset(name: string) {
      const url = new URL(name, assetsBase).href;
      let res: Response;
      try {
        res = await doFetch(url);
      } catch (cause) {
        throw new QwenRtError('E_ASSET', `cannot fetch asset ${url}: ${(cause as Error).message}`, { cause });
      }
      if (!res.ok) throw new QwenRtError('E_ASSET', `cannot fetch asset ${url}: HTTP ${res.status}`);
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}

export const browserPlatform: Platform = createBrowserPlatform();
