// Backend choice in Node: which runtime each request gets, and that a WebGPU failure is reported with
// its reason instead of being swallowed.

import { afterEach, describe, expect, it } from 'vitest';
import { GraphBuilder } from './graph/builder';
import { DataType } from './graph/proto';
import {
  configureOrt,
  createSession,
  loadOrtWeb,
  mapSessionError,
  MAX_WASM_THREADS,
  wasmThreadsFor,
  type SessionGraph,
} from './session';
import { EngineError } from './errors';

configureOrt({ numThreads: 1 });

function tinyGraph(): SessionGraph {
  const b = new GraphBuilder();
  const x = b.input('x', DataType.FLOAT, ['n']);
  b.op('Neg', [x], undefined, 'y');
  b.output('y', DataType.FLOAT, ['n']);
  return b.build();
}

function stubGpu(gpu: unknown): void {
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
}

const original = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
afterEach(() => {
  if (original) Object.defineProperty(globalThis, 'navigator', original);
  else delete (globalThis as { navigator?: unknown }).navigator;
});

describe('createSession in Node', () => {
  it("'auto' picks onnxruntime-node", async () => {
    const s = await createSession(tinyGraph(), 'auto');
    expect(s.backend).toEqual({ kind: 'node-cpu' });
    const out = await s.run({ x: s.float32(Float32Array.of(1, -2), [2]) }, ['y']);
    expect(Array.from(out.y.data as Float32Array)).toEqual([-1, 2]);
    await s.release();
  });

  it("'wasm' uses onnxruntime-web with the configured thread count", async () => {
    const s = await createSession(tinyGraph(), 'wasm');
    expect(s.backend.kind).toBe('wasm');
    expect((await loadOrtWeb()).env.wasm.numThreads).toBe(1);
    const out = await s.run({ x: s.float32(Float32Array.of(3), [1]) }, ['y']);
    expect(out.y.data[0]).toBe(-3);
    await s.release();
  });

  it("'webgpu' without navigator.gpu fails and says why", async () => {
    stubGpu(undefined);
    await expect(createSession(tinyGraph(), 'webgpu')).rejects.toThrow(/navigator\.gpu is missing/);
  });

  it("'webgpu' without an adapter fails and says why", async () => {
    stubGpu({ requestAdapter: async () => null });
    await expect(createSession(tinyGraph(), 'webgpu')).rejects.toThrow(/no adapter/);
  });

  it("'webgpu' reports the runtime's own error when the session cannot be made", async () => {
    stubGpu({
      requestAdapter: async () => ({
        info: { vendor: 'acme', architecture: 'rdna' },
        features: new Set<string>(),
      }),
    });
    // onnxruntime-web's Node build has no WebGPU backend: the failure must surface with its message.
    await expect(createSession(tinyGraph(), 'webgpu')).rejects.toThrow(/WebGPU session creation failed: .+/);
  });
});

describe('wasmThreadsFor', () => {
  it('uses the cores when cross-origin isolated, capped', () => {
    expect(wasmThreadsFor({ crossOriginIsolated: true, hardwareConcurrency: 2 })).toBe(2);
    expect(wasmThreadsFor({ crossOriginIsolated: true, hardwareConcurrency: 3 })).toBe(3);
    expect(wasmThreadsFor({ crossOriginIsolated: true, hardwareConcurrency: 64 })).toBe(MAX_WASM_THREADS);
  });

  it('is 1 without isolation (no SharedArrayBuffer) or without a core count', () => {
    expect(wasmThreadsFor({ crossOriginIsolated: false, hardwareConcurrency: 16 })).toBe(1);
    expect(wasmThreadsFor({ hardwareConcurrency: 16 })).toBe(1);
    expect(wasmThreadsFor({ crossOriginIsolated: true })).toBe(1);
    expect(wasmThreadsFor({ crossOriginIsolated: true, hardwareConcurrency: 0 })).toBe(1);
    expect(wasmThreadsFor({ crossOriginIsolated: true, hardwareConcurrency: NaN })).toBe(1);
  });
});

describe('mapSessionError', () => {
  it('reports an ORT allocation failure as "out of memory: …", never std::bad_alloc', () => {
    const e = mapSessionError(
      new Error("Can't create a session. ERROR_CODE: 6, ERROR_MESSAGE: std::bad_alloc"),
      'wasm',
      1.95e9,
    );
    expect(e).toBeInstanceOf(EngineError);
    expect((e as EngineError).code).toBe('out_of_memory');
    expect((e as Error).message).toMatch(
      /^out of memory: opening a wasm session of [\d.]+ \S+ did not fit in .*4 GiB heap.*q4/,
    );
    expect((e as Error).message).not.toMatch(/bad_alloc/);
    const grown = mapSessionError(
      new RangeError('WebAssembly.Memory.grow(): Cannot enlarge memory'),
      'node-cpu',
      1,
    );
    expect((grown as Error).message).toMatch(/^out of memory: /);
  });

  it('leaves every other error as it was', () => {
    const other = new Error("Can't create a session. ERROR_CODE: 1, ERROR_MESSAGE: Load model failed");
    expect(mapSessionError(other, 'wasm', 1)).toBe(other);
  });
});
