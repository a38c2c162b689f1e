/**
 * A minimal GGUF v3 writer (the llama.cpp file format): key/value metadata, tensor infos, then
 * tensor data aligned to 32 bytes. Tensor bytes are produced one tensor at a time by a callback
 * and streamed to the file, so multi-GB models never sit in memory.
 */
import { open } from 'node:fs/promises';

/** ggml tensor types used here (ggml.h enum ggml_type). */
export const GGML_TYPE = { F32: 0, F16: 1, Q4_0: 2 } as const;
export type GgmlType = (typeof GGML_TYPE)[keyof typeof GGML_TYPE];

/** GGUF metadata value types (gguf.h enum gguf_type). */
const T = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;

export type GgufValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: string[] }
  | { type: 'i32[]'; value: ArrayLike<number> };

export interface GgufTensor {
  name: string;
  /** ggml order: ne[0] is the contiguous (innermost) dimension, i.e. torch shape reversed. */
  ne: number[];
  type: GgmlType;
  byteLength: number;
  /** Produces the tensor's bytes (exactly byteLength). */
  data: () => Promise<Uint8Array>;
}

export const GGUF_ALIGNMENT = 32;

/** Bytes per row of ne[0] elements for a type (Q4_0: blocks of 32 = f16 scale + 16 bytes). */
export function ggmlRowBytes(type: GgmlType, ne0: number): number {
  if (type === GGML_TYPE.F32) return ne0 * 4;
  if (type === GGML_TYPE.F16) return ne0 * 2;
  if (ne0 % 32 !== 0) throw new Error(`Q4_0 rows need a multiple of 32 elements, got ${ne0}`);
  return (ne0 / 32) * 18;
}

/** Growable little-endian byte buffer for the header. */
class Bytes {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private need(n: number) {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number) { this.need(1); this.view.setUint8(this.length, v); this.length += 1; }
  u32(v: number) { this.need(4); this.view.setUint32(this.length, v, true); this.length += 4; }
  i32(v: number) { this.need(4); this.view.setInt32(this.length, v, true); this.length += 4; }
  f32(v: number) { this.need(4); this.view.setFloat32(this.length, v, true); this.length += 4; }
  u64(v: number) { this.need(8); this.view.setBigUint64(this.length, BigInt(v), true); this.length += 8; }
  raw(b: Uint8Array) { this.need(b.length); this.buf.set(b, this.length); this.length += b.length; }
  str(s: string) { const b = new TextEncoder().encode(s); this.u64(b.length); this.raw(b); }
  pad(align: number) { while (this.length % align) this.u8(0); }
  bytes() { return this.buf.subarray(0, this.length); }
}

function writeValue(b: Bytes, v: GgufValue): void {
  switch (v.type) {
    case 'u32': b.u32(T.U32); b.u32(v.value); break;
    case 'i32': b.u32(T.I32); b.i32(v.value); break;
    case 'f32': b.u32(T.F32); b.f32(v.value); break;
    case 'bool': b.u32(T.BOOL); b.u8(v.value ? 1 : 0); break;
    case 'string': b.u32(T.STRING); b.str(v.value); break;
    case 'string[]': b.u32(T.ARRAY); b.u32(T.STRING); b.u64(v.value.length); for (const s of v.value) b.str(s); break;
    case 'i32[]': b.u32(T.ARRAY); b.u32(T.I32); b.u64(v.value.length); for (let i = 0; i < v.value.length; i++) b.i32(v.value[i]); break;
  }
}

/** Writes a GGUF v3 file; returns its size in bytes. */
export async function writeGguf(
  path: string,
  kv: [string, GgufValue][],
  tensors: GgufTensor[],
  onTensor?: (t: GgufTensor, index: number) => void,
): Promise<number> {
  const h = new Bytes();
  h.raw(new TextEncoder().encode('GGUF'));
  h.u32(3);
  h.u64(tensors.length);
  h.u64(kv.length);
  for (const [key, value] of kv) {
    h.str(key);
    writeValue(h, value);
  }
  let offset = 0;
  for (const t of tensors) {
    h.str(t.name);
    h.u32(t.ne.length);
    for (const n of t.ne) h.u64(n);
    h.u32(t.type);
    h.u64(offset);
    offset += t.byteLength;
    offset += (GGUF_ALIGNMENT - (offset % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT;
  }
  h.pad(GGUF_ALIGNMENT);
  const f = await open(path, 'w');
  try {
    let pos = 0;
    const put = async (b: Uint8Array) => {
      await f.write(b, 0, b.length, pos);
      pos += b.length;
    };
    await put(h.bytes());
    const zeros = new Uint8Array(GGUF_ALIGNMENT);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      const data = await t.data();
      if (data.length !== t.byteLength) throw new Error(`${t.name}: produced ${data.length} bytes, expected ${t.byteLength}`);
      await put(data);
      await put(zeros.subarray(0, (GGUF_ALIGNMENT - (t.byteLength % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT));
      onTensor?.(t, i);
    }
    return pos;
  } finally {
    await f.close();
  }
}
