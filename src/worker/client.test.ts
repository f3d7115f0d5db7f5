// The worker protocol's response map, at both ends. Types: `client.request(req)` and the queue's
// `submit(req)` resolve to `ResponseOf<req.type>` with no type argument, a handler must return its
// request type's response, responses follow the `X` → `X-done` rule and no event does (the type check
// over this file fails when the map breaks: `expectTypeOf` and `@ts-expect-error` lines). Runtime: the
// client settles a request with its response, passes events on, rejects errors, cancels and a response
// of another type — against a stand-in Worker.
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { CancelledError } from '../common/abort';
import { EngineQueue } from '../ui/engine-queue';
import { EngineClient, WorkerError } from './client';
import type {
  AnsweredType,
  RequestHandlers,
  RequestType,
  ResponseOf,
  WorkerEvent,
  WorkerMessage,
  WorkerResponse,
} from './protocol';

/** A Worker stand-in: keeps what the client posts; the test answers through `reply`. */
class FakeWorker {
  static last: FakeWorker | null = null;
  posted: unknown[] = [];
  onmessage: ((e: { data: WorkerMessage }) => void) | null = null;
  onerror: ((e: { message: string }) => void) | null = null;
  constructor() {
    FakeWorker.last = this;
  }
  postMessage(msg: unknown): void {
    this.posted.push(msg);
  }
  terminate(): void {}
  reply(msg: WorkerMessage): void {
    this.onmessage?.({ data: msg });
  }
}

function client(): { c: EngineClient; w: FakeWorker } {
  vi.stubGlobal('Worker', FakeWorker);
  const c = new EngineClient();
  if (!FakeWorker.last) throw new Error('no worker made');
  return { c, w: FakeWorker.last };
}

afterEach(() => vi.unstubAllGlobals());

describe('the response map (types)', () => {
  it('a request resolves to its own response, inferred from its type', () => {
    // NOTE: the assertions are checked by the type check; at run time the requests stay unanswered.
    const { c } = client();
    expectTypeOf(c.request({ type: 'probe' })).toEqualTypeOf<Promise<ResponseOf<'probe'>>>();
    expectTypeOf(c.request({ type: 'prepare', spec: {} })).resolves.toHaveProperty('prompt');
    expectTypeOf(c.request({ type: 'sweep', spec: {}, component: 'kv' })).resolves.toEqualTypeOf<
      ResponseOf<'sweep'>
    >();
    expectTypeOf(
      c.start({ type: 'eval-clear', spec: {}, judge: { kind: 'model' } }).done,
    ).resolves.toEqualTypeOf<ResponseOf<'eval-clear'>>();
    const queue = new EngineQueue(c);
    expectTypeOf(queue.submit({ type: 'drift', spec: {} }).done).toEqualTypeOf<
      Promise<ResponseOf<'drift'>>
    >();
    expectTypeOf<ResponseOf<'prepare'>['type']>().toEqualTypeOf<'prepare-done'>();
    expectTypeOf<ResponseOf<'eval-load'>['summary']>().not.toBeAny();

    // @ts-expect-error a sweep is answered with a sweep, not a prompt
    const wrong: Promise<ResponseOf<'prepare'>> = c.request({ type: 'sweep', spec: {}, component: 'kv' });
    // @ts-expect-error a request missing a field
    void c.request({ type: 'sweep', spec: {} });
    // @ts-expect-error a field no request of that type has
    void c.request({ type: 'probe', spec: {} });
    // @ts-expect-error 'cancel' is never answered: client.cancel() sends it
    void c.request({ type: 'cancel', target: 1 });
    void wrong;
  });

  it('a handler must return its request type’s response', () => {
    const ok: RequestHandlers<null>['clear-cache'] = async (req) => ({
      type: 'clear-cache-done',
      removed: req.repo ? 1 : 2,
    });
    // @ts-expect-error the response of another request type
    const other: RequestHandlers<null>['clear-cache'] = async () => ({ type: 'hub-token-done', ok: true });
    // @ts-expect-error the right type without its fields
    const partial: RequestHandlers<null>['prepare'] = async () => ({ type: 'prepare-done' });
    expectTypeOf(ok).returns.resolves.toHaveProperty('removed');
    void other;
    void partial;
  });

  it('every response is `X-done` of an answered request, and no event name ends in -done', () => {
    type Done = Exclude<WorkerResponse['type'], 'error' | 'cancelled'>;
    expectTypeOf<Done>().toEqualTypeOf<`${AnsweredType}-done`>();
    expectTypeOf<AnsweredType>().toEqualTypeOf<Exclude<RequestType, 'cancel'>>();
    expectTypeOf<Extract<WorkerEvent['type'], `${string}-done`>>().toBeNever();
  });
});

describe('EngineClient', () => {
  it('sends the request with an id and resolves with the matching response; events go to onEvent', async () => {
    const { c, w } = client();
    const events: WorkerEvent[] = [];
    const { id, done } = c.start({ type: 'tokenize', spec: {}, text: 'hi' }, (e) => events.push(e));
    expect(w.posted).toEqual([{ type: 'tokenize', spec: {}, text: 'hi', id }]);
    const progress: WorkerEvent = {
      id,
      type: 'progress',
      progress: { stage: 'parse', model: 'base', loaded: 1, total: 2 },
    };
    w.reply(progress);
    w.reply({ id, type: 'tokenize-done', tokens: [{ id: 5, text: 'hi' }] });
    await expect(done).resolves.toEqual({ id, type: 'tokenize-done', tokens: [{ id: 5, text: 'hi' }] });
    expect(events).toEqual([progress]);
  });

  it('a response of another type rejects instead of resolving as the wrong shape', async () => {
    const { c, w } = client();
    const { id, done } = c.start({ type: 'info' });
    w.reply({ id, type: 'probe-done', backend: { kind: 'wasm', shaderF16: false } });
    await expect(done).rejects.toThrow("the engine answered 'info' with 'probe-done'");
  });

  it('error and cancelled reject; a message for no pending request is ignored', async () => {
    const { c, w } = client();
    const a = c.start({ type: 'drift', spec: {} });
    const b = c.start({ type: 'drift', spec: {} });
    w.reply({ id: 999, type: 'drift-done', result: { layers: [], lk: [], lv: [], lkv: 0 } });
    w.reply({
      id: a.id,
      type: 'error',
      message: 'no such model',
      problem: { kind: 'local-missing', path: 'x' },
    });
    w.reply({ id: b.id, type: 'cancelled' });
    const err = await a.done.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerError);
    expect(err).toMatchObject({ message: 'no such model', problem: { kind: 'local-missing', path: 'x' } });
    await expect(b.done).rejects.toBeInstanceOf(CancelledError);
  });

  it('cancel posts a cancel for the target', () => {
    const { c, w } = client();
    const { id } = c.start({ type: 'run', spec: {} });
    c.cancel(id);
    expect(w.posted[1]).toMatchObject({ type: 'cancel', target: id });
  });
});
