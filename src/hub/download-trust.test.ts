// What a download must prove before the cache keeps it, against hostile or broken hosts (loopback
// Hub stand-ins, scripts/hub-test-server.ts): another host serving the same owner/name never shares
// cache entries with the real Hub (not even when it claims the real commit id), bytes that do not
// hash to the file list's sha256 are discarded, a body nothing proves whole is not cached, stalls
// before the first byte or mid-body end with a message naming the timeout, and a redirect loop is
// called one. The same for the three caches (memory, Cache Storage, folder).
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHubTestServer, TEST_REPOS, type HubTestServer } from '../../scripts/hub-test-server';
import { fakeCacheStorage } from './cache-storage.testdata';
import { cacheStorageDownloadCache, memoryDownloadCache, type DownloadCache } from './download-cache';
import { folderDownloadCache } from './download-cache-node';
import { HubClient, HubError, isHubError, type HubErrorReason } from './hub-api';
import { openHubSource } from './hub-files';
import type { HttpTimeouts } from './http-timeouts';

let real: HubTestServer;
let other: HubTestServer;
const dirs: string[] = [];
const fast = { retries: 1, baseDelayMs: 1, maxDelayMs: 2 };
const REPO = TEST_REPOS.llama;

beforeAll(async () => {
  real = await startHubTestServer({ stallMaxMs: 5000 });
  // NOTE: another host in the Hub's layout serving the same owner/name with other bytes, and (once a
  // test sets it) the real repo's commit id.
  // The same length as the real config.json, so the size check alone cannot tell them apart.
  const files = new Map(real.repos.get(REPO)!.files);
  const realLength = files.get('config.json')!.byteLength;
  files.set('config.json', new TextEncoder().encode('{"planted": true}'.padEnd(realLength, ' ')));
  other = await startHubTestServer({ repos: { [REPO]: { files, behaviour: {} } }, stallMaxMs: 5000 });
});
afterAll(async () => {
  await real.close();
  await other.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
beforeEach(() => {
  real.reset();
  other.reset();
});

async function folder(): Promise<{ cache: DownloadCache; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'piggyback-trust-'));
  dirs.push(dir);
  return { cache: folderDownloadCache(dir), dir };
}

const caches: [string, () => Promise<DownloadCache>][] = [
  ['memory', async () => memoryDownloadCache()],
  ['Cache Storage', async () => cacheStorageDownloadCache(fakeCacheStorage())],
  ['folder', async () => (await folder()).cache],
];

const open = (
  server: HubTestServer,
  repo: string,
  cache: DownloadCache,
  extra: { refresh?: boolean; timeouts?: HttpTimeouts } = {},
) =>
  openHubSource({
    client: new HubClient({ endpoint: server.url, timeouts: extra.timeouts }),
    cache,
    repo,
    refresh: extra.refresh,
    retry: fast,
  });

async function hubError(p: Promise<unknown>, reason: HubErrorReason): Promise<HubError> {
  try {
    await p;
  } catch (e) {
    if (!isHubError(e)) throw e;
    expect(e.reason, e.message).toBe(reason);
    return e;
  }
  throw new Error(`expected HubError ${reason}`);
}

const fileGets = (s: HubTestServer) => s.requests.filter((r) => !r.path.startsWith('/api/'));

describe.each(caches)('%s cache: entries are keyed by the endpoint origin too', (_name, make) => {
  it('files another host planted under the same owner/name are not served for the real Hub', async () => {
    const cache = await make();
    const planted = await open(other, REPO, cache);
    expect(JSON.parse(await planted.readText('config.json'))).toMatchObject({ planted: true });
    const hub = await open(real, REPO, cache);
    expect(hub.infoFromCache).toBe(false);
    expect(JSON.parse(await hub.readText('config.json'))).not.toHaveProperty('planted');
    expect(fileGets(real).map((r) => r.path)).toContain(`/${REPO}/resolve/${hub.info.commit}/config.json`);
  });

  it('… not even with --refresh when the other host claims the real commit id', async () => {
    const cache = await make();
    const truth = await new HubClient({ endpoint: real.url }).modelInfo(REPO);
    other.repos.get(REPO)!.behaviour.commit = truth.commit as string;
    other.push(REPO, {}); // forget the computed commit
    try {
      const planted = await open(other, REPO, cache, { refresh: true });
      expect(planted.info.commit).toBe(truth.commit);
      await planted.readText('config.json');
      const hub = await open(real, REPO, cache, { refresh: true });
      expect(hub.info.commit).toBe(truth.commit);
      expect(JSON.parse(await hub.readText('config.json'))).not.toHaveProperty('planted');
      expect(fileGets(real).length).toBeGreaterThan(0);
    } finally {
      delete other.repos.get(REPO)!.behaviour.commit;
      other.push(REPO, {});
    }
  });
});

describe.each(caches)('%s cache: what a download must prove', (_name, make) => {
  it('bytes that do not hash to the sha256 of the file list are discarded, with a message that says so', async () => {
    const cache = await make();
    const repo = 'piggyback-test/corrupt-llama';
    real.push(repo, Object.fromEntries(real.repos.get(REPO)!.files));
    real.repos.get(repo)!.behaviour.corruptFiles = ['model.safetensors'];
    const src = await open(real, repo, cache);
    const want = src.file('model.safetensors')?.sha256 as string;
    expect(want).toMatch(/^[0-9a-f]{64}$/);
    const e = await hubError(src.ensure('model.safetensors'), 'hash_mismatch');
    expect(e.message).toMatch(
      new RegExp(
        `sha256 mismatch for model\\.safetensors: expected ${want}, got [0-9a-f]{64}; the server sent a different file — the download was discarded`,
      ),
    );
    expect((await cache.list()).map((x) => x.file)).not.toContain('model.safetensors');
    // nothing kept to resume from: the next try downloads it whole again
    real.repos.get(repo)!.behaviour.corruptFiles = [];
    real.reset();
    await src.ensure('model.safetensors');
    const gets = real.requests.filter((r) => r.path.startsWith('/cdn/'));
    expect(gets.map((r) => r.range)).toEqual([null]);
  });

  it('with no sizes in the file list, a body cut short without a length is not cached as whole', async () => {
    const cache = await make();
    const repo = 'piggyback-test/unframed-llama';
    real.push(repo, Object.fromEntries(real.repos.get(REPO)!.files));
    Object.assign(real.repos.get(repo)!.behaviour, { noSizes: true, unframedHalfFiles: ['config.json'] });
    const src = await open(real, repo, cache);
    expect(src.file('config.json')?.size).toBeNull();
    const e = await hubError(src.readText('config.json'), 'length_unknown');
    expect(e.message).toMatch(/config\.json: the server sent no Content-Length .* not cached/);
    expect((await cache.list()).map((x) => x.file)).not.toContain('config.json');
  });
});

describe('time limits and redirect loops', () => {
  const limits = { firstByteMs: 300, idleMs: 300 };

  it('a server that never answers: the first-byte timeout, per attempt, then the retries give up', async () => {
    const repo = 'piggyback-test/stall-llama';
    real.push(repo, Object.fromEntries(real.repos.get(REPO)!.files));
    real.repos.get(repo)!.behaviour.stallFiles = ['config.json'];
    const src = await open(real, repo, memoryDownloadCache(), { timeouts: limits });
    const t0 = Date.now();
    const e = await hubError(src.readText('config.json'), 'network');
    expect(e.message).toMatch(/first-byte timeout: no response within 300 ms.*gave up after 2 tries/);
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  it('a body that stalls halfway: the idle timeout, and the bytes so far are kept for a resume', async () => {
    const repo = 'piggyback-test/stall-body-llama';
    real.push(repo, Object.fromEntries(real.repos.get(REPO)!.files));
    real.repos.get(repo)!.behaviour.stallBodyFiles = ['model.safetensors'];
    const { cache } = await folder();
    const src = await open(real, repo, cache, { timeouts: limits });
    const t0 = Date.now();
    const e = await hubError(src.ensure('model.safetensors'), 'network');
    expect(e.message).toMatch(/idle timeout: no bytes for 300 ms in the middle of the body/);
    expect(Date.now() - t0).toBeLessThan(4000);
    real.repos.get(repo)!.behaviour.stallBodyFiles = [];
    real.reset();
    await src.ensure('model.safetensors');
    const size = src.file('model.safetensors')?.size as number;
    expect(real.requests.filter((r) => r.path.startsWith('/cdn/')).map((r) => r.range)).toEqual([
      `bytes=${size >> 1}-`,
    ]);
  });

  it('a redirect loop is called one, and not retried', async () => {
    const repo = 'piggyback-test/loop-llama';
    real.push(repo, Object.fromEntries(real.repos.get(REPO)!.files));
    real.repos.get(repo)!.behaviour.redirectLoopFiles = ['config.json'];
    const src = await open(real, repo, memoryDownloadCache());
    const e = await hubError(src.readText('config.json'), 'redirect_loop');
    expect(e.message).toMatch(/redirect loop/);
    const hops = real.requests.filter((r) => r.path.endsWith('/config.json')).length;
    expect(hops).toBeGreaterThan(5);
    expect(hops).toBeLessThanOrEqual(21);
  });
});

describe('JSON files past their limit', () => {
  const big = `{"pad": "${'x'.repeat(9 * 1024 * 1024)}"}`;

  it('a config.json the file list says is 9 MiB is refused before any download', async () => {
    const repo = 'piggyback-test/huge-config-llama';
    real.push(repo, { ...Object.fromEntries(real.repos.get(REPO)!.files), 'config.json': big });
    const src = await open(real, repo, memoryDownloadCache());
    real.reset();
    const e = await hubError(src.readJson('config.json'), 'too_large');
    expect(e.code).toBe('file_too_large');
    expect(e.message).toMatch(/config\.json is 9\.0 MiB, over the 8\.0 MiB limit for a JSON or text file/);
    expect(real.requests).toEqual([]);
  });

  it('… and with no sizes in the file list, the download stops at the limit', async () => {
    const repo = 'piggyback-test/huge-config-nosize-llama';
    real.push(repo, { ...Object.fromEntries(real.repos.get(REPO)!.files), 'config.json': big });
    real.repos.get(repo)!.behaviour.noSizes = true;
    const cache = memoryDownloadCache();
    const src = await open(real, repo, cache);
    const e = await hubError(src.readText('config.json'), 'too_large');
    expect(e.message).toMatch(/config\.json is (9\.0 MiB, )?over the 8\.0 MiB limit/);
    expect(await cache.list()).toEqual([]);
  });

  it('model info over its limit is refused with a message naming it', async () => {
    const huge = `{"siblings": [], "pad": "${'x'.repeat(17 * 1024 * 1024)}"}`;
    const fetchHuge = (async () => new Response(huge, { status: 200 })) as unknown as typeof fetch;
    const client = new HubClient({ endpoint: 'https://hub.test', fetch: fetchHuge });
    const e = await hubError(client.modelInfo('o/n'), 'too_large');
    expect(e.message).toMatch(/model info for o\/n is over the 16\.0 MiB limit/);
  });
});

describe('folder cache layout', () => {
  it('keeps each origin apart on disk', async () => {
    const { cache, dir } = await folder();
    await (await open(real, REPO, cache)).readText('config.json');
    await (await open(other, REPO, cache)).readText('config.json');
    const origins = await readdir(join(dir, 'v2', 'files'));
    expect(origins.sort()).toEqual(
      [encodeURIComponent(new URL(real.url).origin), encodeURIComponent(new URL(other.url).origin)].sort(),
    );
    const listed = await cache.list();
    expect(new Set(listed.map((e) => e.origin))).toEqual(
      new Set([new URL(real.url).origin, new URL(other.url).origin]),
    );
  });
});
