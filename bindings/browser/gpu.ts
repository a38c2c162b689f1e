// WebGPU in browsers and workers: navigator.gpu, when the page may use it.
export async function browserGpu(): Promise<GPU | undefined> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  const gpu = nav?.gpu;
  if (!gpu) return undefined;
  try {
    return (await gpu.requestAdapter()) ? gpu : undefined;
  } catch {
    return undefined;
  }
}
