// Engine self-check in the browser: build each fixture model (tiny-llama, and the Gemma ones: sliding
// windows, soft-caps, GeGLU) on each available backend, run the same prefill (with a LoRA dose when it
// has an adapter, a K/V patch and taps) and a decode step, and compare with the plain TypeScript
// reference — in fp32, then in q4 against the reference on the same weights quantized and dequantized in
// JS. Used by the check page and the e2e tests; answers numbers, never throws them away.
import { errorMessage } from '../common/errors';
import { EngineModel } from '../engine/model';
import type { BackendRequest } from '../engine/session';
import type { FileSource } from '../engine/files';
import { loadModel } from '../engine/weights';
import { loadLora } from '../engine/lora';
import { ENGINE_Q4, q4RoundTrip } from '../engine/quantize';
import { referenceForward } from '../engine/reference';
import type { ForwardInput, PatchSet, Tensor } from '../engine/types';

export interface BackendCheck {
  /** the model's source id (its folder URL) */
  model: string;
  requested: BackendRequest;
  /** weight dtype of this run (the q4 runs follow the fp32 ones) */
  dtype: 'fp32' | 'q4';
  /** backend actually used (with adapter), or null when it could not start */
  used: string | null;
  error?: string;
  /** max |engine − reference| / max(1, |reference|) over prefill logits, taps and the decode step */
  maxRelError: number | null;
  logits?: number[];
  ms?: number;
}

export interface SelfCheckResult {
  /** the first model's source id */
  model: string;
  /** every model's checks, model by model */
  checks: BackendCheck[];
  /** max relative difference between the first two backends' fp32 logits, when both ran (worst model) */
  crossBackend: number | null;
}

/** A further model to check: its folder and, optionally, a LoRA adapter for it. */
export interface SelfCheckModel {
  model: FileSource;
  adapter: FileSource | null;
}

function maxRel(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export async function selfCheck(
  model: FileSource,
  adapter: FileSource,
  backends: BackendRequest[],
  more: SelfCheckModel[] = [],
): Promise<SelfCheckResult> {
  const checks: BackendCheck[] = [];
  let crossBackend: number | null = null;
  for (const m of [{ model, adapter }, ...more]) {
    const r = await checkModel(m.model, m.adapter, backends);
    checks.push(...r.checks);
    if (r.crossBackend !== null) crossBackend = Math.max(crossBackend ?? 0, r.crossBackend);
  }
  return { model: model.id, checks, crossBackend };
}

async function checkModel(
  model: FileSource,
  adapter: FileSource | null,
  backends: BackendRequest[],
): Promise<{ checks: BackendCheck[]; crossBackend: number | null }> {
  const loaded = await loadModel(model);
  const lora = adapter ? await loadLora(adapter, loaded.spec) : undefined;
  const { spec, weights } = loaded;
  const T = 12;
  const ids = [
    Array.from({ length: T }, (_, i) => (i * 37 + 5) % spec.vocabSize),
    Array.from({ length: T }, (_, i) => (i * 11 + 3) % spec.vocabSize),
  ];
  const kvDim = spec.numKvHeads * spec.headDim;
  const mask = new Float32Array(2 * T);
  const k = new Float32Array(2 * T * kvDim);
  const v = new Float32Array(2 * T * kvDim);
  for (let t = 0; t < 4; t++) mask[t] = 1;
  for (let i = 0; i < k.length; i++) {
    k[i] = ((i * 7919) % 200) / 100 - 1;
    v[i] = ((i * 104729) % 200) / 100 - 1;
  }
  const patches: PatchSet = { kv: new Map([[0, { mask, k, v }]]) };
  const input: ForwardInput = {
    inputIds: ids,
    loraScale: [1, 0.5],
    patches,
    taps: { resid: [1], kv: [0] },
  };
  const checks: BackendCheck[] = [];
  const logitsOf: Float32Array[] = [];
  for (const dtype of ['fp32', 'q4'] as const) {
    // q4 is compared with the reference on the weights the 4-bit graph computes with
    const w =
      dtype === 'q4'
        ? q4RoundTrip(weights, {
            ...ENGINE_Q4,
            includeEmbedding: spec.hiddenSize % ENGINE_Q4.blockSize === 0,
          })
        : weights;
    const ref = referenceForward(spec, w, input, { lora });
    const step: ForwardInput = { inputIds: [[7], [9]], loraScale: [1, 0.5], taps: { logits: 'all' } };
    const refStep = referenceForward(spec, w, step, { lora, past: ref.present });
    for (const requested of backends) {
      let engine: EngineModel | null = null;
      try {
        const t0 = performance.now();
        engine = await EngineModel.create(spec, weights, {
          lora,
          backend: requested,
          maxPositions: 64,
          dtype,
        });
        const out = await engine.forward(input);
        const next = await engine.forward(step, out.present);
        out.present.dispose();
        next.present.dispose();
        const pairs: [Tensor | undefined, Tensor | undefined][] = [
          [out.logits, ref.logits],
          [out.resid.get(1), ref.resid.get(1)],
          [out.k.get(0), ref.k.get(0)],
          [out.v.get(0), ref.v.get(0)],
          [next.logits, refStep.logits],
        ];
        let err = 0;
        for (const [a, b] of pairs) err = Math.max(err, a && b ? maxRel(a.data, b.data) : Infinity);
        if (dtype === 'fp32') logitsOf.push(out.logits.data);
        const b = engine.backend;
        checks.push({
          model: model.id,
          requested,
          dtype,
          used: b.kind + (b.adapter ? ` · ${b.adapter}` : ''),
          maxRelError: err,
          logits: Array.from(out.logits.data.slice(0, 8)),
          ms: Math.round(performance.now() - t0),
        });
      } catch (e) {
        checks.push({
          model: model.id,
          requested,
          dtype,
          used: null,
          error: errorMessage(e),
          maxRelError: null,
        });
      } finally {
        engine?.dispose();
      }
    }
  }
  return { checks, crossBackend: logitsOf.length >= 2 ? maxRel(logitsOf[0], logitsOf[1]) : null };
}
