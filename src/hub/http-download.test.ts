// The download loop on scripted responses: progress (bytes, rate, ETA on a fake clock), retries with
// backoff, Retry-After, resume with Range/If-Range, servers that ignore Range, and size checks.
import { describe, expect, it } from 'vitest';
import {
  download,
  parseContentRange,
  RateMeter,
  type DownloadProgress,
  type DownloadSink,
} from './http-download';
import { HubClient, HubError } from './hub-api';

class ArraySink implements DownloadSink {
  data: number[] = [];
  resets = 0;
  validator: string | null;
  constructor(initial: number[] = [], validator: string | null = null) {
    this.data = [...initial];
    this.validator = validator;
  }
  get offset() {
    return this.data.length;
  }
  async write(c: Uint8Array) {
    this.data.push(...c);
  }
  async reset() {
    this.resets++;
    this.data = [];
    this.validator = null;
  }
  async setValidator(v: string | null) {
    this.validator = v;
  }
}

const FILE = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) % 251);

type Step = (
  | { kind: 'ok'; chunk?: number; ignoreRange?: boolean; contentLength?: number | null }
  | { kind: 'cut'; after: number }
  /** the body ends cleanly after `after` bytes, with no Content-Length to tell */
  | { kind: 'short'; after: number }
  /** a complete 200 of another body (another file, or another version of it) */
  | { kind: 'other'; body: Uint8Array }
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  | { kind: 'throw' }
) & { etag?: string | null };

/** A scripted server: each request takes the next step; serves FILE with Range support. */
function scripted(steps: Step[], body = FILE) {
  const calls: { range: string | null; ifRange: string | null }[] = [];
  const get = async (headers: Record<string, string>): Promise<Response> => {
    calls.push({ range: headers.Range ?? null, ifRange: headers['If-Range'] ?? null });
    const step = steps.shift() ?? { kind: 'ok' };
    if (step.kind === 'throw') throw new HubError('network', 'could not reach the hub');
    if (step.kind === 'status') return new Response('x', { status: step.status, headers: step.headers });
    const etag = step.etag === undefined ? '"v1"' : step.etag;
    if (step.kind === 'other') {
      const h: Record<string, string> = { 'Content-Length': String(step.body.length) };
      if (etag) h.ETag = etag;
      return new Response(step.body.slice(), { status: 200, headers: h });
    }
    const m = /^bytes=(\d+)-$/.exec(headers.Range ?? '');
    const start = m && !(step.kind === 'ok' && step.ignoreRange) ? Number(m[1]) : 0;
    if (start >= body.length && m) {
      return new Response('', { status: 416, headers: { 'Content-Range': `bytes */${body.length}` } });
    }
    const slice = body.subarray(start);
    const chunk = step.kind === 'ok' ? (step.chunk ?? 100) : 100;
    const limit = step.kind === 'cut' || step.kind === 'short' ? step.after : slice.length;
    let o = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(ctl) {
        if (o >= limit) {
          if (step.kind === 'cut') ctl.error(new TypeError('terminated'));
          else ctl.close();
          return;
        }
        const n = Math.min(chunk, limit - o);
        ctl.enqueue(slice.slice(o, o + n));
        o += n;
      },
    });
    const headers2: Record<string, string> = etag ? { ETag: etag } : {};
    const len =
      step.kind === 'short'
        ? null
        : step.kind === 'ok' && step.contentLength !== undefined
          ? step.contentLength
          : slice.length;
    if (len !== null) headers2['Content-Length'] = String(len);
    if (m && start > 0) headers2['Content-Range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    return new Response(stream, { status: m && start > 0 ? 206 : 200, headers: headers2 });
  };
  return { get, calls };
}

const client = new HubClient({ endpoint: 'https://hub.test' });
const errorFor = (res: Response) => client.errorFor(res, { repo: 'o/n', revision: 'main', file: 'w.bin' });
const noSleep = async () => undefined;

describe('download', () => {
  it('streams a file with progress: bytes, rate and ETA on the clock, first and last events always', async () => {
    let t = 0;
    const s = scripted([{ kind: 'ok', chunk: 100 }]);
    const sink = new ArraySink();
    const events: DownloadProgress[] = [];
    const r = await download({
      file: 'w.bin',
      get: async (h) => {
        return s.get(h);
      },
      errorFor,
      expectedSize: FILE.length,
      sink,
      onProgress: (p) => {
        events.push(p);
        t += 100; // 100 bytes per 100 ms → 1000 B/s
      },
      progressIntervalMs: 0,
      now: () => t,
    });
    expect(r).toEqual({ size: 1000, attempts: 1, resumed: false });
    expect(sink.data).toEqual([...FILE]);
    expect(events[0]).toMatchObject({ loaded: 0, total: 1000, done: false });
    const mid = events.find((e) => e.loaded === 500);
    expect(mid?.rate).toBeCloseTo(1000, 0);
    expect(mid?.etaSeconds).toBeCloseTo(0.5, 1);
    expect(events[events.length - 1]).toMatchObject({ loaded: 1000, total: 1000, done: true, etaSeconds: 0 });
  });

  it('throttles progress events but never drops the last one', async () => {
    let t = 0;
    const events: DownloadProgress[] = [];
    await download({
      file: 'w.bin',
      get: scripted([{ kind: 'ok', chunk: 10 }]).get,
      errorFor,
      expectedSize: FILE.length,
      sink: new ArraySink(),
      onProgress: (p) => events.push(p),
      progressIntervalMs: 1000,
      now: () => (t += 1),
    });
    expect(events.length).toBeLessThan(10);
    expect(events[events.length - 1].done).toBe(true);
  });

  it('resumes after a cut with Range and If-Range', async () => {
    const s = scripted([{ kind: 'cut', after: 300 }, { kind: 'ok' }]);
    const sink = new ArraySink();
    const r = await download({
      file: 'w.bin',
      get: s.get,
      errorFor,
      expectedSize: 1000,
      sink,
      sleep: noSleep,
    });
    expect(r).toEqual({ size: 1000, attempts: 2, resumed: true });
    expect(s.calls).toEqual([
      { range: null, ifRange: null },
      { range: 'bytes=300-', ifRange: '"v1"' },
    ]);
    expect(sink.data).toEqual([...FILE]);
  });

  it('starts from the bytes a sink already holds (a .part from an earlier session)', async () => {
    const s = scripted([{ kind: 'ok' }]);
    const sink = new ArraySink([...FILE.subarray(0, 640)], '"v1"');
    const r = await download({ file: 'w.bin', get: s.get, errorFor, expectedSize: 1000, sink });
    expect(s.calls[0]).toEqual({ range: 'bytes=640-', ifRange: '"v1"' });
    expect(r.resumed).toBe(true);
    expect(sink.data).toEqual([...FILE]);
  });

  it('never splices two bodies: a complete 200 of the wrong length is discarded, not resumed', async () => {
    // the first answer is another file (600 bytes, complete); the second would be the real tail
    const other = Uint8Array.from({ length: 600 }, (_, i) => 255 - (i % 200));
    const s = scripted([{ kind: 'other', body: other }, { kind: 'ok' }]);
    const sink = new ArraySink();
    const e = await download({
      file: 'w.bin',
      get: s.get,
      errorFor,
      expectedSize: 1000,
      sink,
      sleep: noSleep,
    }).catch((x: unknown) => x as HubError);
    expect(e).toBeInstanceOf(HubError);
    expect((e as HubError).reason).toBe('size_mismatch');
    expect((e as HubError).message).toMatch(/expected 1000 bytes .* the server sent 600/);
    expect(s.calls.length).toBe(1);
    expect(sink.data).toEqual([]);
  });

  it('resumes only with a validator: without an ETag a cut transfer starts again from byte 0', async () => {
    const s = scripted([
      { kind: 'cut', after: 500, etag: null },
      { kind: 'ok', etag: null },
    ]);
    const sink = new ArraySink();
    await download({ file: 'w.bin', get: s.get, errorFor, expectedSize: 1000, sink, sleep: noSleep });
    expect(s.calls).toEqual([
      { range: null, ifRange: null },
      { range: null, ifRange: null },
    ]);
    expect(sink.data).toEqual([...FILE]);
    // a .part from an earlier session without a validator is not resumed either
    const held = new ArraySink([...FILE.subarray(0, 640)]);
    const s2 = scripted([{ kind: 'ok' }]);
    await download({ file: 'w.bin', get: s2.get, errorFor, expectedSize: 1000, sink: held });
    expect(s2.calls[0].range).toBeNull();
    expect(held.data).toEqual([...FILE]);
  });

  it('a 206 that carries another ETag than the one resumed from starts over', async () => {
    // the server ignores If-Range: the tail it sends belongs to a new version of the file
    const s = scripted([
      { kind: 'cut', after: 300 },
      { kind: 'ok', etag: '"v2"' },
      { kind: 'ok', etag: '"v2"' },
    ]);
    const sink = new ArraySink();
    await download({ file: 'w.bin', get: s.get, errorFor, expectedSize: 1000, sink, sleep: noSleep });
    expect(s.calls.map((c) => c.range)).toEqual([null, 'bytes=300-', null]);
    expect(sink.data).toEqual([...FILE]);
  });

  it('with no size known and no Content-Length, a body that just ends is not taken as whole', async () => {
    const s = scripted([{ kind: 'short', after: 500 }]);
    const e = await download({
      file: 'w.bin',
      get: s.get,
      errorFor,
      expectedSize: null,
      sink: new ArraySink(),
      sleep: noSleep,
    }).catch((x: unknown) => x as HubError);
    expect(e).toBeInstanceOf(HubError);
    expect((e as HubError).reason).toBe('length_unknown');
    expect((e as HubError).message).toMatch(/w\.bin: .*no Content-Length.*not cached/);
    // with a sha256 to check it against, the cache proves it instead
    const r = await download({
      file: 'w.bin',
      get: scripted([{ kind: 'short', after: 500 }]).get,
      errorFor,
      expectedSize: null,
      expectedSha256: 'ab'.repeat(32),
      sink: new ArraySink(),
    });
    expect(r.size).toBe(500);
  });

  it('a complete .part needs no request; one longer than the file is dropped', async () => {
    const s = scripted([]);
    const full = new ArraySink([...FILE]);
    expect(
      (await download({ file: 'w.bin', get: s.get, errorFor, expectedSize: 1000, sink: full })).attempts,
    ).toBe(0);
    expect(s.calls).toEqual([]);
    const long = new ArraySink([...FILE, 1, 2, 3]);
    await download({ file: 'w.bin', get: s.get, errorFor, expectedSize: 1000, sink: long });
    expect(long.resets).toBe(1);
    expect(long.data).toEqual([...FILE]);
  });

  it('starts over when the server ignores Range (200 instead of 206)', async () => {
    const s = scripted([
      { kind: 'cut', after: 400 },
      { kind: 'ok', ignoreRange: true },
    ]);
    const sink = new ArraySink();
    await download({ file: 'w.bin', get: s.get, errorFor, expectedSize: 1000, sink, sleep: noSleep });
    expect(sink.resets).toBe(1);
    expect(sink.data).toEqual([...FILE]);
  });

  it('retries network errors, 5xx and 429 with backoff, honouring Retry-After', async () => {
    const delays: number[] = [];
    const s = scripted([
      { kind: 'throw' },
      { kind: 'status', status: 502 },
      { kind: 'status', status: 429, headers: { 'Retry-After': '2' } },
      { kind: 'ok' },
    ]);
    const sink = new ArraySink();
    const r = await download({
      file: 'w.bin',
      get: s.get,
      errorFor,
      expectedSize: 1000,
      sink,
      retry: { retries: 4, baseDelayMs: 100, maxDelayMs: 1000 },
      sleep: async (ms) => void delays.push(ms),
    });
    expect(r.attempts).toBe(4);
    expect(delays.length).toBe(3);
    expect(delays[0]).toBeGreaterThanOrEqual(80);
    expect(delays[0]).toBeLessThanOrEqual(120);
    expect(delays[1]).toBeGreaterThanOrEqual(160);
    expect(delays[1]).toBeLessThanOrEqual(240);
    expect(delays[2]).toBe(2000);
  });

  it('gives up after the retries, saying how many tries it made', async () => {
    const s = scripted([
      { kind: 'status', status: 503 },
      { kind: 'status', status: 503 },
      { kind: 'status', status: 503 },
    ]);
    const e = await download({
      file: 'w.bin',
      get: s.get,
      errorFor,
      expectedSize: 1000,
      sink: new ArraySink(),
      retry: { retries: 2 },
      sleep: noSleep,
    }).catch((x: unknown) => x as HubError);
    expect(e).toBeInstanceOf(HubError);
    expect((e as HubError).reason).toBe('server_error');
    expect((e as HubError).message).toMatch(/gave up after 3 tries/);
  });

  it('does not retry 401/403/404', async () => {
    for (const status of [401, 403, 404]) {
      const s = scripted([{ kind: 'status', status }]);
      await expect(
        download({
          file: 'w.bin',
          get: s.get,
          errorFor,
          expectedSize: 1000,
          sink: new ArraySink(),
          sleep: noSleep,
        }),
      ).rejects.toBeInstanceOf(HubError);
      expect(s.calls.length).toBe(1);
    }
  });

  it('refuses a body longer than the announced size at once', async () => {
    const s = scripted([{ kind: 'ok' }]);
    const e = await download({
      file: 'w.bin',
      get: s.get,
      errorFor,
      expectedSize: 900,
      sink: new ArraySink(),
    }).catch((x: unknown) => x as HubError);
    expect((e as HubError).reason).toBe('size_mismatch');
    expect(s.calls.length).toBe(1);
  });

  it('refuses a file shorter than announced: at once by its Content-Length', async () => {
    const s = scripted([{ kind: 'ok' }]);
    const e = await download({
      file: 'w.bin',
      get: s.get,
      errorFor,
      expectedSize: 1200,
      sink: new ArraySink(),
      sleep: noSleep,
    }).catch((x: unknown) => x as HubError);
    expect((e as HubError).reason).toBe('size_mismatch');
    expect((e as HubError).message).toMatch(/expected 1200 bytes .* but the server sent 1000/);
    expect(s.calls.length).toBe(1);
  });

  it('refuses a file shorter than announced once the server says where it ends (416)', async () => {
    const s = scripted([{ kind: 'ok', contentLength: null }]);
    const e = await download({
      file: 'w.bin',
      get: s.get,
      errorFor,
      expectedSize: 1200,
      sink: new ArraySink(),
      sleep: noSleep,
    }).catch((x: unknown) => x as HubError);
    expect((e as HubError).reason).toBe('size_mismatch');
    expect((e as HubError).message).toMatch(/expected 1200 bytes .* but the server has 1000/);
  });

  it('without a known size, takes Content-Length and checks against it', async () => {
    const s = scripted([{ kind: 'cut', after: 500 }, { kind: 'ok' }]);
    const sink = new ArraySink();
    const r = await download({
      file: 'w.bin',
      get: s.get,
      errorFor,
      expectedSize: null,
      sink,
      sleep: noSleep,
    });
    expect(r.size).toBe(1000);
    // nothing announces a length: even a whole body is not taken (see 'a body that just ends')
    const s2 = scripted([{ kind: 'ok', contentLength: null }]);
    const e2 = await download({
      file: 'w.bin',
      get: s2.get,
      errorFor,
      expectedSize: null,
      sink: new ArraySink(),
    }).catch((x: unknown) => x as HubError);
    expect((e2 as HubError).reason).toBe('length_unknown');
  });

  it('stops when aborted', async () => {
    const ctl = new AbortController();
    const s = scripted([{ kind: 'ok', chunk: 10 }]);
    const sink = new ArraySink();
    const e = await download({
      file: 'w.bin',
      get: s.get,
      errorFor,
      expectedSize: 1000,
      sink,
      signal: ctl.signal,
      progressIntervalMs: 0,
      onProgress: (p) => {
        if (p.loaded >= 200) ctl.abort();
      },
    }).catch((x: unknown) => x as HubError);
    expect((e as HubError).reason).toBe('aborted');
    expect(sink.offset).toBeLessThan(1000);
  });
});

describe('download helpers', () => {
  it('parses Content-Range', () => {
    expect(parseContentRange('bytes 10-19/100')).toEqual({ start: 10, end: 19, total: 100 });
    expect(parseContentRange('bytes */100')).toEqual({ start: null, end: null, total: 100 });
    expect(parseContentRange('bytes 0-1/*')).toEqual({ start: 0, end: 1, total: null });
    expect(parseContentRange('items 1-2/3')).toBeNull();
  });

  it('measures rate over a sliding window', () => {
    let t = 0;
    const m = new RateMeter(() => t, 1000);
    m.add(0);
    t = 500;
    m.add(500);
    expect(m.rate()).toBe(1000);
    t = 3000;
    m.add(600);
    t = 3500;
    expect(m.add(1100)).toBeCloseTo(1000, 0);
  });
});
