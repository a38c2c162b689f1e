// int8 K/V quantisation, included (//#include kv_int8) by kv.wgsl and rope_kv.wgsl: a row of one
// head is stored as bytes q = round((v − lo) / scale) with scale = (max − min) / 255 (1 for a
// constant row); value = lo + q·scale. For 64-thread workgroups.
var<workgroup> lo: array<f32, 64>;
var<workgroup> hi: array<f32, 64>;

// (min, max) of r and the four values of u
fn minmax4(r: vec2f, u: vec4f) -> vec2f {
  return vec2f(min(r.x, min(min(u.x, u.y), min(u.z, u.w))), max(r.y, max(max(u.x, u.y), max(u.z, u.w))));
}

// (lo, scale) of the row from every thread's partial (min, max); all 64 threads must call it
fn kvRange(l: u32, r: vec2f) -> vec2f {
  lo[l] = r.x;
  hi[l] = r.y;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (l < s) { lo[l] = min(lo[l], lo[l + s]); hi[l] = max(hi[l], hi[l + s]); }
    workgroupBarrier();
  }
  let a = lo[0];
  var scale = (hi[0] - a) / 255.0;
  if (scale == 0.0) { scale = 1.0; }
  return vec2f(a, scale);
}

// four values as four bytes of one word (lo, scale from kvRange)
fn kvPack(u: vec4f, ls: vec2f) -> u32 {
  let q = vec4u(clamp(floor((u - ls.x) / ls.y + 0.5), vec4f(0.0), vec4f(255.0)));
  return q.x | (q.y << 8u) | (q.z << 16u) | (q.w << 24u);
}
