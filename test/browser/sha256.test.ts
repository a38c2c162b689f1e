// The incremental SHA-256 the URL cache verifies downloads with, against node:crypto.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { Sha256 } from '../../bindings/browser/sha256.js';

describe('Sha256', () => {
  it('matches node:crypto for any bytes split at any points', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.nat(3000), { maxLength: 8 }), (bytes, cuts) => {
        const s = new Sha256();
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        let at = 0;
        for (const p of [...points, bytes.length]) {
          s.update(bytes.subarray(at, p));
          at = p;
        }
        expect(s.hex()).toBe(createHash('sha256').update(bytes).digest('hex'));
      }),
      { numRuns: 300 },
    );
  });
  it('handles padding boundaries (55, 56, 64 bytes) and a 5 MB input', () => {
    for (const n of [0, 55, 56, 63, 64, 119, 120, 5_000_003]) {
      const b = new Uint8Array(n).map((_, i) => (i * 131 + 7) & 255);
      expect(new Sha256().update(b).hex(), `${n} bytes`).toBe(createHash('sha256').update(b).digest('hex'));
    }
  });
});
