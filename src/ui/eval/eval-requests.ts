// The evaluation panel's requests to the engine: run, load kept and forget kept, through the worker
// client or the UI's request queue, with progress, results, notes and errors written to the eval
// store. The API key travels only inside the request (judgeRequest); it must never be written to the
// store or a message.
import { isAbort } from '../../common/abort';
import { errorMessage } from '../../common/errors';
import type { ExperimentSpec } from '../../lab/spec/experiment';
import type { RequestBody } from '../../worker/client';
import type { AnsweredType, ResponseOf, WorkerEvent } from '../../worker/protocol';
import type { CardJudging, EvalStoreApi } from './eval-store';
import { judgeRequest, type JudgeForm } from './eval-view';

/**
 * How the panel reaches the worker: the EngineClient itself (requests go straight to the worker), or a
 * queue of requests such as the UI's EngineQueue (`submit` → a job; an evaluation then waits for the
 * requests before it, and the ones after it wait for it).
 */
export type EvalClient =
  | {
      start<K extends AnsweredType>(
        req: RequestBody<K>,
        onEvent?: (e: WorkerEvent) => void,
      ): { id: number; done: Promise<ResponseOf<K>> };
      cancel(id: number): void;
    }
  | {
      submit<K extends AnsweredType>(
        req: RequestBody<K>,
        onEvent?: (e: WorkerEvent) => void,
      ): { done: Promise<ResponseOf<K>>; cancel(): void };
    };

/** Sends a request either way; returns its result and how to cancel it. */
function send<K extends AnsweredType>(
  c: EvalClient,
  req: RequestBody<K>,
  onEvent?: (e: WorkerEvent) => void,
): { done: Promise<ResponseOf<K>>; cancel: () => void } {
  if ('submit' in c) {
    const job = c.submit(req, onEvent);
    return { done: job.done, cancel: () => job.cancel() };
  }
  const r = c.start(req, onEvent);
  return { done: r.done, cancel: () => c.cancel(r.id) };
}

export type EvalAction = 'eval' | 'eval-load' | 'eval-clear';

export interface EvalRequestOptions {
  /** the lab's spec (the judge's models) */
  spec: ExperimentSpec;
  /** the spec evaluated: the lab's, with the compact judge prompts when ticked (evalSpec) */
  target: ExperimentSpec;
  /** the judge form, the key included */
  form: JudgeForm;
  samples: number;
  /** the answers a run judges, shown until the worker's first progress */
  total: number;
  /** 'eval' only: forget the kept rows first */
  fresh?: boolean;
}

/**
 * Runs the evaluation ('eval'), loads the kept rows ('eval-load') or forgets them ('eval-clear'),
 * writing what happens to `store`; a run's cancel is the store's `cancel` until it ends.
 */
export function startEval(
  store: EvalStoreApi,
  c: EvalClient | null,
  type: EvalAction,
  o: EvalRequestOptions,
): void {
  const set = store.setState;
  if (!c) return set({ error: 'the engine is not ready yet' });
  const jr = judgeRequest(o.form, o.spec);
  if (!jr.ok) return set({ error: jr.message });
  set({ error: null, note: null });
  if (type === 'eval-clear') {
    send(c, { type, spec: o.target, judge: jr.judge }).done.then(
      () =>
        set({
          summary: null,
          selected: null,
          note: 'the kept answers for this spec and judge are forgotten',
        }),
      (e: unknown) => set({ error: errorMessage(e) }),
    );
    return;
  }
  const body: RequestBody<'eval' | 'eval-load'> =
    type === 'eval'
      ? { type, spec: o.target, judge: jr.judge, samples: o.samples, fresh: o.fresh ?? false }
      : { type, spec: o.target, judge: jr.judge, samples: o.samples };
  const { done, cancel } = send(c, body, (e) => {
    if (e.type !== 'eval-progress') return;
    set({
      progress: { done: e.done, total: e.total, stage: e.stage },
      ...(e.partial ? { summary: e.partial } : {}),
    });
  });
  if (type === 'eval')
    set({ cancel, running: true, progress: { done: 0, total: o.total, stage: 'waiting for the engine' } });
  done
    .then((r) => {
      set({ summary: r.summary, progress: { done: r.summary.rows.length, total: r.summary.total } });
      if (type === 'eval-load' && r.summary.rows.length === 0)
        set({ note: 'no kept answers for this spec and judge' });
    })
    .catch((e: unknown) => {
      if (isAbort(e)) set({ note: 'cancelled: the finished answers are kept; Run resumes from them' });
      else {
        const m = errorMessage(e);
        set({ error: /judge prompt is \d+ tokens/.test(m) ? `${m} Tick “compact judge prompts”.` : m });
      }
    })
    .finally(() => {
      if (type !== 'eval' || store.getState().cancel !== cancel) return;
      set({ cancel: null, running: false });
    });
}

export interface CardJudgeOptions {
  /** the lab's spec (the judge's models) */
  spec: ExperimentSpec;
  /** the spec whose judge prompts are used (evalSpec: compact ones when ticked) */
  target: ExperimentSpec;
  /** the judge form, the key included */
  form: JudgeForm;
  /** cardJudgeId of the form */
  judgeId: string;
  /** the question the cards answer */
  question: string;
  /** the cards' answer texts and their trials' (duplicates are judged once) */
  answers: string[];
}

/**
 * "Judge these answers": the cards' answers judged by the panel's judge ('judge-answers'), written to
 * the store's `cards` by answer text; its cancel is `cards.cancel` until it ends; an error in plain words.
 */
export function startCardJudge(store: EvalStoreApi, c: EvalClient | null, o: CardJudgeOptions): void {
  const cards = () => store.getState().cards;
  const set = (patch: Partial<CardJudging>) => store.setState({ cards: { ...cards(), ...patch } });
  if (!c) return set({ error: 'the engine is not ready yet' });
  const jr = judgeRequest(o.form, o.spec);
  if (!jr.ok) return set({ error: jr.message });
  const same = cards().judgeId === o.judgeId && cards().question === o.question;
  const kept = same ? cards().byText : {};
  const answers = [...new Set(o.answers.filter((a) => a.trim() && !Object.hasOwn(kept, a)))];
  set({ judgeId: o.judgeId, question: o.question, byText: kept, error: null });
  if (answers.length === 0) return set({ progress: { done: 0, total: 0 } });
  const { done, cancel } = send(
    c,
    { type: 'judge-answers', spec: o.target, judge: jr.judge, question: o.question, answers },
    (e) => {
      if (e.type === 'judge-progress') set({ progress: { done: e.done, total: e.total } });
    },
  );
  set({ running: true, cancel, progress: { done: 0, total: answers.length } });
  done
    .then((r) => {
      const byText = { ...cards().byText };
      r.judgements.forEach((j, i) => {
        byText[answers[i]] = {
          status: j.status,
          aligned: j.aligned?.score ?? null,
          coherent: j.coherent?.score ?? null,
        };
      });
      if (cards().judgeId === o.judgeId) set({ byText });
    })
    .catch((e: unknown) => {
      if (isAbort(e)) set({ error: null, progress: null });
      else {
        const m = errorMessage(e);
        set({
          error: `The judge failed: ${m}${/judge prompt is \d+ tokens/.test(m) ? ' Tick “compact judge prompts” in the Evaluation panel.' : ''}`,
        });
      }
    })
    .finally(() => {
      if (cards().cancel === cancel) set({ running: false, cancel: null });
    });
}
