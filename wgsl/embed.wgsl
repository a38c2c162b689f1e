// Embedding gather: out[r, :] = table[ids[r], :] for the ids that fall inside this chunk of
// table rows (large tables are split across bindings by rows; one dispatch per chunk).
// Table rows are stored in checkpoint encoding: F32 words, or F16 / BF16 pairs packed in u32.
struct P { rows: u32, dim: u32, rowStart: u32, chunkRows: u32, wordsPerRow: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read> ids: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let i = (wg.x + wg.y * nw.x) * 256u + l;
  if (i >= p.rows * p.dim) { return; }
  let r = i / p.dim;
  let c = i - r * p.dim;
  let id = ids[r];
  if (id < p.rowStart || id >= p.rowStart + p.chunkRows) { return; }
  let row = id - p.rowStart;
//#if F32
  o[i] = bitcast<f32>(table[row * p.wordsPerRow + c]);
//#endif
//#if F16
  o[i] = unpack2x16float(table[row * p.wordsPerRow + c / 2u])[c & 1u];
//#endif
//#if BF16
  let word = table[row * p.wordsPerRow + c / 2u];
  o[i] = bitcast<f32>(select(word << 16u, word & 0xffff0000u, (c & 1u) == 1u));
//#endif
}
