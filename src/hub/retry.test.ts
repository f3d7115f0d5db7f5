// The one retry helper (downloads and the API judge's POSTs): backoff within its caps, Retry-After,
// the loop's give-up count, progress restarting the count, and a cancel during the wait.
import { describe, expect, it } from 'vitest';
import { backoffDelay, parseRetryAfter, retryLoop, sleepMs } from './retry';
import { isHubError } from './hub-api';

class Flaky extends Error {
  constructor(readonly retryAfterMs: number | null = null) {
    super('flaky');
  }
}

describe('retry helpers', () => {
  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('5')).toBe(5000);
    expect(
      parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')),
    ).toBe(10_000);
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });

  it('backs off exponentially within the cap; Retry-After wins up to its own cap', () => {
    const p = { retries: 9, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(1, p)).toBeLessThanOrEqual(120);
    expect(backoffDelay(1, p)).toBeGreaterThanOrEqual(80);
    expect(backoffDelay(3, p)).toBeGreaterThanOrEqual(320);
    expect(backoffDelay(10, p)).toBe(1000);
    expect(backoffDelay(1, p, 90_000)).toBe(60_000);
    expect(backoffDelay(1, { ...p, maxRetryAfterMs: 5 }, 2000)).toBe(5);
    expect(backoffDelay(1, p, 0)).toBe(0);
  });

  it('retries what is retryable, gives up after `retries` failures in a row, and not at all otherwise', async () => {
    const delays: number[] = [];
    let calls = 0;
    const e = await retryLoop(
      async () => {
        calls++;
        throw new Flaky(calls === 2 ? 7 : null);
      },
      {
        policy: { retries: 3, baseDelayMs: 10, maxDelayMs: 1000 },
        retryable: (x) => x instanceof Flaky,
        retryAfterMs: (x) => (x as Flaky).retryAfterMs,
        giveUp: (x, n) => new Error(`gave up after ${n} tries (${(x as Error).message})`),
        sleep: async (ms) => void delays.push(ms),
      },
    ).catch((x: unknown) => x as Error);
    expect(e.message).toBe('gave up after 4 tries (flaky)');
    expect(calls).toBe(4);
    expect(delays.length).toBe(3);
    expect(delays[1]).toBe(7);
    let once = 0;
    await expect(
      retryLoop(
        async () => {
          once++;
          throw new Error('404');
        },
        { policy: { retries: 5, baseDelayMs: 1, maxDelayMs: 1 }, retryable: (x) => x instanceof Flaky },
      ),
    ).rejects.toThrow('404');
    expect(once).toBe(1);
  });

  it('an attempt that made progress does not count as a failure', async () => {
    let calls = 0;
    const r = await retryLoop(
      async (n) => {
        calls++;
        if (n < 6) throw new Flaky();
        return 'done';
      },
      {
        policy: { retries: 1, baseDelayMs: 1, maxDelayMs: 1 },
        retryable: (x) => x instanceof Flaky,
        progressed: () => true,
        sleep: async () => undefined,
      },
    );
    expect(r).toBe('done');
    expect(calls).toBe(6);
  });

  it('a cancel during the wait rejects at once with the cancel error', async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 10);
    const t0 = Date.now();
    const e = await retryLoop(
      async () => {
        throw new Flaky();
      },
      {
        policy: { retries: 5, baseDelayMs: 10_000, maxDelayMs: 10_000 },
        retryable: () => true,
        signal: ctl.signal,
      },
    ).catch((x: unknown) => x);
    expect(isHubError(e, 'aborted')).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2000);
    await expect(
      sleepMs(5, AbortSignal.abort(), () => new DOMException('cancelled', 'AbortError')),
    ).rejects.toMatchObject({ name: 'AbortError' });
  });
});
