// mapForRead (src/backend/webgpu/mapForRead.ts) against a fake buffer whose map completes at a set
// time: a short wait maps once; a long one stops polling after its patience and maps again after
// timer sleeps, ending shortly after the data is there. (webgpuOps.test.ts runs it on Dawn.)
import { describe, expect, it } from 'vitest';
import { mapForRead } from '../../src/backend/webgpu/mapForRead.js';

/** A buffer whose data is ready `readyMs` after creation; records how long maps were pending. */
function fakeBuffer(readyMs: number) {
  const t0 = performance.now();
  const stats = { maps: 0, unmaps: 0, pendingMs: 0, mapped: false };
  let cancel: (() => void) | null = null;
  const buf = {
    mapAsync(): Promise<void> {
      stats.maps++;
      const asked = performance.now();
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => {
          cancel = null;
          stats.pendingMs += performance.now() - asked;
          stats.mapped = true;
          resolve();
        }, Math.max(0, t0 + readyMs - asked));
        cancel = () => {
          clearTimeout(t);
          stats.pendingMs += performance.now() - asked;
          reject(new Error('AbortError'));
        };
      });
    },
    unmap(): void {
      stats.unmaps++;
      if (cancel) {
        cancel();
        cancel = null;
      } else stats.mapped = false;
    },
  };
  return { buf: buf as unknown as GPUBuffer, stats, t0 };
}

describe('mapForRead', () => {
  it('a wait within its patience maps once', async () => {
    const { buf, stats } = fakeBuffer(5);
    await mapForRead(buf, 4, 25);
    expect(stats).toMatchObject({ maps: 1, unmaps: 0, mapped: true });
  });

  it('a long wait polls for a fraction of it and ends within ≈ 10 ms of the data', async () => {
    const { buf, stats, t0 } = fakeBuffer(300);
    await mapForRead(buf, 4, 25);
    const end = performance.now() - t0;
    expect(stats.mapped).toBe(true);
    expect(stats.maps).toBeGreaterThan(1);
    expect(stats.unmaps).toBe(stats.maps - 1);
    expect(end).toBeGreaterThanOrEqual(299);
    expect(end).toBeLessThan(300 + 25);
    // pending for the patience, then about one ms per retry, not the whole 300 ms
    expect(stats.pendingMs).toBeLessThan(0.4 * 300);
  });

  it('a failed map rejects', async () => {
    const buf = { mapAsync: () => Promise.reject(new Error('device lost')), unmap: () => undefined } as unknown as GPUBuffer;
    await expect(mapForRead(buf, 4, 25)).rejects.toThrow(/device lost/);
  });
});
