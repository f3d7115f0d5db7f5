// A place to keep built decoder graphs as files (the CLI's graph cache, src/cli/graph-cache.ts): the
// interface EngineModel builds into or opens from, and the key that says which graph an entry is.
// It must never import Node APIs (the engine is bundled for the browser too) nor decide where files go.

import type { ExternalDataSink } from './graph/builder';
import type { DecoderGraphFiles, DecoderIo, DecoderOptions } from './graph/decoder';
import type { ArchSpec, LoraAdapter } from './types';

/** Bumped whenever the graph a key describes could come out different (decoder.ts, builder.ts, proto.ts). */
export const GRAPH_FORMAT_VERSION = 1;

/** A graph kept in the store: ORT opens `modelPath` (its external data beside it). */
export interface StoredGraph {
  modelPath: string;
  /** bytes of the protobuf and the external data */
  graphBytes: number;
  io: DecoderIo;
  /** true when this call built it (a miss, or a damaged entry rebuilt) */
  built: boolean;
  /** ORT's optimized model with MLAS's prepacked weights, kept beside the graph (session.ts uses it) */
  packed?: PackedGraph;
}

/**
 * The graph as ORT's optimizer left it, its prepacked weights saved in its external data
 * (`session.save_external_prepacked_constant_initializers`): opening it maps the packed weights instead
 * of packing every MatMul weight again (~20 s and a second copy of the graph in memory on a 0.5B model).
 * Packing is specific to the CPU and the ORT build, so a store keeps one per host and build.
 */
export interface PackedGraph {
  /** an intact one for this host and ORT build, to open with optimization off; null when there is none */
  modelPath: string | null;
  /** a fresh folder to save one into while the graph opens; returns the model path to save to */
  prepare(): Promise<string>;
  /**
   * After a save (`saved`: it finished) keep it for the next open; otherwise (the save failed, or the
   * packed model would not open) remove it, so the next open packs and saves again.
   */
  settle(saved: boolean): Promise<void>;
}

export interface GraphStore {
  /**
   * The graph for `key` (graphKey's text): opened from an intact entry, else built into the store by
   * `build`, which writes the external data to the sink one tensor at a time and returns the protobuf.
   */
  graph(key: string, build: (sink: ExternalDataSink) => Promise<DecoderGraphFiles>): Promise<StoredGraph>;
}

/**
 * Everything that changes the built graph, as canonical JSON: the format version, the weights'
 * identity (`source`: the model files, and the adapter's bytes, as the store's owner identifies them),
 * the whole ArchSpec, the decoder options, and the adapter's shape (its values are in `source`).
 */
export function graphKey(
  source: string,
  spec: ArchSpec,
  opts: DecoderOptions,
  lora: LoraAdapter | undefined,
): string {
  const { lora: _values, ...decoder } = opts;
  return canonicalJson({
    format: GRAPH_FORMAT_VERSION,
    source,
    spec,
    decoder,
    lora: lora
      ? {
          r: lora.r,
          alpha: lora.alpha,
          useRslora: lora.useRslora,
          scaling: lora.scaling,
          branches: [...lora.branches.keys()].sort(),
        }
      : null,
  });
}

/** JSON with object keys sorted and undefined fields dropped, so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) out[k] = (v as Record<string, unknown>)[k];
      return out;
    }
    return v;
  });
}
