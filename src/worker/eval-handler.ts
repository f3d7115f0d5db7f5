// The engine worker's side of the evaluation requests ('eval', 'eval-load', 'eval-clear', and
// 'judge-answers' for the cards' answers): builds the
// judge the request names, runs or resumes the evaluation with rows kept in IndexedDB, and streams
// progress (each judged row, a throttled partial summary) back to the UI. An API key arrives inside the
// request and lives only in the judge object for that request: it must never be posted back, stored or
// logged. Never touches the DOM (only indexedDB, through the store).
import { evaluate, judgeAnswer, type AnswerJudgement } from '../lab/eval/evaluate';
import { CancelledError } from '../common/abort';
import {
  evalKey,
  planEvaluation,
  summarize,
  MemoryEvalStore,
  rowKey,
  type EvalRow,
  type EvalStore,
} from '../lab/eval/eval-table';
import type { ExperimentSpec, ModelSource } from '../lab/spec/experiment';
import type { Judge } from '../lab/eval/judge';
import { ApiJudge } from '../lab/eval/judge-api';
import { jsonPost } from '../hub/json-post';
import { MarkerJudge } from '../lab/eval/judge-marker';
import {
  sourceModelJudge,
  sourceModelJudgeIdentity,
  specModelJudge,
  specModelJudgeIdentity,
} from '../lab/eval/judge-setup';
import type { Lab } from '../lab/run/lab';
import { IdbEvalStore } from './eval-store-idb';
import type {
  EvalJudgeRequest,
  RequestHandlers,
  RequestOf,
  ResponseBody,
  WorkerEvent,
  WorkerRequest,
} from './protocol';

export type EvalType = 'eval' | 'eval-load' | 'eval-clear' | 'judge-answers';
export type EvalWorkerRequest = RequestOf<EvalType>;

export function isEvalRequest(req: WorkerRequest): req is EvalWorkerRequest {
  return (
    req.type === 'eval' ||
    req.type === 'eval-load' ||
    req.type === 'eval-clear' ||
    req.type === 'judge-answers'
  );
}

export interface EvalHandlerContext {
  /** the worker's lab for this spec (models cached across requests) */
  lab: Lab;
  /** the request's spec, already validated */
  spec: ExperimentSpec;
  /** posts an event ('eval-progress'); the response is the handler's result */
  post: (msg: WorkerEvent) => void;
  signal: AbortSignal;
  /** default: IndexedDB when the environment has it, else memory for the worker's lifetime */
  store?: EvalStore;
  /**
   * the memory check for a judge from another source, before its weights download (the worker's
   * preflightJudgeOrThrow: the spec's sessions and the judge together); throws when it cannot fit
   */
  checkJudge?: (source: ModelSource) => Promise<void>;
}

let defaultStore: EvalStore | null = null;
function storeFor(ctx: EvalHandlerContext): EvalStore {
  if (ctx.store) return ctx.store;
  defaultStore ??= IdbEvalStore.available() ? new IdbEvalStore() : new MemoryEvalStore();
  return defaultStore;
}

/** The judge's identity (to find kept rows) without loading a model or calling an API. */
function judgeIdentity(spec: ExperimentSpec, j: EvalJudgeRequest): { id: string; label: string } {
  switch (j.kind) {
    case 'model':
      return specModelJudgeIdentity(spec, j.model);
    case 'model-source':
      return sourceModelJudgeIdentity(j.source);
    case 'api': {
      const a = new ApiJudge({ url: j.url, model: j.model, post: jsonPost() });
      return { id: a.id, label: a.label };
    }
    case 'marker': {
      const m = new MarkerJudge(j.markers);
      return { id: m.id, label: m.label };
    }
  }
}

async function makeJudge(ctx: EvalHandlerContext, j: EvalJudgeRequest): Promise<Judge> {
  const { lab, spec } = ctx;
  switch (j.kind) {
    case 'model':
      return specModelJudge(lab, spec, j.model);
    case 'model-source':
      await ctx.checkJudge?.(j.source);
      return sourceModelJudge(lab, j.source);
    case 'api':
      return new ApiJudge({
        url: j.url,
        model: j.model,
        key: j.key,
        concurrency: j.concurrency,
        post: jsonPost(),
      });
    case 'marker':
      return new MarkerJudge(j.markers);
  }
}

const PARTIAL_EVERY_MS = 400;

/** The evaluation request's spec key and judge identity: where its rows are kept. */
function keptRows(req: RequestOf<'eval' | 'eval-load' | 'eval-clear'>, ctx: EvalHandlerContext) {
  const who = judgeIdentity(ctx.spec, req.judge);
  return { store: storeFor(ctx), who, key: evalKey(ctx.spec, who.id) };
}

/**
 * The evaluation requests' handlers: 'eval' streams 'eval-progress' events and answers with the
 * summary; 'eval-load' answers with the kept rows summarised; 'eval-clear' forgets them. Each throws on
 * failure and on cancel (an AbortError); the worker's own handler turns that into 'error' / 'cancelled'.
 */
export const evalHandlers: Pick<RequestHandlers<EvalHandlerContext>, EvalType> = {
  async 'eval-clear'(req, ctx) {
    const { store, key } = keptRows(req, ctx);
    await store.clear(key);
    return { type: 'eval-clear-done' };
  },

  async 'eval-load'(req, ctx) {
    const { store, who, key } = keptRows(req, ctx);
    const plan = planEvaluation(ctx.spec, req.samples);
    return {
      type: 'eval-load-done',
      summary: summarize(ctx.spec, plan, await store.load(key), { key, judge: who }),
    };
  },

  async 'judge-answers'(req, ctx) {
    const judge = await makeJudge(ctx, req.judge);
    const prompts = planEvaluation(ctx.spec).prompts;
    const judgements: AnswerJudgement[] = new Array(req.answers.length);
    let done = 0;
    let next = 0;
    ctx.post({ id: req.id, type: 'judge-progress', done, total: req.answers.length });
    // NOTE: as many answers at once as the judge takes (one for a model judge; each answer asks twice)
    const worker = async () => {
      while (next < req.answers.length) {
        if (ctx.signal.aborted) throw new CancelledError();
        const i = next++;
        judgements[i] = await judgeAnswer(judge, prompts, req.question, req.answers[i], {
          signal: ctx.signal,
        });
        done++;
        ctx.post({ id: req.id, type: 'judge-progress', done, total: req.answers.length });
      }
    };
    const lanes = Math.max(1, Math.min(Math.floor(judge.concurrency / 2), req.answers.length));
    await Promise.all(Array.from({ length: lanes }, worker));
    if (ctx.signal.aborted) throw new CancelledError();
    return { type: 'judge-answers-done', judgements };
  },

  async eval(req, ctx) {
    const { spec, post } = ctx;
    const { store, key } = keptRows(req, ctx);
    const plan = planEvaluation(spec, req.samples);
    if (req.fresh) await store.clear(key);
    const judge = await makeJudge(ctx, req.judge);
    const rows = new Map<string, EvalRow>();
    // NOTE: rowKey carries the trial, so a partial summary keeps every trial's row
    const rowId = (r: EvalRow) => rowKey(r);
    for (const r of await store.load(key)) rows.set(rowId(r), r);
    let last = 0;
    const summary = await evaluate(ctx.lab, spec, {
      judge,
      store,
      samples: req.samples,
      signal: ctx.signal,
      onProgress: (p) => {
        if (p.row) rows.set(rowId(p.row), p.row);
        const now = Date.now();
        const partial =
          p.row && now - last >= PARTIAL_EVERY_MS
            ? summarize(spec, plan, [...rows.values()], { key, judge: { id: judge.id, label: judge.label } })
            : undefined;
        if (partial) last = now;
        post({
          id: req.id,
          type: 'eval-progress',
          done: p.done,
          total: p.total,
          restored: p.restored,
          ...(p.stage ? { stage: p.stage } : {}),
          ...(p.row ? { row: p.row } : {}),
          ...(partial ? { partial } : {}),
        });
      },
    });
    return { type: 'eval-done', summary };
  },
};

/** The handler of `type` (K ties the request to its handler and its response). */
function answer<K extends EvalType>(
  type: K,
  req: RequestOf<K>,
  ctx: EvalHandlerContext,
): Promise<ResponseBody<K>> {
  return evalHandlers[type](req, ctx);
}

/** Answers any evaluation request (events through `ctx.post`); resolves to its response body. */
export function handleEvalRequest(
  req: EvalWorkerRequest,
  ctx: EvalHandlerContext,
): Promise<ResponseBody<EvalType>> {
  return answer(req.type, req, ctx);
}
