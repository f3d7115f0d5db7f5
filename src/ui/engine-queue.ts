// Runs engine requests one at a time. NOTE: ORT sessions (WebGPU above all) refuse a second run while
// one is in flight ("Session already started"), and a cancelled request only stops at its next check,
// so the UI never has two model requests in the worker at once: each waits for the one before it.
// A job cancelled before it starts is never sent. Must never reorder jobs or drop a cancel.
import { CancelledError } from '../common/abort';
import type { RequestBody } from '../worker/client';
import type { AnsweredType, ResponseOf, WorkerEvent } from '../worker/protocol';

/** The part of EngineClient the queue needs (a fake in tests). */
export interface EngineLike {
  start<K extends AnsweredType>(
    req: RequestBody<K>,
    onEvent?: (e: WorkerEvent) => void,
  ): { id: number; done: Promise<ResponseOf<K>> };
  cancel(target: number): void;
}

export interface Job<R> {
  done: Promise<R>;
  /** true once cancel() was called */
  readonly cancelled: boolean;
  /** true once sent to the worker */
  readonly started: boolean;
  cancel(): void;
}

export class EngineQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private engine: EngineLike;

  constructor(engine: EngineLike) {
    this.engine = engine;
  }

  /**
   * Queues a request; `onStart` runs when it is sent (e.g. to show "running"). The job's result is the
   * request's response, its type inferred from the request's `type`.
   */
  submit<K extends AnsweredType>(
    req: RequestBody<K>,
    onEvent?: (e: WorkerEvent) => void,
    onStart?: () => void,
  ): Job<ResponseOf<K>> {
    let id: number | null = null;
    let cancelled = false;
    const done = this.tail.then(() => {
      if (cancelled) throw new CancelledError();
      onStart?.();
      const r = this.engine.start(req, onEvent);
      id = r.id;
      return r.done;
    });
    this.tail = done.catch(() => undefined);
    return {
      done,
      get cancelled() {
        return cancelled;
      },
      get started() {
        return id !== null;
      },
      cancel: () => {
        if (cancelled) return;
        cancelled = true;
        if (id !== null) this.engine.cancel(id);
      },
    };
  }
}
