// UI-side handle on the engine worker: request/response with ids, streamed events per request,
// cancellation. Must never import the engine itself (that would pull ORT into the UI thread).
import { CancelledError } from '../common/abort';
import type {
  AnsweredType,
  LoadProblem,
  RequestOf,
  ResponseOf,
  WorkerEvent,
  WorkerMessage,
  WorkerResponse,
} from './protocol';

type Pending = {
  /** settles the request's promise with its response (after checking that it is the right one) */
  resolve: (r: WorkerResponse) => void;
  reject: (e: Error) => void;
  onEvent?: (e: WorkerEvent) => void;
};
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/**
 * A request as the caller writes it (the client adds the id); its `type` picks its response type.
 * NOTE: `& { type: K }` is what lets the compiler infer K from a literal at the call site.
 */
export type RequestBody<K extends AnsweredType = AnsweredType> = DistributiveOmit<RequestOf<K>, 'id'> & {
  type: K;
};

/** Every event type (the record keeps the list complete: a missing or extra one fails to compile). */
const EVENT_TYPES: Record<WorkerEvent['type'], true> = {
  progress: true,
  backend: true,
  prompt: true,
  token: true,
  condition: true,
  sweep: true,
  'attention-progress': true,
  'eval-progress': true,
  'judge-progress': true,
};

function isEvent(msg: WorkerMessage): msg is WorkerEvent {
  return Object.hasOwn(EVENT_TYPES, msg.type);
}

/** True when `msg` is the answer to a request of type `type` (protocol.ts: `X` → `X-done`). */
function isResponseTo<K extends AnsweredType>(type: K, msg: WorkerResponse): msg is ResponseOf<K> {
  return msg.type === `${type}-done`;
}

/** The worker's error answer; `problem` says what the user can do about a failed load. */
export class WorkerError extends Error {
  readonly problem: LoadProblem | null;
  constructor(message: string, problem?: LoadProblem) {
    super(message);
    this.name = 'WorkerError';
    this.problem = problem ?? null;
  }
}

export class EngineClient {
  private worker: Worker;
  private nextId = 1;
  private pending = new Map<number, Pending>();

  constructor() {
    this.worker = new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module' });
    this.worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
      const msg = e.data;
      const p = this.pending.get(msg.id);
      if (!p) return;
      if (isEvent(msg)) {
        p.onEvent?.(msg);
        return;
      }
      this.pending.delete(msg.id);
      if (msg.type === 'error') p.reject(new WorkerError(msg.message, msg.problem));
      else if (msg.type === 'cancelled') p.reject(new CancelledError());
      else p.resolve(msg);
    };
    this.worker.onerror = (e) => {
      const err = new Error(`engine worker failed: ${e.message}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  /**
   * Sends a request; returns its id (for cancel) and the promise of its response, whose type follows
   * from the request's `type` (`ResponseOf`). A response of another type rejects it.
   */
  start<K extends AnsweredType>(
    req: RequestBody<K>,
    onEvent?: (e: WorkerEvent) => void,
  ): { id: number; done: Promise<ResponseOf<K>> } {
    const id = this.nextId++;
    const done = new Promise<ResponseOf<K>>((resolve, reject) => {
      const settle = (r: WorkerResponse) =>
        isResponseTo(req.type, r)
          ? resolve(r)
          : reject(new Error(`the engine answered '${req.type}' with '${r.type}'`));
      this.pending.set(id, { resolve: settle, reject, onEvent });
      this.worker.postMessage({ ...req, id });
    });
    return { id, done };
  }

  request<K extends AnsweredType>(
    req: RequestBody<K>,
    onEvent?: (e: WorkerEvent) => void,
  ): Promise<ResponseOf<K>> {
    return this.start(req, onEvent).done;
  }

  cancel(target: number): void {
    this.worker.postMessage({ id: this.nextId++, type: 'cancel', target } satisfies RequestOf<'cancel'>);
  }

  dispose(): void {
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new CancelledError());
    this.pending.clear();
  }
}
