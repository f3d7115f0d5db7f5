// Client-side time limits for every HTTP request of hub/ (the Hub client, plain URL sources): fetch
// has none of its own in browsers, and Node's are 5 minutes, so a stalled server held each attempt
// for minutes. Two limits, each with a message that says which one fired: the first byte (until the
// response headers arrive, which includes connecting — fetch does not tell the two apart; Node's own
// 10 s connect timeout is recognised by its cause) and an idle body (no bytes for a while mid-
// transfer). Also names a redirect loop as such (Node reports "redirect count exceeded" as the cause;
// browsers say only "Failed to fetch", so there it stays a network error).
// Must never keep a timer running after the request ends, never swallow the caller's own cancel, and
// never import Node APIs or the DOM.

export interface HttpTimeouts {
  /** until the response headers arrive (connect + first byte); default 30 s */
  firstByteMs?: number;
  /** the longest pause between two chunks of the body; default 60 s */
  idleMs?: number;
}

export const DEFAULT_TIMEOUTS: Required<HttpTimeouts> = { firstByteMs: 30_000, idleMs: 60_000 };

/** Which limit a failed request ran into. */
export type HttpFailureKind = 'first_byte_timeout' | 'idle_timeout' | 'connect_timeout' | 'redirect_loop';

/** A request that hit a time limit or a redirect loop; its message says which. */
export class HttpTimeoutError extends Error {
  constructor(
    readonly kind: HttpFailureKind,
    message: string,
  ) {
    super(message);
    this.name = 'HttpTimeoutError';
  }
}

const seconds = (ms: number) => `${ms >= 1000 ? `${+(ms / 1000).toFixed(1)} s` : `${ms} ms`}`;

/** What a fetch rejection was, when it was one of the limits above (else null). */
export function classifyFetchFailure(e: unknown): HttpTimeoutError | null {
  if (e instanceof HttpTimeoutError) return e;
  const cause = (e as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const msg = typeof cause?.message === 'string' ? cause.message : '';
  if (/redirect count exceeded/i.test(msg))
    return new HttpTimeoutError(
      'redirect_loop',
      'redirect loop: the server kept redirecting (more than 20 times); the URL or the server is misconfigured',
    );
  if (cause?.code === 'UND_ERR_CONNECT_TIMEOUT')
    return new HttpTimeoutError(
      'connect_timeout',
      'connect timeout: could not open a connection to the server',
    );
  return null;
}

/** A body that errors with an idle timeout when no chunk arrives for `idleMs` while one is awaited. */
function idleLimited(
  body: ReadableStream<Uint8Array>,
  idleMs: number,
  abort: (e: Error) => void,
  done: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const idle = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const e = new HttpTimeoutError(
              'idle_timeout',
              `idle timeout: no bytes for ${seconds(idleMs)} in the middle of the body (the server stalled)`,
            );
            abort(e);
            reject(e);
          }, idleMs);
        });
        try {
          const r = await Promise.race([reader.read(), idle]);
          if (r.done) {
            done();
            ctl.close();
          } else ctl.enqueue(r.value);
        } catch (e) {
          done();
          reader.cancel().catch(() => undefined);
          ctl.error(e);
        } finally {
          clearTimeout(timer);
        }
      },
      cancel(reason) {
        done();
        return reader.cancel(reason);
      },
    },
    // NOTE: pull only when the consumer reads, so a slow consumer is never taken for a slow server.
    { highWaterMark: 0 },
  );
}

/**
 * `doFetch(url, init)` with the two limits: rejects with HttpTimeoutError('first_byte_timeout') when
 * no headers come in time, and hands back a Response whose body errors with 'idle_timeout' on a stall.
 * The caller's `init.signal` still cancels (its own AbortError comes through unchanged).
 */
export async function fetchWithTimeouts(
  doFetch: typeof fetch,
  url: string,
  init: RequestInit,
  limits: HttpTimeouts = {},
): Promise<Response> {
  const firstByteMs = limits.firstByteMs ?? DEFAULT_TIMEOUTS.firstByteMs;
  const idleMs = limits.idleMs ?? DEFAULT_TIMEOUTS.idleMs;
  const ctl = new AbortController();
  const outer = init.signal ?? undefined;
  const onAbort = () => ctl.abort(outer?.reason);
  if (outer?.aborted) ctl.abort(outer.reason);
  outer?.addEventListener('abort', onAbort, { once: true });
  const release = () => outer?.removeEventListener('abort', onAbort);
  let fired: HttpTimeoutError | null = null;
  const timer = setTimeout(() => {
    fired = new HttpTimeoutError(
      'first_byte_timeout',
      `first-byte timeout: no response within ${seconds(firstByteMs)} (connecting, or waiting for the server to answer)`,
    );
    ctl.abort(fired);
  }, firstByteMs);
  let res: Response;
  try {
    res = await doFetch(url, { ...init, signal: ctl.signal });
  } catch (e) {
    release();
    if (outer?.aborted) throw e;
    throw fired ?? classifyFetchFailure(e) ?? e;
  } finally {
    clearTimeout(timer);
  }
  // NOTE: statuses that may carry no body cannot be rebuilt with one (nor do they need a limit).
  if (!res.body || [101, 103, 204, 205, 304].includes(res.status)) {
    release();
    return res;
  }
  const body = idleLimited(res.body, idleMs, (e) => ctl.abort(e), release);
  // NOTE: a new Response loses `url` and `redirected`; nothing in hub/ reads them.
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/**
 * A response body as bytes, at most `maxBytes`: refused at once when Content-Length says it is
 * larger, else as soon as more arrives (the rest is never read). `tooLarge` gets the announced size,
 * or null when the body just kept coming.
 */
export async function readCapped(
  res: Response,
  maxBytes: number,
  tooLarge: (size: number | null) => Error,
): Promise<Uint8Array> {
  const len = res.headers.get('Content-Length');
  if (len !== null && /^\d+$/.test(len) && Number(len) > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge(Number(len));
  }
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    n += r.value.byteLength;
    if (n > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(null);
    }
    chunks.push(r.value);
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}
