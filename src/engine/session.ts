// ORT sessions for built graphs: picks the execution provider (WebGPU when the browser has an adapter,
// WASM otherwise or when WebGPU session creation fails; onnxruntime-web WASM or onnxruntime-node CPU in
// Node), reports the choice and the reason in BackendInfo, and keeps `present.*` on the GPU under WebGPU.
// It must never swallow a backend failure silently, never load two ORT runtimes into a browser bundle
// (onnxruntime-node is only imported by a name the bundler cannot see), and never know model semantics.

import type { PackedGraph } from './graph-store';
import type * as OrtWeb from 'onnxruntime-web';
import { errorMessage } from '../common/errors';
import { formatBytes } from '../common/format';
import { EngineError } from './errors';
import type { ExternalDataFile } from './graph/builder';

/** The ORT module API shared by onnxruntime-web and onnxruntime-node (both re-export onnxruntime-common). */
export type Ort = typeof OrtWeb;
export type OrtTensor = OrtWeb.Tensor;
export type OrtSession = OrtWeb.InferenceSession;

export type BackendKind = 'webgpu' | 'wasm' | 'node-cpu';
/** `auto`: WebGPU → WASM in a browser; onnxruntime-node → WASM in Node. */
export type BackendRequest = 'auto' | BackendKind;

export interface BackendInfo {
  kind: BackendKind;
  /** why this backend and not a faster one (e.g. the WebGPU error), when it was a fallback */
  reason?: string;
  /** WebGPU adapter, e.g. "google swiftshader" */
  adapter?: string;
  /** the adapter offers `shader-f16` (an fp16 request builds the fp16 graph) */
  shaderF16?: boolean;
}

export interface OrtConfig {
  /** base URL (or per-file map) of the self-hosted ORT .wasm/.mjs files */
  wasmPaths?: OrtWeb.Env.WebAssemblyFlags['wasmPaths'];
  /** WASM threads (needs cross-origin isolation in a browser); 1 disables the thread pool */
  numThreads?: number;
  /** run WASM in ORT's own proxy worker */
  proxy?: boolean;
  /** ORT's own log level; the app uses 'error' so placement notes do not read as console errors */
  logLevel?: 'verbose' | 'info' | 'warning' | 'error' | 'fatal';
}

/** A graph in memory: the protobuf and its external data. */
export interface GraphBytes {
  model: Uint8Array;
  externalData: ExternalDataFile[];
}

/**
 * A graph on disk (onnxruntime-node only): the `.onnx` file, its external data beside it (ORT reads or
 * maps it from there: no JS copy), and its size for messages.
 */
export interface GraphFile {
  modelPath: string;
  graphBytes: number;
  /** a prepacked copy to open instead, or to save while opening (node-cpu with prepacking on) */
  packed?: PackedGraph;
}

export type SessionGraph = GraphBytes | GraphFile;

export function isGraphFile(g: SessionGraph): g is GraphFile {
  return 'modelPath' in g;
}

export interface CreateSessionOptions {
  /** outputs to leave on the GPU under WebGPU (e.g. `present.*`), fed straight to the next run */
  gpuOutputs?: readonly string[];
  /** graph optimisation level; default 'all' */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** intra-op threads for onnxruntime-node */
  intraOpNumThreads?: number;
  /** ORT session config entries, e.g. `{ 'session.disable_prepacking': '1' }` (both runtimes: `extra`) */
  sessionConfig?: Readonly<Record<string, string>>;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

let webPromise: Promise<Ort> | undefined;
let nodePromise: Promise<Ort> | undefined;
let pendingConfig: OrtConfig = {};

/** onnxruntime-web, loaded once; configured with the settings from configureOrt. */
export function loadOrtWeb(): Promise<Ort> {
  webPromise ??= import('onnxruntime-web').then((m) => {
    const ort = ((m as unknown as { default?: Ort }).default ?? m) as Ort;
    applyConfig(ort, pendingConfig);
    return ort;
  });
  return webPromise;
}

/** onnxruntime-node (Node only); hidden from bundlers so a browser build never includes it. */
export function loadOrtNode(): Promise<Ort> {
  if (!isNode) return Promise.reject(new Error('onnxruntime-node is only available in Node'));
  const name = 'onnxruntime-node';
  nodePromise ??= import(/* @vite-ignore */ name).then((m: { default?: Ort } & Ort) => {
    return (m.InferenceSession ? m : m.default) as Ort;
  });
  return nodePromise;
}

function applyConfig(ort: Ort, c: OrtConfig): void {
  if (c.wasmPaths !== undefined) ort.env.wasm.wasmPaths = c.wasmPaths;
  if (c.numThreads !== undefined) ort.env.wasm.numThreads = c.numThreads;
  if (c.proxy !== undefined) ort.env.wasm.proxy = c.proxy;
  if (c.logLevel !== undefined) ort.env.logLevel = c.logLevel;
}

/** The most WASM threads the app asks for: decode is bandwidth-bound, more threads mostly take cores. */
export const MAX_WASM_THREADS = 4;

/**
 * ORT's WASM thread count for a browser context: `hardwareConcurrency` capped at MAX_WASM_THREADS when
 * the page is cross-origin isolated (SharedArrayBuffer, which the pool needs), else 1 (no pool).
 */
export function wasmThreadsFor(ctx: { crossOriginIsolated?: boolean; hardwareConcurrency?: number }): number {
  const hc = ctx.hardwareConcurrency;
  if (!ctx.crossOriginIsolated || typeof hc !== 'number' || !Number.isFinite(hc)) return 1;
  return Math.max(1, Math.min(MAX_WASM_THREADS, Math.floor(hc)));
}

/**
 * Sets onnxruntime-web's WASM options. Call before the first session; `wasmPaths` is how the app
 * self-hosts the .wasm files (ORT's default is a CDN).
 */
export function configureOrt(c: OrtConfig): void {
  pendingConfig = { ...pendingConfig, ...c };
  if (webPromise) void webPromise.then((ort) => applyConfig(ort, c));
}

// GPUBufferUsage flags (the DOM typings here carry no WebGPU types).
const GPU_BUFFER_COPY_SRC = 0x04;
const GPU_BUFFER_COPY_DST = 0x08;
const GPU_BUFFER_STORAGE = 0x80;

interface GpuBufferLike {
  destroy(): void;
}
interface GpuDeviceLike {
  createBuffer(desc: { size: number; usage: number }): GpuBufferLike;
  queue: {
    writeBuffer(
      buffer: GpuBufferLike,
      offset: number,
      data: ArrayBufferLike,
      dataOffset: number,
      size: number,
    ): void;
  };
}

interface GpuAdapterLike {
  info?: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean };
  features?: { has(name: string): boolean };
}
export interface GpuLike {
  requestAdapter(opts?: { powerPreference?: string }): Promise<GpuAdapterLike | null>;
}

function describeAdapter(a: GpuAdapterLike): string {
  const info = a.info ?? {};
  const name =
    [info.vendor, info.architecture || info.description].filter(Boolean).join(' ') || 'unknown adapter';
  return info.isFallbackAdapter ? `${name} (fallback)` : name;
}

/** One ORT session plus the runtime that made it (tensors must come from the same runtime). */
export class EngineSession {
  private released = false;

  constructor(
    readonly ort: Ort,
    private readonly session: OrtSession,
    readonly backend: BackendInfo,
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs with exactly these outputs fetched (ORT still runs every node of the graph: see CONTEXT.md). */
  async run(
    feeds: Record<string, OrtTensor>,
    fetches: readonly string[],
  ): Promise<Record<string, OrtTensor>> {
    if (this.released) throw new Error('session already released');
    return (await this.session.run(feeds, fetches as string[])) as Record<string, OrtTensor>;
  }

  float32(data: Float32Array, dims: readonly number[]): OrtTensor {
    return new this.ort.Tensor('float32', data, dims);
  }

  int64(data: BigInt64Array, dims: readonly number[]): OrtTensor {
    return new this.ort.Tensor('int64', data, dims);
  }

  /**
   * A read-only input that stays valid across runs (the no-op patches): under WebGPU it is uploaded once
   * into a GPU buffer, so runs do not re-upload it; elsewhere it is a plain CPU tensor.
   */
  async constant(data: Float32Array, dims: readonly number[]): Promise<OrtTensor> {
    if (this.backend.kind !== 'webgpu') return this.float32(data, dims);
    const device = await (this.ort.env.webgpu as unknown as { device: Promise<GpuDeviceLike> }).device;
    // NOTE: round up to 16 bytes: JSEP kernels may bind the buffer as vec4 arrays.
    const buffer = device.createBuffer({
      size: Math.ceil(data.byteLength / 16) * 16,
      usage: GPU_BUFFER_STORAGE | GPU_BUFFER_COPY_SRC | GPU_BUFFER_COPY_DST,
    });
    device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return this.ort.Tensor.fromGpuBuffer(buffer as unknown as OrtWeb.Tensor.GpuBufferType, {
      dataType: 'float32',
      dims,
      dispose: () => buffer.destroy(),
    });
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}

function sessionOptions(
  graph: SessionGraph,
  opts: CreateSessionOptions,
  providers: OrtWeb.InferenceSession.SessionOptions['executionProviders'],
): OrtWeb.InferenceSession.SessionOptions {
  return {
    executionProviders: providers,
    graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
    ...(isGraphFile(graph)
      ? {}
      : { externalData: graph.externalData.map((f) => ({ path: f.path, data: f.data })) }),
    ...(opts.intraOpNumThreads ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
    ...(opts.sessionConfig ? { extra: { ...opts.sessionConfig } } : {}),
    // NOTE: the session's own logger ignores env.logLevel; without this, placement notes print as errors.
    ...(pendingConfig.logLevel ? { logSeverityLevel: SEVERITY[pendingConfig.logLevel] } : {}),
  };
}

/** What ORT (native or WASM) throws when an allocation fails. */
const OOM_PATTERN =
  /bad_alloc|out of memory|Cannot enlarge memory|Aborted\(OOM\)|Array buffer allocation failed|failed to allocate/i;

/** The bytes a graph hands ORT: the model and its external data. */
function graphBytesOf(graph: SessionGraph): number {
  if (isGraphFile(graph)) return graph.graphBytes;
  return graph.model.byteLength + graph.externalData.reduce((n, f) => n + f.data.byteLength, 0);
}

/**
 * An allocation failure of ORT, as "out of memory: …" with what was being opened and what to do (never
 * `std::bad_alloc`); any other error as it was.
 */
export function mapSessionError(e: unknown, backend: BackendKind, graphBytes: number): unknown {
  const text = errorMessage(e);
  if (!OOM_PATTERN.test(text)) return e;
  const where =
    backend === 'wasm'
      ? 'WebAssembly’s 4 GiB heap, shared by every session of the page'
      : backend === 'webgpu'
        ? 'the GPU'
        : 'this machine';
  return new EngineError(
    'out_of_memory',
    `out of memory: opening a ${backend} session of ${formatBytes(graphBytes)} did not fit in ${where}; choose lighter weights (int8 or q4), a LoRA adapter instead of a second full model, or fewer models at once`,
    { backend, graphBytes },
  );
}

/** `InferenceSession.create`, with allocation failures mapped (mapSessionError). */
async function createMapped<S>(backend: BackendKind, graph: SessionGraph, f: () => Promise<S>): Promise<S> {
  try {
    return await f();
  } catch (e) {
    throw mapSessionError(e, backend, graphBytesOf(graph));
  }
}

const SEVERITY = { verbose: 0, info: 1, warning: 2, error: 3, fatal: 4 } as const;

async function createWasm(
  graph: SessionGraph,
  opts: CreateSessionOptions,
  reason?: string,
): Promise<EngineSession> {
  if (isGraphFile(graph)) throw new Error('a graph file opens on node-cpu only');
  const ort = await loadOrtWeb();
  const s = await createMapped('wasm', graph, () =>
    ort.InferenceSession.create(graph.model, sessionOptions(graph, opts, ['wasm'])),
  );
  return new EngineSession(ort, s, reason ? { kind: 'wasm', reason } : { kind: 'wasm' });
}

/** ORT config entries that save the optimized model's prepacked weights into its external data. */
const SAVE_PACKED_CONFIG = {
  'session.optimized_model_external_initializers_file_name': 'model.onnx.data',
  'session.optimized_model_external_initializers_min_size_in_bytes': '1024',
  'session.save_external_prepacked_constant_initializers': '1',
};

/**
 * A graph file's session through its prepacked copy: opened from an intact one (optimization off: it
 * is ORT's own optimized graph), else opened from the graph while ORT saves one. A packed copy that
 * fails to open or to save is removed and the graph opened as it is.
 */
async function createNodeCpuPacked(
  ort: Ort,
  graph: GraphFile,
  packed: PackedGraph,
  opts: CreateSessionOptions,
): Promise<OrtWeb.InferenceSession> {
  const plain = () => ort.InferenceSession.create(graph.modelPath, sessionOptions(graph, opts, ['cpu']));
  if (packed.modelPath) {
    try {
      return await ort.InferenceSession.create(
        packed.modelPath,
        sessionOptions(graph, { ...opts, graphOptimizationLevel: 'disabled' }, ['cpu']),
      );
    } catch {
      await packed.settle(false);
      return plain();
    }
  }
  let s: OrtWeb.InferenceSession;
  try {
    const to = await packed.prepare();
    const o = sessionOptions(
      graph,
      { ...opts, sessionConfig: { ...opts.sessionConfig, ...SAVE_PACKED_CONFIG } },
      ['cpu'],
    );
    s = await ort.InferenceSession.create(graph.modelPath, { ...o, optimizedModelFilePath: to });
  } catch {
    // NOTE: e.g. no disk space for the packed copy: the graph opens as it is
    await packed.settle(false);
    return plain();
  }
  await packed.settle(true);
  return s;
}

async function createNodeCpu(graph: SessionGraph, opts: CreateSessionOptions): Promise<EngineSession> {
  const ort = await loadOrtNode();
  const packed =
    isGraphFile(graph) && graph.packed && opts.sessionConfig?.['session.disable_prepacking'] !== '1'
      ? graph.packed
      : undefined;
  if (packed && isGraphFile(graph)) {
    const s = await createMapped('node-cpu', graph, () => createNodeCpuPacked(ort, graph, packed, opts));
    return new EngineSession(ort, s, { kind: 'node-cpu' });
  }
  // NOTE: from a path, ORT reads the external data beside the .onnx file itself (maps it where it can)
  const s = await createMapped('node-cpu', graph, () =>
    isGraphFile(graph)
      ? ort.InferenceSession.create(graph.modelPath, sessionOptions(graph, opts, ['cpu']))
      : ort.InferenceSession.create(graph.model, sessionOptions(graph, opts, ['cpu'])),
  );
  return new EngineSession(ort, s, { kind: 'node-cpu' });
}

/** What a WebGPU session here would get, asked before a graph is built (its dtype and K/V cache). */
export interface WebGpuPresence {
  /** an adapter was granted: `auto` will try WebGPU */
  adapter: boolean;
  /** it has `shader-f16` (fp16 kernels) */
  shaderF16: boolean;
}

/**
 * Asks for the adapter a session would get; none in Node, without `navigator.gpu`, or when the request
 * fails or returns null (Chrome on Linux without the flag exposes `navigator.gpu` and grants nothing).
 */
export async function probeWebGpu(
  env: { inNode: boolean; gpu?: GpuLike } = {
    inNode: isNode,
    gpu: (globalThis.navigator as { gpu?: GpuLike } | undefined)?.gpu,
  },
): Promise<WebGpuPresence> {
  const none = { adapter: false, shaderF16: false };
  if (env.inNode || !env.gpu) return none;
  try {
    const adapter = await env.gpu.requestAdapter({ powerPreference: 'high-performance' });
    return adapter ? { adapter: true, shaderF16: adapter.features?.has('shader-f16') ?? false } : none;
  } catch {
    return none;
  }
}

/** The WebGPU attempt; resolves to a session or to the reason it could not be made. */
async function tryWebGpu(
  graph: SessionGraph,
  opts: CreateSessionOptions,
): Promise<EngineSession | { reason: string }> {
  const gpu = (globalThis.navigator as { gpu?: GpuLike } | undefined)?.gpu;
  if (!gpu) return { reason: 'no WebGPU here (navigator.gpu is missing)' };
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return { reason: `WebGPU adapter request failed: ${errorMessage(e)}` };
  }
  if (!adapter) return { reason: 'WebGPU is present but no adapter is available' };
  if (isGraphFile(graph)) return { reason: 'a graph file opens on node-cpu only' };
  const ort = await loadOrtWeb();
  const info: BackendInfo = {
    kind: 'webgpu',
    adapter: describeAdapter(adapter),
    shaderF16: adapter.features?.has('shader-f16') ?? false,
  };
  try {
    // NOTE: ORT creates its device from this adapter once; every later session shares that device, so
    // GPU-resident KV tensors can move between the base and the finetuned sessions.
    const env = ort.env.webgpu as unknown as { adapter?: unknown };
    env.adapter ??= adapter;
    const location: Record<string, OrtWeb.Tensor.DataLocation> = {};
    for (const name of opts.gpuOutputs ?? []) location[name] = 'gpu-buffer';
    const s = await ort.InferenceSession.create(graph.model, {
      ...sessionOptions(graph, opts, ['webgpu']),
      preferredOutputLocation: location,
    });
    return new EngineSession(ort, s, info);
  } catch (e) {
    return {
      reason: `WebGPU session creation failed: ${errorMessage(mapSessionError(e, 'webgpu', graphBytesOf(graph)))}`,
    };
  }
}

/** Creates a session on the requested backend; `auto` falls back and says why in `backend.reason`. */
export async function createSession(
  graph: SessionGraph,
  request: BackendRequest = 'auto',
  opts: CreateSessionOptions = {},
): Promise<EngineSession> {
  switch (request) {
    case 'wasm':
      return createWasm(graph, opts);
    case 'node-cpu':
      return createNodeCpu(graph, opts);
    case 'webgpu': {
      const r = await tryWebGpu(graph, opts);
      if (r instanceof EngineSession) return r;
      throw new Error(r.reason);
    }
    case 'auto': {
      if (isGraphFile(graph)) return createNodeCpu(graph, opts);
      if (isNode) {
        try {
          await loadOrtNode();
        } catch (e) {
          return createWasm(graph, opts, `onnxruntime-node unavailable: ${errorMessage(e)}`);
        }
        return createNodeCpu(graph, opts);
      }
      const r = await tryWebGpu(graph, opts);
      if (r instanceof EngineSession) return r;
      return createWasm(graph, opts, r.reason);
    }
  }
}
