import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArgumentError, CheckpointError } from '../../src/errors.js';
import { MAX_HEADER_BYTES, readSafetensorsHeader, tensorSource } from '../../src/io/safetensors.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { nodeFileSource } from '../../bindings/node/fileSource.js';
import { FIXTURES, catchError, memorySource, safetensorsBytes } from './helpers.js';

const data = Uint8Array.from({ length: 64 }, (_, i) => i);

/** A valid two-tensor file: a F32 [2,3] at 0..24, b BF16 [4] at 24..32, then 32 spare bytes. */
const goodHeader = () => ({
  __metadata__: { format: 'pt' },
  a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
  b: { dtype: 'BF16', shape: [4], data_offsets: [24, 32] },
});

const open = (bytes: Uint8Array, file = 'model.safetensors') => readSafetensorsHeader(memorySource({ [file]: bytes }), file);

async function expectProblem(bytes: Uint8Array, pattern: RegExp, tensor?: string) {
  const e = await catchError(open(bytes));
  expect(e).toBeInstanceOf(CheckpointError);
  expect(e.code).toBe('E_CHECKPOINT');
  expect(e.file).toBe('model.safetensors');
  expect(e.message).toContain('model.safetensors');
  expect(e.message).toMatch(pattern);
  if (tensor) {
    expect(e.tensor).toBe(tensor);
    expect(e.message).toContain(`"${tensor}"`);
  }
  return e as CheckpointError;
}

describe('safetensors header', () => {
  it('parses a valid header with metadata, scalar and empty tensors', async () => {
    const h = { ...goodHeader(), s: { dtype: 'I64', shape: [], data_offsets: [32, 40] }, e: { dtype: 'U8', shape: [0, 5], data_offsets: [40, 40] } };
    const st = await open(safetensorsBytes(h, data));
    expect(st.metadata).toEqual({ format: 'pt' });
    expect([...st.tensors.keys()]).toEqual(['a', 'b', 's', 'e']);
    expect(st.tensors.get('a')).toMatchObject({ dtype: 'F32', shape: [2, 3], begin: 0, end: 24 });
    expect(st.dataOffset).toBe(8 + Math.ceil(JSON.stringify(h).length / 8) * 8);
    const b = tensorSource(memorySource({ 'model.safetensors': safetensorsBytes(h, data) }), st, st.tensors.get('b')!);
    const dst = new Uint8Array(5);
    await b.read(2, dst);
    expect([...dst]).toEqual([26, 27, 28, 29, 30]);
    expect(b.byteLength).toBe(8);
  });

  it('rejects a file shorter than the length prefix', async () => {
    await expectProblem(new Uint8Array(5), /too short/);
  });

  it('rejects a truncated header', async () => {
    const full = safetensorsBytes(goodHeader(), new Uint8Array(0));
    await expectProblem(full.subarray(0, 40), /header length \d+ exceeds the 32 bytes/);
  });

  it('rejects an absurd header length without allocating it', async () => {
    await expectProblem(safetensorsBytes(goodHeader(), data, { lengthOverride: 2 ** 40 }), new RegExp(`exceeds the ${MAX_HEADER_BYTES}-byte limit`));
  });

  it('rejects bad JSON, a non-object header and invalid UTF-8', async () => {
    await expectProblem(safetensorsBytes(null, data, { raw: '{"a": {"dtype": "F32",' }), /not valid JSON/);
    await expectProblem(safetensorsBytes([1, 2], data), /must be a JSON object, got an array/);
    const bad = safetensorsBytes(null, data, { raw: '{"x":"\u00ff"}' });
    bad[8 + 6] = 0xff; // break the UTF-8 sequence of the ÿ
    await expectProblem(bad, /not valid UTF-8/);
  });

  it('rejects unknown dtypes, naming the tensor and the known ones', async () => {
    const h = goodHeader();
    (h.b as any).dtype = 'F8_E4M3';
    const e = await expectProblem(safetensorsBytes(h, data), /unknown dtype "F8_E4M3"/, 'b');
    expect(e.message).toContain('F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL');
  });

  it('rejects bad shapes and data_offsets', async () => {
    const h1 = goodHeader();
    (h1.a as any).shape = [2, -3];
    await expectProblem(safetensorsBytes(h1, data), /shape must be an array of non-negative integers/, 'a');
    const h2 = goodHeader();
    (h2.a as any).shape = [2, 1.5];
    await expectProblem(safetensorsBytes(h2, data), /non-negative integers/, 'a');
    const h3 = goodHeader();
    (h3.a as any).data_offsets = [24, 0];
    await expectProblem(safetensorsBytes(h3, data), /data_offsets must be \[begin, end\]/, 'a');
    const h4: any = goodHeader();
    h4.a = 'F32';
    await expectProblem(safetensorsBytes(h4, data), /entry must be an object/, 'a');
  });

  it('rejects a shape × dtype size that differs from the span', async () => {
    const h = goodHeader();
    h.a.shape = [3, 3];
    await expectProblem(safetensorsBytes(h, data), /shape \[3, 3\] of F32 needs 36 bytes but data_offsets \[0, 24\] span 24/, 'a');
  });

  it('rejects spans outside the data area', async () => {
    const h = goodHeader();
    h.b.data_offsets = [60, 68];
    await expectProblem(safetensorsBytes(h, data), /outside the data area of 64 bytes/, 'b');
  });

  it('rejects overlapping spans, naming both tensors', async () => {
    const h = { ...goodHeader(), c: { dtype: 'U8', shape: [8], data_offsets: [20, 28] } };
    const e = await expectProblem(safetensorsBytes(h, data), /overlaps/);
    expect(e.message).toMatch(/tensor "c" \[20, 28\) overlaps tensor "a" \[0, 24\)/);
    // A span inside a long earlier one overlaps it even when a short one lies between.
    const h2 = {
      long: { dtype: 'U8', shape: [40], data_offsets: [0, 40] },
      mid: { dtype: 'U8', shape: [0], data_offsets: [10, 10] },
      inner: { dtype: 'U8', shape: [4], data_offsets: [30, 34] },
    };
    await expectProblem(safetensorsBytes(h2, data), /"inner" \[30, 34\) overlaps tensor "long"/, 'inner');
  });

  it('rejects a non-string metadata value', async () => {
    const h: any = goodHeader();
    h.__metadata__ = { format: 1 };
    await expectProblem(safetensorsBytes(h, data), /"__metadata__"."format" must be a string/);
  });

  it('reports all entry problems at once', async () => {
    const h: any = goodHeader();
    h.a.dtype = 'Q4';
    h.b.shape = [5];
    h.c = { dtype: 'U8', shape: [8], data_offsets: [100, 108] };
    const e = await expectProblem(safetensorsBytes(h, data), /3 problems/);
    expect(e.problems).toHaveLength(3);
    expect(e.problems[0]).toMatch(/"a".*unknown dtype/);
    expect(e.problems[1]).toMatch(/"b".*needs 10 bytes/);
    expect(e.problems[2]).toMatch(/"c".*outside/);
  });

  it('bounds-checks TensorSource reads', async () => {
    const bytes = safetensorsBytes(goodHeader(), data);
    const src = memorySource({ 'model.safetensors': bytes });
    const st = await readSafetensorsHeader(src, 'model.safetensors');
    const a = tensorSource(src, st, st.tensors.get('a')!);
    await expect(a.read(20, new Uint8Array(8))).rejects.toBeInstanceOf(ArgumentError);
    await expect(a.read(-1, new Uint8Array(1))).rejects.toThrow(/"a"/);
    const all = new Uint8Array(24);
    await a.read(0, all);
    expect([...all]).toEqual([...data.subarray(0, 24)]);
  });
});

describe('safetensors header (property-based)', () => {
  const dtypes = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'] as const;
  const sizes: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
  const tensorArb = fc.record({
    name: fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== '__metadata__'),
    dtype: fc.constantFrom(...dtypes),
    shape: fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 3 }),
    gap: fc.integer({ min: 0, max: 5 }),
  });

  it('any well-formed file parses to exactly its entries; any corruption is a CheckpointError or still valid', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(tensorArb, { selector: (t) => t.name, maxLength: 6 }), fc.integer({ min: 0, max: 8 }), fc.nat(), fc.nat(255),
        async (tensors, extra, pos, byte) => {
          const header: Record<string, unknown> = Object.create(null); // '__proto__' is a valid tensor name
          let at = 0;
          for (const t of tensors) {
            at += t.gap; // gaps are allowed
            const n = t.shape.reduce((p, d) => p * d, 1) * sizes[t.dtype];
            header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + n] };
            at += n;
          }
          const file = safetensorsBytes(header, new Uint8Array(at + extra));
          const st = await open(file);
          expect([...st.tensors.keys()].sort()).toEqual(tensors.map((t) => t.name).sort());
          for (const t of tensors) expect(st.tensors.get(t.name)).toMatchObject({ dtype: t.dtype, shape: t.shape });
          // Corrupt one byte of the prefix or header: the reader must fail with a typed error or accept.
          const bad = file.slice();
          const i = pos % Math.min(bad.length, 8 + JSON.stringify(header).length + 8);
          bad[i] = byte;
          try {
            await open(bad);
          } catch (e) {
            expect(e).toBeInstanceOf(CheckpointError);
          }
        }),
      { numRuns: 300 },
    );
  });
});

describe('safetensors fixture: gptq/linear_actorder', () => {
  it('parses the stand-alone GPTQ linear and its tensors match the recorded sha256', async () => {
    const meta = JSON.parse(readFileSync(`${FIXTURES}gptq/linear_actorder.json`, 'utf8'));
    const src = nodeFileSource(`${FIXTURES}gptq`);
    const st = await readSafetensorsHeader(src, 'linear_actorder.safetensors');
    expect([...st.tensors.keys()].sort()).toEqual(Object.keys(meta.tensor_sha256).sort());
    const { in_features: inF, out_features: outF, group_size: g } = meta;
    expect(st.tensors.get('qweight')).toMatchObject({ dtype: 'I32', shape: [inF / 8, outF] });
    expect(st.tensors.get('qzeros')).toMatchObject({ dtype: 'I32', shape: [inF / g, outF / 8] });
    expect(st.tensors.get('scales')).toMatchObject({ dtype: 'F16', shape: [inF / g, outF] });
    expect(st.tensors.get('g_idx')).toMatchObject({ dtype: 'I32', shape: [inF] });
    for (const [name, entry] of st.tensors) {
      const t = tensorSource(src, st, entry);
      const bytes = new Uint8Array(t.byteLength);
      await t.read(0, bytes);
      expect(createHash('sha256').update(bytes).digest('hex'), name).toBe(meta.tensor_sha256[name]);
    }
    await src.close();
  });
});
