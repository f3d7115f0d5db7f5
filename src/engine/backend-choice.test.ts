// What EngineModel decides before it builds a graph, from what WebGPU would give (session.ts
// probeWebGpu): the K/V cache layout (append on the CPU runtimes and wherever no adapter is granted)
// and whether an fp16 request gets the fp16 graph (only with shader-f16).

import { describe, expect, it } from 'vitest';
import { defaultKvCache, fp16GraphFor } from './model';
import { probeWebGpu, type GpuLike } from './session';

const adapter = (features: string[]) => ({ features: new Set(features) }) as never;
const gpuGiving = (a: unknown): GpuLike => ({ requestAdapter: () => Promise.resolve(a as never) });

describe('probeWebGpu', () => {
  it('finds nothing in Node, without navigator.gpu, with a null adapter or a failing request', async () => {
    const none = { adapter: false, shaderF16: false };
    expect(await probeWebGpu()).toEqual(none); // this test runs in Node
    expect(await probeWebGpu({ inNode: true, gpu: gpuGiving(adapter(['shader-f16'])) })).toEqual(none);
    expect(await probeWebGpu({ inNode: false })).toEqual(none);
    expect(await probeWebGpu({ inNode: false, gpu: gpuGiving(null) })).toEqual(none);
    const failing: GpuLike = { requestAdapter: () => Promise.reject(new Error('GPU process crashed')) };
    expect(await probeWebGpu({ inNode: false, gpu: failing })).toEqual(none);
  });

  it('reports a granted adapter and its shader-f16', async () => {
    expect(await probeWebGpu({ inNode: false, gpu: gpuGiving(adapter([])) })).toEqual({
      adapter: true,
      shaderF16: false,
    });
    expect(await probeWebGpu({ inNode: false, gpu: gpuGiving(adapter(['shader-f16'])) })).toEqual({
      adapter: true,
      shaderF16: true,
    });
  });
});

describe('the graph EngineModel builds', () => {
  const none = { adapter: false, shaderF16: false };
  const plain = { adapter: true, shaderF16: false };
  const f16 = { adapter: true, shaderF16: true };

  it('append K/V cache unless WebGPU will be tried', () => {
    expect(defaultKvCache('wasm', f16)).toBe('append');
    expect(defaultKvCache('node-cpu', f16)).toBe('append');
    expect(defaultKvCache('webgpu', none)).toBe('concat');
    expect(defaultKvCache('auto', plain)).toBe('concat');
    // navigator.gpu present but no adapter granted: auto runs WASM, so the append cache
    expect(defaultKvCache('auto', none)).toBe('append');
  });

  it('the fp16 graph only where WebGPU has shader-f16, or when forced', () => {
    expect(fp16GraphFor('auto', f16)).toBe(true);
    expect(fp16GraphFor('webgpu', f16)).toBe(true);
    expect(fp16GraphFor('auto', plain)).toBe(false);
    expect(fp16GraphFor('wasm', f16)).toBe(false);
    expect(fp16GraphFor('node-cpu', none)).toBe(false);
    expect(fp16GraphFor('wasm', none, true)).toBe(true);
  });
});
