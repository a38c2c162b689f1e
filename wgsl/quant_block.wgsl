// Quantisation of GEMV inputs for the integer int4 GEMV (gemv_int4.wgsl with IDOT), included
// (//#include quant_block) by every pass that writes such inputs (quant_x.wgsl, the GEMV
// epilogues, decode attention): they all store through storeBlock into binding 19.
// A block is 16 values (2 word rows: one unit of the GEMV) with one scale s = max|v| / (2^23 − 1);
// the values become 24-bit integers X = round(v / s) (|v − s·X| ≤ s / 2: 6e-8 of the block's
// largest value; f32 rounding is 6e-8 of each value). X = 65536·h + 256·m + l with h a signed byte
// and m, l unsigned ones. Word row r (values 8r..8r+7) is stored as two vec4<u32> of bytes: h of
// values 0, 2, 4, 6 and of 1, 3, 5, 7, m of the same, then l of the same and the row's sums Σh
// (i32) and Σm | Σl << 16 (the zero term). The even/odd split lines the values up with a weight
// word's nibbles as w & 0x0f0f0f0f and (w >> 4) & 0x0f0f0f0f give them. Per block also (s, Σ x²)
// (the consumer's RMSNorm prologue sums the Σ x²), after the R rows' 2R vec4s: block b in vec4
// 2R + b.
const QMAX: f32 = 8388607.0;
@group(0) @binding(19) var<storage, read_write> qout: array<vec4<u32>>;

// the low bytes of four integers as one u32 (two's complement for negative ones)
fn bytes4(v: vec4i) -> u32 {
  let u = bitcast<vec4u>(v) & vec4u(0xffu);
  return u.x | (u.y << 8u) | (u.z << 16u) | (u.w << 24u);
}
fn hsum(v: vec4i) -> i32 {
  return (v.x + v.y) + (v.z + v.w);
}
fn vmax(a: vec4f) -> f32 {
  let b = abs(a);
  return max(max(b.x, b.y), max(b.z, b.w));
}

// one word row (values a = 0..3, b = 4..7) quantised with 1 / s = inv: its two vec4<u32>
struct QRow { p: vec4<u32>, q: vec4<u32> }
fn qrow(a: vec4f, b: vec4f, inv: f32) -> QRow {
  let qa = clamp(vec4i(round(a * inv)), vec4i(-8388607), vec4i(8388607));
  let qb = clamp(vec4i(round(b * inv)), vec4i(-8388607), vec4i(8388607));
  let e = vec4i(qa.x, qa.z, qb.x, qb.z);
  let o = vec4i(qa.y, qa.w, qb.y, qb.w);
  let eh = e >> vec4u(16u);
  let oh = o >> vec4u(16u);
  let em = (e >> vec4u(8u)) & vec4i(0xff);
  let om = (o >> vec4u(8u)) & vec4i(0xff);
  let el = e & vec4i(0xff);
  let ol = o & vec4i(0xff);
  let sm = bitcast<u32>(hsum(em + om));
  let sl = bitcast<u32>(hsum(el + ol));
  return QRow(vec4u(bytes4(eh), bytes4(oh), bytes4(em), bytes4(om)), vec4u(bytes4(el), bytes4(ol), bitcast<u32>(hsum(eh + oh)), sm | (sl << 16u)));
}

// stores block b (values v0..v3, four each; sq its Σ x²) of an input of R word rows into qout
fn storeBlock(b: u32, R: u32, v0: vec4f, v1: vec4f, v2: vec4f, v3: vec4f, sq: f32) {
  let mx = max(max(vmax(v0), vmax(v1)), max(vmax(v2), vmax(v3)));
  var inv = 0.0;
  if (mx > 0.0) { inv = QMAX / mx; }
  let r0 = qrow(v0, v1, inv);
  let r1 = qrow(v2, v3, inv);
  let i = 4u * b;
  qout[i] = r0.p;
  qout[i + 1u] = r0.q;
  qout[i + 2u] = r1.p;
  qout[i + 3u] = r1.q;
  qout[2u * R + b] = vec4u(bitcast<u32>(mx / QMAX), bitcast<u32>(sq), 0u, 0u);
}
