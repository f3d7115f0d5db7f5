// The logit lens head: a small ORT session that applies the model's final norm and unembedding (and
// Gemma-2's final soft-cap) to a batch of residual vectors and returns, per vector, the top-k tokens'
// log-probabilities and those of tracked tokens — computed in the graph (LogSoftmax, TopK, Gather), so
// only k + M numbers per vector cross back to JS, never the [rows, vocab] matrix. A separate session
// rather than an output of the decoder graph because ORT runs every node of a graph on every call (it
// does not prune to the fetched outputs: measured), so an in-graph lens would cost every decode step.
// It holds its own fp32 copy of the head matrix (vocab × hidden): create it only when a lens is asked for.

import { EngineError } from './errors';
import { float32Source, GraphBuilder } from './graph/builder';
import { DataType } from './graph/proto';
import { WEBGPU_WEIGHT_BLOCK_BYTES } from './memory';
import { createSession, type BackendRequest, type EngineSession, type OrtTensor } from './session';
import type { ArchSpec, Tensor, WeightMap } from './types';

/** IO names of the lens graph (stable). */
export const LENS_RESID = 'lens.resid';
export const LENS_K = 'lens.k';
export const LENS_TOKENS = 'lens.tokens';
export const LENS_TOP_LOGP = 'lens.top_logp';
export const LENS_TOP_IDS = 'lens.top_ids';
export const LENS_TRACKED_LOGP = 'lens.tracked_logp';

/** What the lens head needs of a checkpoint: the final norm weight [H] and the head matrix [V, H]. */
export interface LensWeights {
  norm: Tensor;
  /** lm_head.weight, or the input embedding when the head is tied */
  head: Tensor;
}

/** The final norm and head of a loaded checkpoint (the embedding when tied). */
export function lensWeightsOf(spec: ArchSpec, weights: WeightMap): LensWeights {
  const norm = weights.get('model.norm.weight');
  const head = weights.get(spec.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  if (!norm || !head) {
    throw new EngineError('missing_tensor', 'the logit lens needs model.norm.weight and the head matrix', {
      tensor: !norm
        ? 'model.norm.weight'
        : spec.tieWordEmbeddings
          ? 'model.embed_tokens.weight'
          : 'lm_head.weight',
    });
  }
  return { norm, head };
}

/** One residual vector through the lens: top-k tokens (descending) and the tracked tokens, as log-probs. */
export interface LensRow {
  topIds: number[];
  topLogp: number[];
  trackedLogp: number[];
}

/** Rows per session call: bounds the [rows, vocab] intermediate (64 × 151,936 × 4 B ≈ 39 MB). */
const CHUNK_ROWS = 64;

export class LensHead {
  private disposed = false;

  private constructor(
    readonly spec: ArchSpec,
    private readonly session: EngineSession,
  ) {}

  /**
   * Builds the norm + head graph and opens it on `backend` (the decoder's backend, normally). A head
   * larger than `maxWeightBytes` (default WEBGPU_WEIGHT_BLOCK_BYTES when the backend may be WebGPU, as
   * the decoder) is stored as row blocks, one Gemm each, the logits concatenated.
   */
  static async create(
    spec: ArchSpec,
    w: LensWeights,
    backend: BackendRequest = 'auto',
    maxWeightBytes: number = backend === 'webgpu' || backend === 'auto'
      ? WEBGPU_WEIGHT_BLOCK_BYTES
      : Infinity,
  ): Promise<LensHead> {
    const { hiddenSize: H, vocabSize: V } = spec;
    if (w.norm.shape.length !== 1 || w.norm.shape[0] !== H)
      throw new EngineError('shape_mismatch', `final norm has shape [${w.norm.shape}], expected [${H}]`);
    if (w.head.shape.length !== 2 || w.head.shape[0] !== V || w.head.shape[1] !== H)
      throw new EngineError('shape_mismatch', `head has shape [${w.head.shape}], expected [${V},${H}]`);
    const b = new GraphBuilder({ externalPath: 'lens.onnx.data' });
    const resid = b.input(LENS_RESID, DataType.FLOAT, ['rows', H]);
    const k = b.input(LENS_K, DataType.INT64, [1]);
    const tokens = b.input(LENS_TOKENS, DataType.INT64, ['tracked']);
    const offset = spec.normWeightOffset ?? 0;
    const normW = b.weight(
      'model.norm.weight',
      float32Source([H], offset === 0 ? w.norm.data : w.norm.data.map((v) => offset + v)),
    );
    // the decoder's RMSNorm, op for op (graph/decoder.ts), so the last site reproduces its logits
    const ms = b.reduceMean(b.op('Pow', [resid, b.constF32([2], [])]), [-1]);
    const normed = b.mul(b.div(resid, b.sqrt(b.add(ms, b.constF32([spec.rmsNormEps], [])))), normW);
    const per = Math.max(1, Math.floor(maxWeightBytes / (H * 4)));
    let logits: string;
    if (V <= per) logits = b.gemmTransB(normed, b.weight('head', float32Source([V, H], w.head.data)));
    else {
      const parts: string[] = [];
      for (let s = 0; s < V; s += per) {
        const n = Math.min(per, V - s);
        const block = float32Source([n, H], w.head.data.subarray(s * H, (s + n) * H));
        parts.push(b.gemmTransB(normed, b.weight(`head.rows_${s}`, block)));
      }
      logits = b.concat(parts, 1);
    }
    const cap = spec.finalSoftcap;
    if (cap !== undefined)
      logits = b.mul(b.op('Tanh', [b.div(logits, b.constF32([cap], []))]), b.constF32([cap], []));
    const logp = b.op('LogSoftmax', [logits], [{ name: 'axis', type: 'int', value: 1 }]);
    b.node('TopK', [logp, k], {
      attrs: [
        { name: 'axis', type: 'int', value: 1 },
        { name: 'largest', type: 'int', value: 1 },
        { name: 'sorted', type: 'int', value: 1 },
      ],
      outputs: 2,
      names: [LENS_TOP_LOGP, LENS_TOP_IDS],
    });
    b.gather(logp, tokens, 1, LENS_TRACKED_LOGP);
    b.output(LENS_TOP_LOGP, DataType.FLOAT, ['rows', 'k']);
    b.output(LENS_TOP_IDS, DataType.INT64, ['rows', 'k']);
    b.output(LENS_TRACKED_LOGP, DataType.FLOAT, ['rows', 'tracked']);
    const session = await createSession(b.build(), backend);
    return new LensHead(spec, session);
  }

  /**
   * `resid` holds rows·hidden values (row-major): each row through final norm + head. `k` top tokens
   * (1 ≤ k ≤ vocab) and the log-prob of every `tracked` id, per row.
   */
  async apply(resid: Float32Array, k: number, tracked: readonly number[]): Promise<LensRow[]> {
    if (this.disposed) throw new Error('lens head already disposed');
    const { hiddenSize: H, vocabSize: V } = this.spec;
    if (resid.length % H !== 0)
      throw new EngineError('bad_input', `lens input holds ${resid.length} values, not a multiple of ${H}`);
    if (!Number.isInteger(k) || k < 1 || k > V)
      throw new EngineError('bad_input', `lens top-k ${k} outside [1, ${V}]`);
    for (const id of tracked) {
      if (!Number.isInteger(id) || id < 0 || id >= V)
        throw new EngineError('bad_input', `tracked token id ${id} outside the vocabulary (${V})`);
    }
    const rows = resid.length / H;
    const s = this.session;
    const out: LensRow[] = [];
    const kT = s.int64(BigInt64Array.of(BigInt(k)), [1]);
    const tokT = s.int64(
      BigInt64Array.from(tracked, (t) => BigInt(t)),
      [tracked.length],
    );
    try {
      for (let r0 = 0; r0 < rows; r0 += CHUNK_ROWS) {
        const n = Math.min(CHUNK_ROWS, rows - r0);
        const x = s.float32(resid.subarray(r0 * H, (r0 + n) * H), [n, H]);
        let res: Record<string, OrtTensor>;
        try {
          res = await s.run({ [LENS_RESID]: x, [LENS_K]: kT, [LENS_TOKENS]: tokT }, [
            LENS_TOP_LOGP,
            LENS_TOP_IDS,
            LENS_TRACKED_LOGP,
          ]);
        } finally {
          x.dispose();
        }
        const topLogp = (await res[LENS_TOP_LOGP].getData()) as Float32Array;
        const topIds = (await res[LENS_TOP_IDS].getData()) as BigInt64Array;
        const trackedLogp = (await res[LENS_TRACKED_LOGP].getData()) as Float32Array;
        for (const t of Object.values(res)) t.dispose();
        const M = tracked.length;
        for (let i = 0; i < n; i++) {
          out.push({
            topIds: Array.from(topIds.subarray(i * k, (i + 1) * k), Number),
            topLogp: Array.from(topLogp.subarray(i * k, (i + 1) * k)),
            trackedLogp: Array.from(trackedLogp.subarray(i * M, (i + 1) * M)),
          });
        }
      }
    } finally {
      kT.dispose();
      tokT.dispose();
    }
    return out;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.session.release();
  }
}
