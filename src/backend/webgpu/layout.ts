/**
 * Host-side re-tiling of checkpoint tensors for the WGSL kernels (pure functions, no GPU).
 * Encodings are kept: GPTQ stays 4-bit with f16 scales, f16/bf16 stay 16-bit (packed in u32).
 */
import { f16BitsToFloat } from '../../io/half.js';
import { CheckpointError } from '../../errors.js';

/** Output columns per GPTQ tile (see wgsl/gemv_int4.wgsl). */
export const TILE = 16;
/** u32 words of scales + zeros per (tile, group): TILE/2 f16 pairs + TILE/8 words of zero nibbles. */
export const SZ_WORDS = TILE / 2 + TILE / 8;

export interface GptqPacked {
  /** K/8 word rows. */
  R: number;
  /** number of groups */
  G: number;
  tiles: number;
  /** [tiles][R][32] words */
  qw: Uint32Array;
  /** [tiles][G][20] words */
  sz: Uint32Array;
  /** [R] group of each word row */
  rowGroup: Uint32Array;
  /** [K] original input index of sorted row k, when desc_act reorders rows */
  perm?: Uint32Array;
  /** word rows per group when rowGroup[r] = floor(r / rowsPerGroup) for every r, else 0 */
  rowsPerGroup: number;
}

/**
 * Repacks auto-gptq v1 tensors: rows sorted by group (desc_act), columns cut into tiles of 32.
 * qweight [K/8, N] (nibble k%8 of row k/8), qzeros [G, N/8] (zero − 1), scales f16 bits [G, N],
 * gIdx [K] or undefined (= k / groupSize).
 */
export function packGptq(
  name: string,
  K: number,
  N: number,
  groupSize: number,
  qweight: Uint32Array,
  qzeros: Uint32Array,
  scales: Uint16Array,
  gIdx: Int32Array | undefined,
): GptqPacked {
  if (K % 8 !== 0) throw new CheckpointError(`${name}: in_features ${K} must be a multiple of 8`, { tensor: name });
  if (N % 8 !== 0) throw new CheckpointError(`${name}: out_features ${N} must be a multiple of 8`, { tensor: name });
  const R = K / 8;
  let G = Math.max(1, Math.ceil(K / groupSize));
  if (gIdx) for (let k = 0; k < K; k++) G = Math.max(G, gIdx[k] + 1);
  if (scales.length < G * N) throw new CheckpointError(`${name}.scales: expected ${G}×${N} values`, { tensor: `${name}.scales` });
  if (qzeros.length < G * (N / 8)) throw new CheckpointError(`${name}.qzeros: expected ${G}×${N / 8} words`, { tensor: `${name}.qzeros` });
  const groupOf = (k: number) => (gIdx ? gIdx[k] : Math.floor(k / groupSize));
  // sorted order of input rows by (group, k)
  let order: Uint32Array | undefined;
  if (gIdx) {
    for (let k = 0; k < K; k++) {
      if (!(gIdx[k] >= 0 && gIdx[k] < G)) throw new CheckpointError(`${name}.g_idx[${k}] = ${gIdx[k]} out of range 0..${G - 1}`, { tensor: `${name}.g_idx` });
    }
    let sorted = true;
    for (let k = 1; k < K && sorted; k++) sorted = gIdx[k] >= gIdx[k - 1];
    if (!sorted) {
      const idx = Array.from({ length: K }, (_, k) => k);
      idx.sort((a, b) => gIdx[a] - gIdx[b] || a - b);
      order = Uint32Array.from(idx);
    }
  }
  const src = (k: number) => (order ? order[k] : k);
  const rowGroup = new Uint32Array(R);
  for (let r = 0; r < R; r++) {
    const g = groupOf(src(8 * r));
    for (let j = 1; j < 8; j++) {
      if (groupOf(src(8 * r + j)) !== g) {
        throw new CheckpointError(`${name}.g_idx: every group must hold a multiple of 8 input rows (rows ${8 * r}..${8 * r + 7} mix groups)`, {
          tensor: `${name}.g_idx`,
        });
      }
    }
    rowGroup[r] = g;
  }
  const tiles = Math.ceil(N / TILE);
  const qw = new Uint32Array(tiles * R * TILE);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < N; c++) {
      let word: number;
      if (!order) word = qweight[r * N + c];
      else {
        word = 0;
        for (let j = 0; j < 8; j++) {
          const k = order[8 * r + j];
          word |= ((qweight[(k >> 3) * N + c] >>> (4 * (k & 7))) & 15) << (4 * j);
        }
      }
      const t = (c / TILE) | 0;
      qw[(t * R + r) * TILE + (c % TILE)] = word >>> 0;
    }
  }
  const sz = new Uint32Array(tiles * G * SZ_WORDS);
  for (let t = 0; t < tiles; t++) {
    for (let g = 0; g < G; g++) {
      const base = (t * G + g) * SZ_WORDS;
      for (let cc = 0; cc < TILE; cc++) {
        const c = t * TILE + cc;
        if (c >= N) break;
        const s = scales[g * N + c];
        sz[base + (cc >> 1)] |= s << (16 * (cc & 1));
        const z = (qzeros[g * (N >> 3) + (c >> 3)] >>> (4 * (c & 7))) & 15;
        sz[base + TILE / 2 + (cc >> 3)] |= z << (4 * (cc & 7));
      }
    }
  }
  let rowsPerGroup = groupSize / 8;
  for (let r = 0; r < R && rowsPerGroup; r++) if (rowGroup[r] !== Math.floor(r / rowsPerGroup)) rowsPerGroup = 0;
  return { R, G, tiles, qw, sz, rowGroup, perm: order, rowsPerGroup };
}

/** u32 words per row of a dense matrix: rows padded so every row is a whole number of vec4<u32>. */
export function denseWordsPerRow(K: number, elemBytes: 2 | 4): number {
  return elemBytes === 4 ? Math.ceil(K / 4) * 4 : Math.ceil(K / 8) * 4;
}

/** Copies `rows` rows of `K` elements (elemBytes each) into rows of `wpr` words (zero padded). */
export function padRows(src: Uint8Array, rows: number, K: number, elemBytes: number, wpr: number, dst: Uint8Array, dstOffset = 0): void {
  const rowBytes = K * elemBytes;
  for (let r = 0; r < rows; r++) dst.set(src.subarray(r * rowBytes, (r + 1) * rowBytes), dstOffset + r * wpr * 4);
}

/** Decodes F32/F16/BF16 bytes (little-endian) to f32. */
export function floatsFrom(dtype: string, bytes: Uint8Array, n: number, name: string): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  if (dtype === 'F32') for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
  else if (dtype === 'F16') for (let i = 0; i < n; i++) out[i] = f16BitsToFloat(dv.getUint16(2 * i, true));
  else if (dtype === 'BF16') {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u[i] = dv.getUint16(2 * i, true) << 16;
  } else throw new CheckpointError(`${name}: dtype ${dtype} is not a float type (F32, F16 or BF16 expected)`, { tensor: name });
  return out;
}

/** f32 table of rotate-half cos/sin pairs [pos][rotaryDim/2], computed as torch does in f32. */
export function ropeTable(base: number, rotaryDim: number, positions: number): Float32Array {
  const half = rotaryDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = Math.fround(1 / Math.fround(Math.pow(base, Math.fround((2 * i) / rotaryDim))));
  const out = new Float32Array(positions * half * 2);
  for (let pos = 0; pos < positions; pos++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(pos * inv[i]);
      out[2 * (pos * half + i)] = Math.cos(angle);
      out[2 * (pos * half + i) + 1] = Math.sin(angle);
    }
  }
  return out;
}

/** LogN factors per absolute position: fround(ln(p + 1) / ln(L)) when p + 1 > L, else 1. */
export function lognTable(seqLength: number, positions: number): Float32Array {
  const out = new Float32Array(positions);
  for (let p = 0; p < positions; p++) out[p] = p + 1 > seqLength ? Math.log(p + 1) / Math.log(seqLength) : 1;
  return out;
}
