// Loading Hub repos end to end against the local Hub stand-in (scripts/hub-test-server.ts): models,
// shards, adapters, the cache (a second load makes no request), progress, resume, retries, size
// checks, and gated/404 failures with their messages.
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  startHubTestServer,
  TEST_REPOS,
  TEST_TOKENS,
  type HubTestServer,
} from '../../scripts/hub-test-server';
import { memoryDownloadCache, type DownloadCache } from './download-cache';
import { folderDownloadCache } from './download-cache-node';
import { HubClient, HubError, isHubError, type HubErrorReason } from './hub-api';
import { openHubSource, type HubProgress, type HubSourceOptions } from './hub-files';
import { loadLora } from '../engine/lora';
import { folderSource } from './folder-files-node';
import { loadModel } from '../engine/weights';

let server: HubTestServer;
const dirs: string[] = [];

beforeAll(async () => {
  server = await startHubTestServer({ slowChunkBytes: 16384, slowDelayMs: 15 });
});
afterAll(async () => {
  await server.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
beforeEach(() => server.reset());

async function tempCache(): Promise<{ cache: DownloadCache; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'piggyback-hub-'));
  dirs.push(dir);
  return { cache: folderDownloadCache(dir), dir };
}

const fast = { retries: 3, baseDelayMs: 1, maxDelayMs: 5 };

function open(
  repo: string,
  cache: DownloadCache,
  extra: Partial<HubSourceOptions> & { token?: string | null } = {},
) {
  const { token, ...rest } = extra;
  return openHubSource({
    client: new HubClient({ endpoint: server.url, token }),
    cache,
    repo,
    retry: fast,
    ...rest,
  });
}

async function expectHubError(p: Promise<unknown>, reason: HubErrorReason): Promise<HubError> {
  try {
    await p;
  } catch (e) {
    if (!isHubError(e)) throw e;
    expect(e.reason).toBe(reason);
    return e;
  }
  throw new Error(`expected HubError ${reason}`);
}

const fixture = (name: string) => folderSource(join(__dirname, '../../fixtures', name));

describe('hub source over the test server', () => {
  it('loads a model with the same weights as the fixture folder, then again from the cache with no request', async () => {
    const { cache } = await tempCache();
    const src = await open(TEST_REPOS.llama, cache);
    expect(src.kind).toBe('model');
    expect(src.infoFromCache).toBe(false);
    expect(src.info.commit).toMatch(/^[0-9a-f]{40}$/);
    const viaHub = await loadModel(src);
    const local = await loadModel(fixture('tiny-llama'));
    expect(viaHub.spec).toEqual(local.spec);
    for (const [name, t] of local.weights) expect(viaHub.weights.get(name)?.data).toEqual(t.data);
    expect(server.requests.some((r) => r.path.startsWith('/api/models/'))).toBe(true);

    server.reset();
    const again = await open(TEST_REPOS.llama, cache);
    expect(again.infoFromCache).toBe(true);
    const second = await loadModel(again);
    expect(second.spec).toEqual(local.spec);
    expect(server.requests).toEqual([]);
    expect(again.stats().requests).toBe(0);
    expect(again.stats().cacheHits).toBeGreaterThan(0);
  });

  it('loads a sharded checkpoint through its index', async () => {
    const { cache } = await tempCache();
    const src = await open(TEST_REPOS.sharded, cache);
    expect(await src.neededFiles()).toEqual([
      'config.json',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'model.safetensors.index.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ]);
    const m = await loadModel(src);
    const local = await loadModel(fixture('tiny-llama-sharded'));
    for (const [name, t] of local.weights) expect(m.weights.get(name)?.data).toEqual(t.data);
  });

  it('loads a PEFT adapter onto its base', async () => {
    const cache = memoryDownloadCache();
    const base = await open(TEST_REPOS.llama, cache);
    const adapter = await open(TEST_REPOS.lora, cache);
    expect(adapter.kind).toBe('adapter');
    expect(await adapter.neededFiles()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const spec = (await loadModel(base)).spec;
    const lora = await loadLora(adapter, spec);
    const local = await loadLora(fixture('tiny-llama-lora'), spec);
    expect(lora.baseModel).toBe(TEST_REPOS.llama);
    expect(lora.r).toBe(local.r);
    expect([...lora.branches.keys()]).toEqual([...local.branches.keys()]);
  });

  it('redirects LFS files to the CDN leg like the Hub, and resolves by commit', async () => {
    const cache = memoryDownloadCache();
    const src = await open(TEST_REPOS.llama, cache);
    await src.ensure('model.safetensors');
    const paths = server.requests.map((r) => `${r.status} ${r.path}`);
    expect(paths).toContain(`302 /${TEST_REPOS.llama}/resolve/${src.info.commit}/model.safetensors`);
    expect(paths.some((p) => p.startsWith('200 /cdn/'))).toBe(true);
  });

  it('prefetch reports bytes, rate and ETA for a slow file, ending with done', async () => {
    const cache = memoryDownloadCache();
    const events: HubProgress[] = [];
    const src = await open(TEST_REPOS.slow, cache, {
      onProgress: (p) => events.push(p),
      progressIntervalMs: 0,
    });
    const total = src.sizeOf(await src.neededFiles());
    const r = await src.prefetch();
    expect(r.downloadedBytes).toBe(total);
    const weights = events.filter((e) => e.file === 'model.safetensors');
    expect(weights.length).toBeGreaterThan(10);
    for (let i = 1; i < events.length; i++)
      expect(events[i].loaded).toBeGreaterThanOrEqual(events[i - 1].loaded);
    const mid = weights.find((e) => e.fileLoaded > 0 && !e.fileDone && e.rate > 0);
    expect(mid?.etaSeconds).toBeGreaterThan(0);
    expect(mid?.total).toBe(total);
    const last = events[events.length - 1];
    expect(last).toMatchObject({ done: true, loaded: total, total, etaSeconds: 0 });

    // the second prefetch is all cache hits
    const again: HubProgress[] = [];
    const src2 = await open(TEST_REPOS.slow, cache, { onProgress: (p) => again.push(p) });
    const r2 = await src2.prefetch();
    expect(r2.downloadedBytes).toBe(0);
    expect(r2.cachedBytes).toBe(total);
    expect(again.every((e) => e.cached)).toBe(true);
  });

  it('resumes a file whose connection was cut halfway with a Range request', async () => {
    const cache = memoryDownloadCache();
    const src = await open(TEST_REPOS.flaky, cache);
    const m = await loadModel(src);
    expect(m.spec.numLayers).toBe(2);
    const gets = server.requests.filter(
      (r) => r.path.startsWith('/cdn/') && r.path.endsWith('model.safetensors'),
    );
    expect(gets.length).toBe(2);
    expect(gets[0].range).toBeNull();
    const size = src.file('model.safetensors')?.size as number;
    expect(gets[1].range).toBe(`bytes=${Math.floor(size / 2)}-`);
    expect(gets[1].status).toBe(206);
    const local = await loadModel(fixture('tiny-llama'));
    for (const [name, t] of local.weights) expect(m.weights.get(name)?.data).toEqual(t.data);
  });

  it('gives up on a file that keeps breaking, keeps the partial bytes, and a later run resumes them', async () => {
    const { cache, dir } = await tempCache();
    const src = await open(TEST_REPOS.broken, cache);
    const e = await expectHubError(src.ensure('model.safetensors'), 'network');
    expect(e.message).toMatch(/gave up after \d+ tries/);
    const size = src.file('model.safetensors')?.size as number;
    const folder = join(
      dir,
      'v2',
      'files',
      encodeURIComponent(new URL(server.url).origin),
      'piggyback-test',
      'broken-llama',
      src.info.commit as string,
    );
    const files = await readdir(folder);
    const part = files.find((f) => f.endsWith('.piggyback-part'));
    expect(part).toBeDefined();
    const partSize = (await stat(join(folder, part as string))).size;
    // the ETag it came with is kept beside it: the next run may resume it under If-Range
    expect(files).toContain(`${part}-etag`);
    expect(partSize).toBe(Math.floor(size / 2));
    expect(
      await cache.open({
        origin: new URL(server.url).origin,
        repo: TEST_REPOS.broken,
        revision: src.info.commit as string,
        file: 'model.safetensors',
      }),
    ).toBeNull();

    // the network is fixed: the next session asks only for the missing half
    server.repos.get(TEST_REPOS.broken)!.behaviour.cutFiles = [];
    server.reset();
    const next = await open(TEST_REPOS.broken, cache);
    await next.ensure('model.safetensors');
    const gets = server.requests.filter((r) => r.path.startsWith('/cdn/'));
    expect(gets.map((r) => r.range)).toEqual([`bytes=${Math.floor(size / 2)}-`]);
    const local = await loadModel(fixture('tiny-llama'));
    const m = await loadModel(next);
    for (const [name, t] of local.weights) expect(m.weights.get(name)?.data).toEqual(t.data);
  });

  it('retries 503 and 429 answers', async () => {
    const cache = memoryDownloadCache();
    const src = await open(TEST_REPOS.busy, cache);
    const m = await loadModel(src);
    expect(m.spec.numLayers).toBe(2);
    const cfg = server.requests.filter((r) => r.path.endsWith('/config.json')).map((r) => r.status);
    expect(cfg).toEqual([503, 429, 200]);
  });

  it('refuses a file whose size disagrees with the file list, and caches nothing', async () => {
    const { cache } = await tempCache();
    const src = await open(TEST_REPOS.wrongSize, cache);
    const e = await expectHubError(loadModel(src), 'size_mismatch');
    expect(e.code).toBe('truncated_file');
    expect(e.message).toMatch(/expected \d+ bytes/);
    expect(e.message).toMatch(/not cached/);
    expect((await cache.list()).map((x) => x.file)).not.toContain('model.safetensors');
  });

  it('gated repo: no token → "accept its license … paste a token"; pending token → no access; approved → loads', async () => {
    const cache = memoryDownloadCache();
    const anon = await open(TEST_REPOS.gated, cache);
    expect(anon.info.gated).toBe('manual');
    const e1 = await expectHubError(loadModel(anon), 'gated');
    expect(e1.status).toBe(401);
    expect(e1.message).toContain('is gated: accept its license on the Hub');
    expect(e1.message).toContain(`${server.url}/${TEST_REPOS.gated}`);
    expect(e1.message).toContain('paste a read token');

    const pending = await open(TEST_REPOS.gated, cache, { token: TEST_TOKENS.unapproved });
    const e2 = await expectHubError(loadModel(pending), 'gated_no_access');
    expect(e2.status).toBe(403);
    expect(e2.message).toContain('accept the license');
    expect(e2.message).not.toContain(TEST_TOKENS.unapproved);

    const ok = await open(TEST_REPOS.gated, cache, { token: TEST_TOKENS.approved });
    const m = await loadModel(ok);
    expect(m.spec.numLayers).toBe(2);
  });

  it('a token the Hub does not know → "rejected the token … create a read token"', async () => {
    const e = await expectHubError(
      open(TEST_REPOS.llama, memoryDownloadCache(), { token: 'hf_NotARealTokenAtAll12345' }),
      'bad_token',
    );
    expect(e.status).toBe(401);
    expect(e.message).toMatch(/rejected the token/);
    expect(e.message).toContain('/settings/tokens');
    expect(e.message).not.toContain('hf_NotARealTokenAtAll12345');
  });

  it('404s: unknown repo, unknown revision, unknown file', async () => {
    const e1 = await expectHubError(open('nobody/nothing-here', memoryDownloadCache()), 'repo_not_found');
    expect(e1.status).toBe(404);
    expect(e1.message).toMatch(/check the spelling of owner\/name/);
    const e2 = await expectHubError(
      open(TEST_REPOS.llama, memoryDownloadCache(), { revision: 'v9' }),
      'revision_not_found',
    );
    expect(e2.message).toContain('no revision "v9"');
    const src = await open(TEST_REPOS.llama, memoryDownloadCache());
    const e3 = await expectHubError(src.readText('nope.json'), 'entry_not_found');
    expect(e3.code).toBe('missing_file');
    expect(await src.has('nope.json')).toBe(false);
  });

  it('unreachable Hub: a clear network error; with a remembered file list and files, loads offline', async () => {
    const cache = memoryDownloadCache();
    await (await open(TEST_REPOS.llama, cache)).prefetch();
    // NOTE: the same endpoint (cache entries belong to its origin), now out of reach: a fetch that
    // fails like one with no network (a closed port could be reused by a parallel test's server)
    const offlineFetch = (async () => {
      throw new TypeError('fetch failed');
    }) as unknown as typeof fetch;
    const dead = new HubClient({ endpoint: server.url, fetch: offlineFetch });
    const e = await expectHubError(
      openHubSource({ client: dead, cache: memoryDownloadCache(), repo: TEST_REPOS.llama, retry: fast }),
      'network',
    );
    expect(e.message).toMatch(/could not reach http:\/\/127\.0\.0\.1:\d+/);
    const offline = await openHubSource({
      client: dead,
      cache,
      repo: TEST_REPOS.llama,
      refresh: true,
      retry: fast,
    });
    expect(offline.infoFromCache).toBe(true);
    expect((await loadModel(offline)).spec.numLayers).toBe(2);
  });

  it('refresh sees a push: new commit, new files; the old commit stays cached apart', async () => {
    const cache = memoryDownloadCache();
    const repo = 'piggyback-test/pushed';
    server.push(repo, Object.fromEntries(server.repos.get(TEST_REPOS.llama)!.files));
    const v1 = await open(repo, cache);
    await v1.prefetch();
    const cfg = JSON.parse(await v1.readText('config.json')) as Record<string, unknown>;
    server.push(repo, { 'config.json': JSON.stringify({ ...cfg, rms_norm_eps: 1e-6 }) });
    const stale = await open(repo, cache);
    expect(stale.info.commit).toBe(v1.info.commit);
    const fresh = await open(repo, cache, { refresh: true });
    expect(fresh.info.commit).not.toBe(v1.info.commit);
    expect((await loadModel(fresh)).spec.rmsNormEps).toBe(1e-6);
    expect((await loadModel(v1)).spec.rmsNormEps).toBe(1e-5);
  });

  it('never writes the token into the cache folder (names or contents)', async () => {
    const { cache, dir } = await tempCache();
    const src = await open(TEST_REPOS.gated, cache, { token: TEST_TOKENS.approved });
    await src.prefetch();
    const seen: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const n of await readdir(d, { withFileTypes: true })) {
        const full = join(d, n.name);
        seen.push(full);
        if (n.isDirectory()) await walk(full);
        else expect((await readFile(full)).includes(Buffer.from(TEST_TOKENS.approved))).toBe(false);
      }
    };
    await walk(dir);
    expect(seen.length).toBeGreaterThan(3);
    expect(seen.join('\n')).not.toContain(TEST_TOKENS.approved);
    expect(src.id).not.toContain(TEST_TOKENS.approved);
    expect(server.requests.every((r) => !JSON.stringify(r).includes(TEST_TOKENS.approved))).toBe(true);
  });

  it('ranges mode reads safetensors headers without downloading the weights', async () => {
    const cache = memoryDownloadCache();
    const src = await open(TEST_REPOS.llama, cache, { mode: 'ranges' });
    const r = await src.openRandomAccess('model.safetensors');
    expect(r.size).toBe(src.file('model.safetensors')?.size);
    const head = await r.read(0, 8);
    expect(head.byteLength).toBe(8);
    expect(server.requests.filter((x) => x.path.startsWith('/cdn/')).every((x) => x.range !== null)).toBe(
      true,
    );
    expect(await cache.list()).toEqual([]);
  });

  it('cancelling stops the download and keeps the partial bytes', async () => {
    const cache = memoryDownloadCache();
    const ctl = new AbortController();
    const src = await open(TEST_REPOS.slow, cache, {
      signal: ctl.signal,
      onProgress: (p) => {
        if (p.fileLoaded > 50_000) ctl.abort();
      },
      progressIntervalMs: 0,
    });
    const e = await expectHubError(src.ensure('model.safetensors'), 'aborted');
    expect(e.message).toBe('cancelled');
    server.reset();
    const again = await open(TEST_REPOS.slow, cache);
    await again.ensure('model.safetensors');
    const range = server.requests.find((r) => r.path.startsWith('/cdn/'))?.range;
    expect(range).toMatch(/^bytes=\d+-$/);
  });
});
