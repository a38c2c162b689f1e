// WebGPU enum values (spec constants), so the core does not depend on the GPUBufferUsage /
// GPUMapMode / GPUShaderStage globals existing at import time (Dawn in Node installs them late).
export const BufferUsage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;
export const MAP_READ = 0x1;
export const STAGE_COMPUTE = 0x4;
