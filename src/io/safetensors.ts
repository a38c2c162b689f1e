/**
 * Safetensors reader: parses and fully validates one file's header, then hands out TensorSources
 * that read their byte ranges through the FileSource (nothing but the header is read here).
 *
 * Layout: u64 LE header length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets}, ...,
 * "__metadata__": {string: string}}, then the data area; data_offsets are relative to its start.
 */
import { ArgumentError, CheckpointError } from '../errors.js';
import type { DType, FileSource, TensorSource } from './source.js';

export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Headers larger than this are refused (real ones are < 1 MB; a corrupt length must not allocate GBs). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Reads through TensorSources are split into pieces of at most this size (bounded buffers, progress). */
export const MAX_READ_CHUNK = 64 * 1024 * 1024;

export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Byte span inside the data area: [begin, end). */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsFile {
  readonly file: string;
  readonly fileSize: number;
  /** Absolute offset of the data area (8 + header length). */
  readonly dataOffset: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** Tensors by name (JSON object order: integer-like names first). */
  readonly tensors: ReadonlyMap<string, SafetensorsEntry>;
}

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

/** Reads and validates the header of `file` (size, length prefix, JSON, every entry, overlaps). */
export async function readSafetensorsHeader(src: FileSource, file: string): Promise<SafetensorsFile> {
  const where = `${src.location}/${file}`;
  const fileSize = await src.size(file);
  if (fileSize === undefined) throw new CheckpointError(`${where}: file not found`, { file });
  if (fileSize < 8) {
    throw new CheckpointError(`${where}: file is ${fileSize} bytes, too short for the 8-byte header length`, { file });
  }
  const prefix = new Uint8Array(8);
  await src.read(file, 0, prefix);
  const view = new DataView(prefix.buffer);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const headerLength = hi * 2 ** 32 + lo;
  if (headerLength > MAX_HEADER_BYTES) {
    throw new CheckpointError(
      `${where}: header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt or not a safetensors file)`,
      { file },
    );
  }
  if (headerLength > fileSize - 8) {
    throw new CheckpointError(
      `${where}: header length ${headerLength} exceeds the ${fileSize - 8} bytes after the length prefix (truncated file?)`,
      { file },
    );
  }
  const header = new Uint8Array(headerLength);
  await src.read(file, 8, header);
  return parseSafetensorsHeader(where, file, fileSize, header);
}

/**
 * Validates a header's JSON bytes for a file of `fileSize` bytes. All entry-level problems are
 * collected and thrown together (CheckpointError.problems), each naming the tensor.
 */
export function parseSafetensorsHeader(where: string, file: string, fileSize: number, header: Uint8Array): SafetensorsFile {
  const dataOffset = 8 + header.length;
  const dataSize = fileSize - dataOffset;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(header);
  } catch (cause) {
    throw new CheckpointError(`${where}: header is not valid UTF-8`, { file, cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new CheckpointError(`${where}: header is not valid JSON (${(cause as Error).message})`, { file, cause });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new CheckpointError(`${where}: header must be a JSON object, got ${Array.isArray(json) ? 'an array' : typeof json}`, { file });
  }

  const problems: { msg: string; tensor?: string }[] = [];
  const bad = (msg: string, tensor?: string) => problems.push({ msg: `${where}: ${msg}`, tensor });
  let metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsEntry>();

  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        bad('"__metadata__" must be an object of strings');
        continue;
      }
      const m: Record<string, string> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') bad(`"__metadata__"."${k}" must be a string, got ${JSON.stringify(v)}`);
        else m[k] = v;
      }
      metadata = m;
      continue;
    }
    const t = `tensor "${name}"`;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      bad(`${t}: entry must be an object with dtype, shape and data_offsets`, name);
      continue;
    }
    const e = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDType(e.dtype)) {
      bad(`${t}: unknown dtype ${JSON.stringify(e.dtype)} (expected one of ${Object.keys(DTYPE_BYTES).join(' ')})`, name);
      continue;
    }
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`${t}: shape must be an array of non-negative integers, got ${JSON.stringify(e.shape)}`, name);
      continue;
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) {
      bad(`${t}: data_offsets must be [begin, end] integers with 0 <= begin <= end, got ${JSON.stringify(off)}`, name);
      continue;
    }
    const [begin, end] = off as [number, number];
    const shape = e.shape as number[];
    let elements = 1;
    for (const d of shape) elements *= d;
    const bytes = elements * DTYPE_BYTES[e.dtype];
    if (!Number.isSafeInteger(bytes) || bytes !== end - begin) {
      bad(
        `${t}: shape [${shape.join(', ')}] of ${e.dtype} needs ${bytes} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
        name,
      );
      continue;
    }
    if (end > dataSize) {
      bad(`${t}: data_offsets [${begin}, ${end}] lie outside the data area of ${dataSize} bytes (file truncated?)`, name);
      continue;
    }
    tensors.set(name, { name, dtype: e.dtype, shape, begin, end });
  }

  // Overlaps: sweep the non-empty spans in begin order against the furthest end seen so far.
  const spans = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin || a.end - b.end);
  let reach: SafetensorsEntry | undefined;
  for (const s of spans) {
    if (reach && s.begin < reach.end) {
      bad(
        `tensor "${s.name}" [${s.begin}, ${s.end}) overlaps tensor "${reach.name}" [${reach.begin}, ${reach.end})`,
        s.name,
      );
    }
    if (!reach || s.end > reach.end) reach = s;
  }

  if (problems.length) {
    const list = problems.map((p) => p.msg);
    const head = list.length === 1 ? list[0] : `${where}: ${list.length} problems in the header:\n  ${list.join('\n  ')}`;
    throw new CheckpointError(head, { file, tensor: problems[0].tensor, problems: list });
  }
  return { file, fileSize, dataOffset, metadata, tensors };
}

/** Bytes of one tensor's data (product of shape × dtype size). */
export function tensorByteLength(e: SafetensorsEntry): number {
  return e.end - e.begin;
}

/**
 * A TensorSource over one entry. Reads are bounds-checked, split into ≤ 64 MiB pieces and each
 * piece is reported to `onRead` (checkpoint progress counts the bytes backends pull).
 */
export function tensorSource(
  src: FileSource,
  st: SafetensorsFile,
  entry: SafetensorsEntry,
  onRead?: (bytes: number) => void,
): TensorSource {
  const byteLength = entry.end - entry.begin;
  const base = st.dataOffset + entry.begin;
  return {
    name: entry.name,
    dtype: entry.dtype,
    shape: entry.shape,
    byteLength,
    async read(offset: number, dst: Uint8Array): Promise<void> {
      if (!Number.isSafeInteger(offset) || offset < 0 || offset + dst.length > byteLength) {
        throw new ArgumentError(
          `tensor "${entry.name}" (${st.file}): read of ${dst.length} bytes at offset ${offset} is outside its ${byteLength} bytes`,
        );
      }
      for (let done = 0; done < dst.length; ) {
        const n = Math.min(MAX_READ_CHUNK, dst.length - done);
        await src.read(st.file, base + offset + done, dst.subarray(done, done + n));
        done += n;
        onRead?.(n);
      }
    },
  };
}
