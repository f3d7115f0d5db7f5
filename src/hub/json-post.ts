// The network side of the API judge (lab/eval/judge-api.ts stays pure): one JSON POST over fetch,
// with a timeout per attempt and the shared retry helper (retry.ts) for 429, 5xx, network failures
// and timeouts, honouring Retry-After. It hands back the last answer (status + text) for the judge
// to interpret, or why the endpoint could not be reached.
// Must never log or echo the request headers (they carry the judge's API key), never retry an answer
// retrying cannot change (4xx other than 429), and never import Node APIs or the DOM.

import { CancelledError } from '../common/abort';
import { errorMessage } from '../common/errors';
import type { JsonPost, JsonPostAnswer } from '../common/json-post';
import { parseRetryAfter, retryLoop, type RetryPolicy, type Sleep } from './retry';

export interface JsonPostOptions {
  /** injected for tests and hosts with their own fetch; default globalThis.fetch */
  fetch?: typeof fetch;
  /** default 5 retries, 500 ms doubling to 20 s; Retry-After obeyed up to maxDelayMs */
  retry?: Partial<RetryPolicy>;
  /** per attempt, the answer's body included (default 60 s) */
  timeoutMs?: number;
  sleep?: Sleep;
}

export const JUDGE_RETRY: RetryPolicy = { retries: 5, baseDelayMs: 500, maxDelayMs: 20_000 };

/** What a cancel rejects with (named 'AbortError', like an aborted fetch). */
const cancelled = (): Error => new CancelledError();

/** An answer worth asking again for (429, 5xx) or a failed attempt (network, timeout). */
class Retryable extends Error {
  constructor(
    readonly answer: JsonPostAnswer,
    readonly retryAfterMs: number | null,
  ) {
    super(answer.kind === 'http' ? `HTTP ${answer.status}` : answer.why);
  }
}

export function jsonPost(opts: JsonPostOptions = {}): JsonPost {
  const doFetch =
    opts.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init));
  const merged = { ...JUDGE_RETRY, ...opts.retry };
  const policy: RetryPolicy = { ...merged, maxRetryAfterMs: merged.maxRetryAfterMs ?? merged.maxDelayMs };
  const timeoutMs = opts.timeoutMs ?? 60_000;

  return async ({ url, headers, body, signal }) => {
    const attempt = async (n: number): Promise<JsonPostAnswer> => {
      const ctl = new AbortController();
      const onAbort = () => ctl.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => ctl.abort(), timeoutMs);
      try {
        let res: Response;
        let text: string;
        try {
          res = await doFetch(url, { method: 'POST', headers, body, signal: ctl.signal });
          text = await res.text();
        } catch (e) {
          if (signal?.aborted) throw cancelled();
          const why = ctl.signal.aborted
            ? `timed out after ${timeoutMs} ms`
            : `network error (${errorMessage(e)})`;
          throw new Retryable({ kind: 'unreachable', why, attempts: n }, null);
        }
        const answer: JsonPostAnswer = {
          kind: 'http',
          status: res.status,
          statusText: res.statusText,
          contentType: res.headers.get('content-type'),
          text,
          attempts: n,
        };
        if (res.status === 429 || res.status >= 500)
          throw new Retryable(answer, parseRetryAfter(res.headers.get('retry-after')));
        return answer;
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      }
    };
    try {
      return await retryLoop(attempt, {
        policy,
        retryable: (e) => e instanceof Retryable,
        retryAfterMs: (e) => (e as Retryable).retryAfterMs,
        signal,
        sleep: opts.sleep,
        cancelled,
      });
    } catch (e) {
      // NOTE: the retries are spent: the last answer (or failure) goes back for the judge to word.
      if (e instanceof Retryable) return e.answer;
      throw e;
    }
  };
}
