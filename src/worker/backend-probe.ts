// Decides which ORT backend the browser can use: WebGPU when an adapter exists, WASM otherwise, and
// always says why. Runs in the worker (WebGPU is available there). Must never create a model session.

export interface BackendProbe {
  kind: 'webgpu' | 'wasm';
  /** adapter description, e.g. "google swiftshader (fallback)" */
  adapter?: string;
  /** why WASM was chosen */
  reason?: string;
  shaderF16: boolean;
  maxBufferSize?: number;
  maxStorageBufferBindingSize?: number;
  /** threads of ORT's WASM pool in this worker (1: no pool, the page is not cross-origin isolated) */
  wasmThreads?: number;
}

interface GpuAdapterLike {
  info?: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean };
  features: { has(name: string): boolean };
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
}
interface GpuLike {
  requestAdapter(): Promise<GpuAdapterLike | null>;
}

export async function probeBackend(nav: object = navigator): Promise<BackendProbe> {
  const gpu = (nav as { gpu?: GpuLike }).gpu;
  if (!gpu)
    return {
      kind: 'wasm',
      reason: 'this browser has no WebGPU (navigator.gpu is missing)',
      shaderF16: false,
    };
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return { kind: 'wasm', reason: `WebGPU adapter request failed: ${String(e)}`, shaderF16: false };
  }
  if (!adapter)
    return { kind: 'wasm', reason: 'WebGPU is present but no adapter is available', shaderF16: false };
  const info = adapter.info ?? {};
  const name =
    [info.vendor, info.architecture || info.description].filter(Boolean).join(' ') || 'unknown adapter';
  return {
    kind: 'webgpu',
    adapter: info.isFallbackAdapter ? `${name} (fallback)` : name,
    shaderF16: adapter.features.has('shader-f16'),
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  };
}
