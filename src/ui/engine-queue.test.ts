import { describe, expect, it } from 'vitest';
import { CancelledError } from '../common/abort';
import type { WorkerResponse } from '../worker/protocol';
import { EngineQueue, type EngineLike } from './engine-queue';

/** A fake engine whose requests finish when the test says so. */
function fakeEngine() {
  const log: string[] = [];
  const open = new Map<number, { resolve: (r: WorkerResponse) => void; reject: (e: Error) => void }>();
  let next = 1;
  const engine: EngineLike = {
    start(req) {
      const id = next++;
      log.push(`start ${req.type} #${id}`);
      const done = new Promise<WorkerResponse>((resolve, reject) => open.set(id, { resolve, reject }));
      return { id, done: done as never };
    },
    cancel(id) {
      log.push(`cancel #${id}`);
      open.get(id)?.reject(new CancelledError());
    },
  };
  const finish = (id: number) =>
    open.get(id)?.resolve({ id, type: 'drift-done', result: { layers: [], lk: [], lv: [], lkv: 0 } });
  return { engine, log, finish };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('engine queue', () => {
  it('sends one request at a time, in order', async () => {
    const f = fakeEngine();
    const q = new EngineQueue(f.engine);
    const a = q.submit({ type: 'drift', spec: {} });
    const b = q.submit({ type: 'info' });
    await tick();
    expect(f.log).toEqual(['start drift #1']);
    expect(a.started).toBe(true);
    expect(b.started).toBe(false);
    f.finish(1);
    await a.done;
    await tick();
    expect(f.log).toEqual(['start drift #1', 'start info #2']);
  });

  it('never sends a job cancelled while queued, and cancels a running one in the worker', async () => {
    const f = fakeEngine();
    const q = new EngineQueue(f.engine);
    const a = q.submit({ type: 'drift', spec: {} });
    const b = q.submit({ type: 'drift', spec: {} });
    const c = q.submit({ type: 'info' });
    await tick();
    b.cancel();
    a.cancel();
    await expect(a.done).rejects.toBeInstanceOf(CancelledError);
    await expect(b.done).rejects.toBeInstanceOf(CancelledError);
    await tick();
    expect(f.log).toEqual(['start drift #1', 'cancel #1', 'start info #2']);
    f.finish(2);
    await c.done;
  });
});
