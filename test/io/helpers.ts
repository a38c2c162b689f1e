// Shared helpers for the io tests: fixture paths, in-memory sources, hand-built safetensors.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FileSource } from '../../src/io/source.js';

export const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));
export const BF16_DIR = `${FIXTURES}models/qwen-tiny-bf16`;
export const INT4_DIR = `${FIXTURES}models/qwen-tiny-int4`;

export function manifest(): { models: Record<string, { tensor_sha256: Record<string, string>; model_safetensors_size: number }> } {
  return JSON.parse(readFileSync(`${FIXTURES}manifest.json`, 'utf8'));
}

/** A FileSource over in-memory files; `fallback` serves everything not in `files`. */
export function memorySource(files: Record<string, Uint8Array | string>, fallback?: FileSource, location = 'mem:'): FileSource {
  const bytes = new Map(Object.entries(files).map(([k, v]) => [k, typeof v === 'string' ? new TextEncoder().encode(v) : v]));
  return {
    location,
    async size(name) {
      const b = bytes.get(name);
      if (b) return b.length;
      return fallback ? fallback.size(name) : undefined;
    },
    async read(name, offset, dst) {
      const b = bytes.get(name);
      if (!b) {
        if (!fallback) throw new Error(`no ${name}`);
        return fallback.read(name, offset, dst);
      }
      if (offset + dst.length > b.length) throw new Error(`short read of ${name}`);
      dst.set(b.subarray(offset, offset + dst.length));
    },
    // closes the fallback's open files
    close: async () => fallback?.close?.(),
  };
}

/** 8-byte LE length + header text (padded with spaces to 8) + data. `lengthOverride` writes a different length. */
export function safetensorsBytes(header: unknown, data: Uint8Array, opts: { lengthOverride?: number; raw?: string } = {}): Uint8Array {
  let text = opts.raw ?? JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + data.length);
  const dv = new DataView(out.buffer);
  const len = opts.lengthOverride ?? h.length;
  dv.setUint32(0, len % 2 ** 32, true);
  dv.setUint32(4, Math.floor(len / 2 ** 32), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** Header JSON + data area of a real safetensors file. */
export function splitSafetensors(file: Uint8Array): { header: Record<string, any>; data: Uint8Array } {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))), data: file.subarray(8 + n) };
}

export async function catchError(p: Promise<unknown> | (() => unknown)): Promise<any> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  throw new Error('expected an error, none was thrown');
}
