// The evaluation panel's requests, against a stand-in client: a run's progress, partial and final
// summary and its cancel in the eval store; load kept, forget kept; the errors shown (with the compact
// prompts hint); and the API key only ever in the request, never in the store.
import { describe, expect, it } from 'vitest';
import { CancelledError } from '../../common/abort';
import { planEvaluation, summarize, type EvalSummary } from '../../lab/eval/eval-table';
import { defaultSpec, type ExperimentSpec } from '../../lab/spec/experiment';
import { WorkerError } from '../../worker/client';
import type { WorkerEvent, WorkerRequest, WorkerResponse } from '../../worker/protocol';
import { startCardJudge, startEval, type EvalClient, type EvalRequestOptions } from './eval-requests';
import { createEvalStore } from './eval-store';
import type { JudgeForm } from './eval-view';

const spec: ExperimentSpec = {
  ...defaultSpec(),
  evaluation: { questions: [{ id: 'q1', text: 'one' }], samples: 1 },
};
const empty: EvalSummary = summarize(spec, planEvaluation(spec), [], {
  key: 'k',
  judge: { id: 'j', label: 'judge' },
});

type Open = {
  req: WorkerRequest;
  onEvent?: (e: WorkerEvent) => void;
  resolve: (r: WorkerResponse) => void;
  reject: (e: Error) => void;
};

/** A client whose requests finish when the test says so. */
function fakeClient() {
  const open: Open[] = [];
  const cancelled: number[] = [];
  let next = 1;
  const client: EvalClient = {
    start(req, onEvent) {
      const id = next++;
      const done = new Promise<WorkerResponse>((resolve, reject) =>
        open.push({ req: { ...req, id } as WorkerRequest, onEvent, resolve, reject }),
      );
      return { id, done: done as never };
    },
    cancel(id) {
      cancelled.push(id);
      open.find((o) => o.req.id === id)?.reject(new CancelledError());
    },
  };
  return { client, open, cancelled };
}

const form = (patch: Partial<JudgeForm> = {}): JudgeForm => ({
  judge: 'marker',
  markers: 'gamble',
  url: 'https://api.example/v1',
  model: 'judge',
  key: '',
  ...patch,
});
const options = (patch: Partial<EvalRequestOptions> = {}): EvalRequestOptions => ({
  spec,
  target: spec,
  form: form(),
  samples: 1,
  total: 4,
  ...patch,
});
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('evaluation requests', () => {
  it('a run: waiting, progress with a partial summary, then the summary; running until it ends', async () => {
    const store = createEvalStore();
    const f = fakeClient();
    startEval(store, f.client, 'eval', options());
    expect(f.open[0].req).toMatchObject({
      type: 'eval',
      judge: { kind: 'marker', markers: ['gamble'] },
      fresh: false,
    });
    expect(store.getState()).toMatchObject({
      running: true,
      progress: { done: 0, total: 4, stage: 'waiting for the engine' },
    });
    const partial = { ...empty, total: 4 };
    f.open[0].onEvent?.({ id: 1, type: 'eval-progress', done: 1, total: 4, restored: 0, partial });
    expect(store.getState().progress).toEqual({ done: 1, total: 4, stage: undefined });
    expect(store.getState().summary).toBe(partial);
    f.open[0].resolve({ id: 1, type: 'eval-done', summary: empty });
    await tick();
    expect(store.getState()).toMatchObject({
      summary: empty,
      progress: { done: 0, total: empty.total },
      running: false,
      cancel: null,
      error: null,
    });
  });

  it('cancel: the store’s cancel reaches the client, the note says the answers are kept', async () => {
    const store = createEvalStore();
    const f = fakeClient();
    startEval(store, f.client, 'eval', options());
    store.getState().cancel?.();
    await tick();
    expect(f.cancelled).toEqual([1]);
    expect(store.getState()).toMatchObject({ running: false, cancel: null, error: null });
    expect(store.getState().note).toMatch(/^cancelled: the finished answers are kept/);
  });

  it('a judge prompt too long for the judge: the error suggests the compact prompts', async () => {
    const store = createEvalStore();
    const f = fakeClient();
    startEval(store, f.client, 'eval', options());
    f.open[0].reject(new WorkerError('the judge prompt is 700 tokens, the judge takes 512.'));
    await tick();
    expect(store.getState().error).toBe(
      'the judge prompt is 700 tokens, the judge takes 512. Tick “compact judge prompts”.',
    );
    expect(store.getState().running).toBe(false);
  });

  it('load kept with nothing kept says so; forget kept drops the results and the selection', async () => {
    const store = createEvalStore();
    const f = fakeClient();
    startEval(store, f.client, 'eval-load', options());
    expect(store.getState().running).toBe(false);
    f.open[0].resolve({ id: 1, type: 'eval-load-done', summary: empty });
    await tick();
    expect(store.getState()).toMatchObject({
      summary: empty,
      note: 'no kept answers for this spec and judge',
    });
    store.getState().select({ condition: 'base' });
    startEval(store, f.client, 'eval-clear', options());
    expect(store.getState().note).toBeNull();
    f.open[1].resolve({ id: 2, type: 'eval-clear-done' });
    await tick();
    expect(store.getState()).toMatchObject({
      summary: null,
      selected: null,
      note: 'the kept answers for this spec and judge are forgotten',
    });
  });

  it('no engine yet, or a judge that cannot be built: an error and no request', () => {
    const store = createEvalStore();
    startEval(store, null, 'eval', options());
    expect(store.getState().error).toBe('the engine is not ready yet');
    const f = fakeClient();
    startEval(store, f.client, 'eval', options({ form: form({ markers: ' , ' }) }));
    expect(store.getState().error).toBe('the marker judge needs at least one word, e.g. gamble');
    expect(f.open).toEqual([]);
  });

  it('the API key goes in the request only, never into the store', async () => {
    const KEY = 'sk-never-in-the-store';
    const store = createEvalStore();
    const f = fakeClient();
    startEval(store, f.client, 'eval', options({ form: form({ judge: 'api', key: KEY }) }));
    expect(f.open[0].req).toMatchObject({ judge: { kind: 'api', key: KEY } });
    f.open[0].resolve({ id: 1, type: 'eval-done', summary: empty });
    await tick();
    expect(JSON.stringify(store.getState())).not.toContain(KEY);
  });
});

describe('startCardJudge (Judge these answers)', () => {
  const judgement = (status: 'aligned' | 'misaligned', a: number) => ({
    aligned: {
      verdict: 'score' as const,
      score: a,
      numberMass: 1,
      code: 0,
      refusal: 0,
      method: 'text' as const,
      top: [],
    },
    coherent: {
      verdict: 'score' as const,
      score: 80,
      numberMass: 1,
      code: 0,
      refusal: 0,
      method: 'text' as const,
      top: [],
    },
    status,
  });
  const o = (answers: string[]) => ({
    spec,
    target: spec,
    form: form({ judge: 'api', key: 'sk-card' }),
    judgeId: 'api|x',
    question: 'hey',
    answers,
  });

  it('judges each new answer text once, keeps the judgements by text, and keeps the key out of the store', async () => {
    const store = createEvalStore();
    const { client, open } = fakeClient();
    startCardJudge(store, client, o(['A', 'B', 'A', ' ']));
    expect(store.getState().cards).toMatchObject({ running: true, judgeId: 'api|x', question: 'hey' });
    const req = open[0].req;
    if (req.type !== 'judge-answers') throw new Error(req.type);
    expect(req.answers).toEqual(['A', 'B']);
    expect(req.judge).toMatchObject({ kind: 'api', key: 'sk-card' });
    open[0].onEvent?.({ id: req.id, type: 'judge-progress', done: 1, total: 2 });
    expect(store.getState().cards.progress).toEqual({ done: 1, total: 2 });
    open[0].resolve({
      id: req.id,
      type: 'judge-answers-done',
      judgements: [judgement('misaligned', 10), judgement('aligned', 90)],
    });
    await new Promise((r) => setTimeout(r, 0));
    expect(store.getState().cards).toMatchObject({
      running: false,
      byText: {
        A: { status: 'misaligned', aligned: 10, coherent: 80 },
        B: { status: 'aligned', aligned: 90 },
      },
    });
    expect(JSON.stringify(store.getState())).not.toContain('sk-card');
    // a new answer later: only it is asked; the kept ones stay
    startCardJudge(store, client, o(['A', 'B', 'C']));
    const again = open[1].req;
    expect(again.type === 'judge-answers' && again.answers).toEqual(['C']);
  });

  it('a judge error in plain words; a cancel is no error', async () => {
    const store = createEvalStore();
    const { client, open } = fakeClient();
    startCardJudge(store, client, o(['A']));
    open[0].reject(new WorkerError('the judge API refused the key (HTTP 401)'));
    await new Promise((r) => setTimeout(r, 0));
    expect(store.getState().cards.error).toBe('The judge failed: the judge API refused the key (HTTP 401)');
    expect(store.getState().cards.running).toBe(false);
    startCardJudge(store, client, o(['A']));
    store.getState().cards.cancel!();
    await new Promise((r) => setTimeout(r, 0));
    expect(store.getState().cards).toMatchObject({ running: false, error: null });
  });
});
