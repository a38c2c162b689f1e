/**
 * Backend selection passes the platform's WebGPU hints on: Node (Dawn polls pending maps from the
 * event loop) paces decode readbacks; a platform without the hint does not.
 */
import '../setup/webgpu.js';
import { describe, expect, it } from 'vitest';
import { nodePlatform } from '../../bindings/node/index.js';
import { createBackend } from '../../src/backend/select.js';
import type { WebGpuBackend } from '../../src/backend/webgpu/backend.js';

describe('backend selection: WebGPU platform hints', () => {
  it('paces decode readbacks where Platform.gpuPollsEventLoop is set (Node), not elsewhere', async () => {
    expect(nodePlatform.gpuPollsEventLoop).toBe(true);
    const node = (await createBackend(nodePlatform, 'webgpu')) as WebGpuBackend;
    try {
      expect(node.rec.pacedReadback).toBe(true);
    } finally {
      await node.dispose();
    }
    const other = (await createBackend({ ...nodePlatform, gpuPollsEventLoop: undefined }, 'webgpu')) as WebGpuBackend;
    try {
      expect(other.rec.pacedReadback).toBe(false);
    } finally {
      await other.dispose();
    }
  });

  it("passes Node's wait hooks and the embedding-copy choice on to the WebGPU backend", async () => {
    const copying = (b: WebGpuBackend) => (b as unknown as { embeddingMirror: boolean }).embeddingMirror;
    const node = (await createBackend(nodePlatform, 'webgpu')) as WebGpuBackend;
    try {
      expect(node.rec.waitHooks).toBeDefined();
      expect(copying(node)).toBe(false);
    } finally {
      await node.dispose();
    }
    const kept = (await createBackend({ ...nodePlatform, gpuWaitHooks: undefined }, 'webgpu', { gpuEmbeddingCopy: true })) as WebGpuBackend;
    try {
      expect(kept.rec.waitHooks).toBeUndefined();
      expect(copying(kept)).toBe(true);
    } finally {
      await kept.dispose();
    }
  });
});
