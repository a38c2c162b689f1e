/**
 * Byte sources. A FileSource is what a platform binding hands to the platform-neutral core:
 * a checkpoint directory on disk (Node), a URL prefix (browser, fetch with Range), or a
 * synthetic generator. Everything is read in ranges: no multi-GB file ever sits in one buffer.
 */
import { CheckpointError } from '../errors.js';

export interface FileSource {
  /** Human-readable location, used in error messages. */
  readonly location: string;
  /** Size in bytes, or undefined when the file does not exist. */
  size(name: string): Promise<number | undefined>;
  /** Fills `dst` with bytes [offset, offset + dst.length) of file `name`; throws if short. */
  read(name: string, offset: number, dst: Uint8Array): Promise<void>;
  /** Releases open files / connections; the source may not be used afterwards. Optional. */
  close?(): Promise<void>;
}

/** Reads a whole (small) file: configs, index json, the vocabulary. */
export async function readWhole(src: FileSource, name: string): Promise<Uint8Array> {
  const n = await src.size(name);
  if (n === undefined) throw new CheckpointError(`${src.location}: missing file ${name}`, { file: name });
  const buf = new Uint8Array(n);
  await src.read(name, 0, buf);
  return buf;
}

/** Safetensors dtype names as they appear in headers. */
export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/**
 * One tensor of a checkpoint, readable in ranges. Backends pull the bytes straight into their
 * own memory (a wasm memory view, a GPU staging buffer) so uploads need no whole-tensor copy.
 */
export interface TensorSource {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly byteLength: number;
  /** Fills dst with bytes [offset, offset + dst.length) of this tensor's data (little-endian). */
  read(offset: number, dst: Uint8Array): Promise<void>;
}
