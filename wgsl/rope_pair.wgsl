// RoPE of one pair (x[i], x[i + half]) by (cos, sin): included (//#include rope_pair) by rope.wgsl,
// rope_kv.wgsl and attention.wgsl, so every path rotates with the same expressions.
fn ropePair(a: f32, b: f32, c: vec2f) -> vec2f {
  return vec2f(a * c.x - b * c.y, b * c.x + a * c.y);
}
