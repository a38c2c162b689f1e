import { describe, expect, it } from 'vitest';
import { bf16BitsToFloat, f16BitsToFloat, floatToBf16Bits, floatToF16Bits } from '../../src/io/half.js';

describe('16-bit float conversions', () => {
  it('every non-NaN f16 bit pattern round-trips; NaN stays NaN', () => {
    for (let b = 0; b < 65536; b++) {
      const v = f16BitsToFloat(b);
      if (Number.isNaN(v)) expect(Number.isNaN(f16BitsToFloat(floatToF16Bits(v)))).toBe(true);
      else expect(floatToF16Bits(v), `0x${b.toString(16)}`).toBe(b);
    }
  });

  it('f16: known values, round-to-nearest-even at midpoints, overflow and underflow', () => {
    expect(floatToF16Bits(1)).toBe(0x3c00);
    expect(floatToF16Bits(-2)).toBe(0xc000);
    expect(floatToF16Bits(65504)).toBe(0x7bff);
    expect(floatToF16Bits(65520)).toBe(0x7c00); // rounds up to Inf
    expect(floatToF16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(floatToF16Bits(2 ** -26)).toBe(0x0000); // below half of it → 0
    expect(floatToF16Bits(3 * 2 ** -26)).toBe(0x0001); // 0.75 ulp → 1 ulp
    // midpoints between consecutive f16 values go to the even mantissa
    for (const b of [0x3c00, 0x3c01, 0x0002, 0x0003, 0x03ff, 0x7bfe]) {
      const mid = (f16BitsToFloat(b) + f16BitsToFloat(b + 1)) / 2;
      expect(floatToF16Bits(mid), `mid after 0x${b.toString(16)}`).toBe(b % 2 === 0 ? b : b + 1);
      expect(floatToF16Bits(mid + Math.abs(mid) * 1e-6)).toBe(b + 1);
    }
  });

  it('bf16: exact values, RNE, sampled round trips', () => {
    expect(floatToBf16Bits(1)).toBe(0x3f80);
    expect(floatToBf16Bits(-0.5)).toBe(0xbf00);
    expect(floatToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(floatToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie → even (up)
    expect(Number.isNaN(bf16BitsToFloat(floatToBf16Bits(NaN)))).toBe(true);
    for (let b = 0; b < 65536; b += 7) {
      const v = bf16BitsToFloat(b);
      if (!Number.isNaN(v)) expect(floatToBf16Bits(v)).toBe(b);
    }
  });
});
