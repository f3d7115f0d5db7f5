// Retrying over the network, one way for every caller (file downloads, the API judge's POSTs):
// exponential backoff with jitter, `Retry-After` honoured (seconds or an HTTP date, capped), a
// cancellable sleep, and a loop that retries only what the caller calls retryable, restarts the
// count after an attempt that made progress, and says how many tries it made when it gives up.
// Must never retry a failure the caller did not mark retryable, never sleep past a cancel, and never
// import Node APIs or the DOM.

import { abortError } from './hub-api';

export interface RetryPolicy {
  /** failed attempts retried before giving up (an attempt that made progress does not count) */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** the longest `Retry-After` obeyed (a server asking for an hour gets this); default 60 s */
  maxRetryAfterMs?: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 4, baseDelayMs: 500, maxDelayMs: 15_000 };

const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

/** Delay before retry n (1-based): base·2^(n−1) with ±20 % jitter, capped; Retry-After wins. */
export function backoffDelay(n: number, policy: RetryPolicy, retryAfterMs: number | null = null): number {
  if (retryAfterMs !== null)
    return Math.min(Math.max(0, retryAfterMs), policy.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS);
  const raw = policy.baseDelayMs * 2 ** Math.max(0, n - 1);
  const jitter = 1 + (Math.random() - 0.5) * 0.4;
  return Math.min(policy.maxDelayMs, raw * jitter);
}

/** `Retry-After: <seconds>` or an HTTP date → milliseconds, or null. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? null : Math.max(0, t - now);
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** Waits `ms`; rejects with `cancelled()` (default the Hub's 'aborted' error) as soon as `signal` aborts. */
export function sleepMs(
  ms: number,
  signal?: AbortSignal,
  cancelled: () => Error = abortError,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(cancelled());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryLoopOptions {
  policy: RetryPolicy;
  /** whether the failure `e` may be cured by trying again */
  retryable: (e: unknown) => boolean;
  /** the server's `Retry-After` for the failed attempt, if it sent one */
  retryAfterMs?: (e: unknown) => number | null;
  /** true when the failed attempt still made progress (bytes kept): the failure count restarts */
  progressed?: () => boolean;
  /** before each wait (a progress event, a log line) */
  onRetry?: (e: unknown, failures: number, delayMs: number) => void;
  /** the error to throw once the retries are spent (default `e` itself) */
  giveUp?: (e: unknown, attempts: number) => unknown;
  signal?: AbortSignal;
  sleep?: Sleep;
  /** the error a cancel rejects with (default the Hub's 'aborted' error) */
  cancelled?: () => Error;
}

/**
 * Runs `attempt(n)` (n = 1, 2, …) until it returns; a failure `retryable` accepts is retried after
 * `backoffDelay`, at most `policy.retries` times in a row without progress.
 */
export async function retryLoop<T>(attempt: (n: number) => Promise<T>, opts: RetryLoopOptions): Promise<T> {
  const cancelled = opts.cancelled ?? abortError;
  const sleep: Sleep = opts.sleep ?? ((ms, signal) => sleepMs(ms, signal, cancelled));
  let failures = 0;
  for (let n = 1; ; n++) {
    if (opts.signal?.aborted) throw cancelled();
    try {
      return await attempt(n);
    } catch (e) {
      if (opts.signal?.aborted) throw cancelled();
      if (!opts.retryable(e)) throw e;
      failures = opts.progressed?.() ? 0 : failures + 1;
      if (failures > opts.policy.retries) throw opts.giveUp ? opts.giveUp(e, n) : e;
      const delay = backoffDelay(Math.max(1, failures), opts.policy, opts.retryAfterMs?.(e) ?? null);
      opts.onRetry?.(e, failures, delay);
      await sleep(delay, opts.signal);
    }
  }
}
