// The CLI's memory check before a load, as the browser's worker/preflight.ts: every session the spec
// opens (a base, a full finetune, an adapter riding on its base's session) planned together from the
// configs and the adapters' safetensors headers alone — on WASM they share one 4 GiB heap, on
// onnxruntime-node the machine's memory — and a model judge from another source (in fp32), so a spec
// that cannot fit is refused with the dtype that would, before any weight is read or downloaded.
// Must never read a base model's weights, nor an adapter's tensors.

import os from 'node:os';
import { parseConfigDetailed } from '../engine/config';
import type { FileSource } from '../engine/files';
import { planSessions, type SessionPlanInput, type SessionsPlanResult } from '../engine/memory';
import { openSafetensors } from '../engine/safetensors';
import { JUDGE_DTYPE, judgeSharesSession, specSessions } from '../lab/run/models';
import type { ExperimentSpec, ModelSource } from '../lab/spec/experiment';

export class MemoryPreflightError extends Error {
  constructor(
    message: string,
    readonly plan: SessionsPlanResult,
  ) {
    super(message);
    this.name = 'MemoryPreflightError';
  }
}

/** LoRA parameters of an adapter, from its safetensors header (no tensor read). */
export async function adapterParameters(source: FileSource): Promise<number> {
  const file = await openSafetensors(
    await source.openRandomAccess('adapter_model.safetensors'),
    `${source.id}/adapter_model.safetensors`,
  );
  let n = 0;
  for (const t of file.tensors.values()) n += t.shape.reduce((a, b) => a * b, 1);
  return n;
}

export interface CliPreflightOptions {
  /** opens a source without downloading its weights */
  resolveSource: (s: ModelSource) => Promise<FileSource>;
  backend: 'node-cpu' | 'wasm';
  /** tokens a row can reach (the lab's graphs: 2048) */
  contextLength?: number;
  /** onnxruntime-node's budget; default the machine's memory */
  budgetBytes?: number;
  /** a model judge from another source (`eval --judge model:<source>`): one more session, in fp32 */
  judge?: ModelSource;
}

/** The spec's sessions planned together; throws MemoryPreflightError when they do not fit. */
export async function preflightMemory(
  spec: ExperimentSpec,
  opts: CliPreflightOptions,
): Promise<SessionsPlanResult> {
  const sessions: SessionPlanInput[] = [];
  for (const s of specSessions(spec)) {
    const src = await opts.resolveSource(s.entry.source);
    const { spec: arch } = parseConfigDetailed(await src.readJson('config.json'), `${src.id}/config.json`);
    const loraParams = s.entry.adapter
      ? await adapterParameters(await opts.resolveSource(s.entry.adapter))
      : 0;
    sessions.push({ label: s.ids.join(' + '), spec: arch, loraParams });
  }
  if (opts.judge && !judgeSharesSession(spec, opts.judge)) {
    const src = await opts.resolveSource(opts.judge);
    const { spec: arch } = parseConfigDetailed(await src.readJson('config.json'), `${src.id}/config.json`);
    sessions.push({ label: 'judge', spec: arch, dtype: JUDGE_DTYPE });
  }
  const plan = planSessions(
    sessions,
    { dtype: spec.runtime.dtype, contextLength: opts.contextLength ?? 2048 },
    opts.backend === 'wasm'
      ? { backend: 'wasm' }
      : { backend: 'node', budgetBytes: opts.budgetBytes ?? os.totalmem() },
  );
  if (!plan.ok) throw new MemoryPreflightError(plan.message ?? 'the models do not fit in memory', plan);
  return plan;
}
