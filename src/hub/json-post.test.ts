// The judge's transport against loopback servers: a stalled endpoint times out per attempt and is
// retried, Retry-After is obeyed within the cap, a 4xx is handed back at once.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { jsonPost } from './json-post';

let server: Server | null = null;
afterEach(async () => {
  const s = server;
  server = null;
  if (s) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

/** A loopback server answering request n with `reply(n)` (null: never answers). */
async function serve(reply: (n: number) => { status: number; headers?: Record<string, string> } | null) {
  let n = 0;
  server = createServer((req, res) => {
    req.resume();
    const r = reply(n++);
    if (!r) return;
    res.writeHead(r.status, r.headers);
    res.end(JSON.stringify({ n }));
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, count: () => n };
}

const req = (url: string) => ({ url, headers: { 'content-type': 'application/json' }, body: '{}' });

describe('jsonPost', () => {
  it('a stalled endpoint times out on every attempt and says so', async () => {
    const s = await serve(() => null);
    const t0 = Date.now();
    const a = await jsonPost({ timeoutMs: 300, retry: { retries: 1, baseDelayMs: 1, maxDelayMs: 2 } })(
      req(s.url),
    );
    expect(a).toEqual({ kind: 'unreachable', why: 'timed out after 300 ms', attempts: 2 });
    // NOTE: on a loaded machine an attempt may time out before the server even sees it.
    expect(s.count()).toBeGreaterThanOrEqual(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(590);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('429 with Retry-After, then 200: waits (capped at maxDelayMs), hands back the 200', async () => {
    const s = await serve((n) =>
      n === 0 ? { status: 429, headers: { 'retry-after': '3600' } } : { status: 200 },
    );
    const waits: number[] = [];
    const a = await jsonPost({
      retry: { retries: 3, baseDelayMs: 1, maxDelayMs: 40 },
      sleep: async (ms) => void waits.push(ms),
    })(req(s.url));
    expect(a).toMatchObject({ kind: 'http', status: 200, text: '{"n":2}', attempts: 2 });
    expect(waits).toEqual([40]);
  });

  it('a 400 is not retried; 5xx answers are, and the last one comes back', async () => {
    const s = await serve(() => ({ status: 400 }));
    expect(await jsonPost()(req(s.url))).toMatchObject({ status: 400, attempts: 1 });
    expect(s.count()).toBe(1);
    await new Promise<void>((r) => {
      server?.closeAllConnections();
      server?.close(() => r());
    });
    const busy = await serve(() => ({ status: 503 }));
    const a = await jsonPost({ retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 2 } })(req(busy.url));
    expect(a).toMatchObject({ kind: 'http', status: 503, attempts: 3 });
    expect(busy.count()).toBe(3);
  });
});
