// One file download, done properly: streamed into a sink (a cache writer), progress events with
// bytes, rate and ETA, retry with exponential backoff on network errors / 5xx / 429 (honouring
// Retry-After), resume of an interrupted file with `Range` only under a strong validator (`If-Range`
// with the ETag the held bytes came with; without one it starts again from byte 0), and size checks
// against the size the Hub announced (model info), the Content-Range total or the Content-Length.
// Must never splice bodies of two responses that may differ (no validator, another ETag, a length
// that disagrees), never call a file whole whose length nothing proves (unless a sha256 will), never
// retry a failure retrying cannot cure (401/403/404, a wrong size), and never import Node APIs or
// the DOM.

import { abortError, HubError } from './hub-api';
import { DEFAULT_RETRY, parseRetryAfter, retryLoop, type RetryPolicy, type Sleep } from './retry';

export interface DownloadProgress {
  file: string;
  /** bytes of this file on hand (including bytes kept from an earlier, interrupted attempt) */
  loaded: number;
  /** bytes expected, when known */
  total: number | null;
  /** bytes per second over the last few seconds (0 until two samples exist) */
  rate: number;
  /** seconds to go at the current rate; null when the total or the rate is unknown */
  etaSeconds: number | null;
  /** 1 for the first request, counting retries */
  attempt: number;
  done: boolean;
}

/** Where the bytes go. Writers of the download caches (download-cache*.ts) implement it. */
export interface DownloadSink {
  /** bytes already held from an earlier, interrupted attempt (the resume point) */
  readonly offset: number;
  /** the strong ETag of the response the held bytes came from (kept with them), or null */
  readonly validator: string | null;
  write(chunk: Uint8Array): Promise<void>;
  /** drops what is held and its validator (the server ignored Range, or the file changed) */
  reset(): Promise<void>;
  /** records the validator of the response the bytes now come from */
  setValidator(validator: string | null): Promise<void>;
}

// `bytes a-b/total` or `bytes */total` → parts (null where absent).
export function parseContentRange(
  value: string | null,
): { start: number | null; end: number | null; total: number | null } | null {
  if (!value) return null;
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/.exec(value.trim());
  if (!m) return null;
  return {
    start: m[1] !== undefined ? Number(m[1]) : null,
    end: m[2] !== undefined ? Number(m[2]) : null,
    total: m[3] !== '*' ? Number(m[3]) : null,
  };
}

/** Transfer rate over a sliding window of samples. */
export class RateMeter {
  private samples: { t: number; bytes: number }[] = [];

  constructor(
    private readonly now: () => number = () => Date.now(),
    private readonly windowMs = 5000,
  ) {}

  /** Records the running byte count; returns bytes/s over the window. */
  add(bytes: number): number {
    const t = this.now();
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && t - this.samples[0].t > this.windowMs) this.samples.shift();
    return this.rate();
  }

  rate(): number {
    if (this.samples.length < 2) return 0;
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    const dt = b.t - a.t;
    return dt > 0 ? ((b.bytes - a.bytes) * 1000) / dt : 0;
  }
}

export function etaSeconds(loaded: number, total: number | null, rate: number): number | null {
  if (total === null || rate <= 0) return null;
  return Math.max(0, (total - loaded) / rate);
}

export interface DownloadRequest {
  /** for messages and progress */
  file: string;
  /** performs the GET with these extra headers (the client adds its token); network failures throw */
  get: (headers: Record<string, string>, signal?: AbortSignal) => Promise<Response>;
  /** an HTTP failure → the error to throw (HubError: `retryable` decides whether to try again) */
  errorFor: (res: Response) => Error;
  /** the size announced by the Hub's model info; null when unknown */
  expectedSize: number | null;
  /**
   * the sha256 the sink checks before keeping the file (null: none): with one, a body whose length
   * nothing announced may still be taken, since the hash proves it whole
   */
  expectedSha256?: string | null;
  /** the most bytes the file may have (a JSON file's limit): past it, `limit.error` is thrown */
  limit?: { bytes: number; error: (size: number | null) => Error };
  sink: DownloadSink;
  retry?: Partial<RetryPolicy>;
  onProgress?: (p: DownloadProgress) => void;
  /** minimum time between progress events (the first and the last are always sent); default 100 ms */
  progressIntervalMs?: number;
  signal?: AbortSignal;
  sleep?: Sleep;
  now?: () => number;
}

export interface DownloadResult {
  size: number;
  /** requests made */
  attempts: number;
  /** true when some bytes came from a `Range` continuation */
  resumed: boolean;
}

function isRetryable(e: unknown): boolean {
  return e instanceof HubError && e.retryable;
}

/** A strong ETag (`"…"`), the only kind `If-Range` may carry; weak or absent → null. */
export function strongEtag(res: Response): string | null {
  const e = res.headers.get('ETag')?.trim() ?? '';
  return /^"[^"]*"$/.test(e) ? e : null;
}

/** The body length a response announces, when it is the length of the bytes read (no encoding). */
function announcedLength(res: Response): number | null {
  const len = res.headers.get('Content-Length');
  const encoded = (res.headers.get('Content-Encoding') ?? 'identity') !== 'identity';
  return len !== null && !encoded && /^\d+$/.test(len) ? Number(len) : null;
}

function sizeMismatch(file: string, expected: number, got: number, how: string): HubError {
  return new HubError(
    'size_mismatch',
    `${file}: expected ${expected} bytes (the Hub's file list), ${how} ${got}; the file was not cached — the repo may have changed: reload its file list and retry`,
    { file, expected, got },
  );
}

/** Downloads one file into `req.sink`, resuming and retrying as needed. */
export async function download(req: DownloadRequest): Promise<DownloadResult> {
  const policy: RetryPolicy = { ...DEFAULT_RETRY, ...req.retry };
  const now = req.now ?? (() => Date.now());
  const interval = req.progressIntervalMs ?? 100;
  const meter = new RateMeter(now);
  const { sink, file, signal } = req;
  let total = req.expectedSize;
  let attempts = 0;
  let resumed = false;
  let lastEmit = -Infinity;

  const emit = (done: boolean, force = false) => {
    if (!req.onProgress) return;
    const t = now();
    if (!force && !done && t - lastEmit < interval) return;
    lastEmit = t;
    const rate = meter.rate();
    req.onProgress({
      file,
      loaded: sink.offset,
      total,
      rate,
      etaSeconds: done ? 0 : etaSeconds(sink.offset, total, rate),
      attempt: attempts,
      done,
    });
  };

  let startOffset = 0;
  let retryAfterMs: number | null = null;
  const attempt = async (): Promise<DownloadResult> => {
    attempts++;
    startOffset = sink.offset;
    retryAfterMs = null;
    if (total !== null && startOffset > total) await sink.reset();
    if (total !== null && total > 0 && sink.offset === total) {
      // NOTE: an earlier session left a complete `.part`; nothing to fetch.
      emit(true, true);
      return { size: total, attempts: attempts - 1, resumed: true };
    }
    // NOTE: resume only where If-Range can make the server send all of a changed file instead of its
    // tail; without a validator the held bytes could be spliced with another version's tail.
    if (sink.offset > 0 && sink.validator === null) await sink.reset();
    const offset = sink.offset;
    const validator = sink.validator;
    const headers: Record<string, string> = {};
    if (offset > 0 && validator !== null) {
      headers.Range = `bytes=${offset}-`;
      headers['If-Range'] = validator;
    }
    const res = await req.get(headers, signal);
    if (res.status === 416 && offset > 0) {
      await res.body?.cancel().catch(() => undefined);
      const cr = parseContentRange(res.headers.get('Content-Range'));
      const serverSize = cr?.total ?? null;
      if (serverSize !== null && serverSize === offset && (total === null || total === offset)) {
        total = offset;
        emit(true, true);
        return { size: offset, attempts, resumed: true };
      }
      if (total !== null && serverSize !== null && serverSize !== total) {
        throw sizeMismatch(file, total, serverSize, 'but the server has');
      }
      await sink.reset();
      throw new HubError('network', `${file}: the server refused to resume at byte ${offset}`, { file });
    }
    if (!res.ok) {
      retryAfterMs = parseRetryAfter(res.headers.get('Retry-After'));
      await res.body?.cancel().catch(() => undefined);
      throw req.errorFor(res);
    }
    const length = announcedLength(res);
    const announced = Math.max(length ?? -1, total ?? -1);
    if (req.limit && announced > req.limit.bytes) {
      await res.body?.cancel().catch(() => undefined);
      await sink.reset();
      throw req.limit.error(announced);
    }
    if (res.status === 206) {
      const cr = parseContentRange(res.headers.get('Content-Range'));
      if (!cr || cr.start !== offset) {
        await res.body?.cancel().catch(() => undefined);
        await sink.reset();
        throw new HubError('network', `${file}: the server resumed at the wrong byte`, { file });
      }
      const tag = strongEtag(res);
      if (offset > 0 && tag !== null && tag !== validator) {
        // NOTE: the server ignored If-Range: this tail belongs to another version of the file.
        await res.body?.cancel().catch(() => undefined);
        await sink.reset();
        throw new HubError(
          'network',
          `${file}: the file changed on the server while resuming; starting over`,
          {
            file,
          },
        );
      }
      if (cr.total !== null) {
        if (total === null) total = cr.total;
        else if (cr.total !== total) {
          await res.body?.cancel().catch(() => undefined);
          throw sizeMismatch(file, total, cr.total, 'but the server has');
        }
      }
      if (total !== null && length !== null && length !== total - offset) {
        await res.body?.cancel().catch(() => undefined);
        await sink.reset();
        throw sizeMismatch(file, total, offset + length, 'but the server announced');
      }
      if (offset > 0) resumed = true;
    } else {
      // NOTE: a 200 after a Range request means the server ignored it (or If-Range saw a new ETag):
      // start over, or the bytes would be a mix of two versions.
      if (offset > 0) await sink.reset();
      if (total !== null && length !== null && length !== total) {
        // NOTE: a whole body of the wrong length is another file: never keep it as a partial to resume.
        await res.body?.cancel().catch(() => undefined);
        throw sizeMismatch(file, total, length, 'but the server sent');
      }
      if (total === null) total = length;
      await sink.setValidator(strongEtag(res));
    }
    if (sink.offset === 0) meter.add(0);
    emit(false, true);
    const reader = res.body?.getReader();
    if (reader) {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (e) {
          if (signal?.aborted) throw abortError();
          throw new HubError(
            'network',
            `${file}: the connection broke at byte ${sink.offset} (${String(e)})`,
            {
              file,
            },
          );
        }
        if (chunk.done) break;
        if (signal?.aborted) {
          await reader.cancel().catch(() => undefined);
          throw abortError();
        }
        const bytes = chunk.value;
        if (req.limit && sink.offset + bytes.byteLength > req.limit.bytes) {
          await reader.cancel().catch(() => undefined);
          await sink.reset();
          throw req.limit.error(null);
        }
        if (total !== null && sink.offset + bytes.byteLength > total) {
          await reader.cancel().catch(() => undefined);
          throw sizeMismatch(file, total, sink.offset + bytes.byteLength, 'but the server sent at least');
        }
        await sink.write(bytes);
        meter.add(sink.offset);
        emit(false);
      }
    }
    if (total !== null && sink.offset < total) {
      throw new HubError('network', `${file}: the connection closed at byte ${sink.offset} of ${total}`, {
        file,
      });
    }
    if (total === null && !req.expectedSha256) {
      const got = sink.offset;
      await sink.reset();
      throw new HubError(
        'length_unknown',
        `${file}: the server sent no Content-Length and the file list gives no size or sha256, so a transfer cut short (${got} bytes arrived) cannot be told from a whole file; not cached — ask the server for a file list with sizes (the Hub's ?blobs=true)`,
        { file, got },
      );
    }
    total = sink.offset;
    emit(true, true);
    return { size: sink.offset, attempts, resumed };
  };

  return retryLoop(attempt, {
    policy,
    retryable: isRetryable,
    retryAfterMs: () => retryAfterMs,
    // NOTE: a cut connection that still delivered bytes is progress, not a failure: a flaky link
    // finishes a big file as long as each attempt gets a little further.
    progressed: () => sink.offset > startOffset,
    onRetry: () => emit(false, true),
    giveUp: (e) => {
      const he = e as HubError;
      return new HubError(he.reason, `${he.message} (gave up after ${attempts} tries)`, {
        ...he.details,
        status: he.status,
        attempts,
      });
    },
    signal,
    sleep: req.sleep,
  });
}
