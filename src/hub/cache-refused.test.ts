// When the browser will not cache a download (a private window's Cache Storage failing a large put with
// "Unexpected internal error", a full quota, `caches.open` refusing, no `caches` at all): the load
// still succeeds with the bytes already downloaded, nothing is downloaded twice in the page, and the
// progress events carry the user's "not cached: …" line.
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHubTestServer, TEST_REPOS, type HubTestServer } from '../../scripts/hub-test-server';
import {
  browserDownloadCache,
  cacheStorageDownloadCache,
  notCachedMessage,
  notStoredReason,
  type DownloadCache,
} from './download-cache';
import { fakeCacheStorage, internalPutError, quotaPutError } from './cache-storage.testdata';
import { HubClient } from './hub-api';
import { openHubSource, type HubProgress } from './hub-files';
import { folderSource } from './folder-files-node';
import { loadModel } from '../engine/weights';
import { loadLora } from '../engine/lora';

let server: HubTestServer;
beforeAll(async () => {
  server = await startHubTestServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

const ORIGIN = 'https://huggingface.co';
const key = { origin: ORIGIN, repo: 'o/n', revision: 'a'.repeat(40), file: 'model.safetensors' };
const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 255);
const isWeights = (url: string) => url.endsWith('.safetensors');

const open = (repo: string, cache: DownloadCache, onProgress?: (p: HubProgress) => void) =>
  openHubSource({
    client: new HubClient({ endpoint: server.url }),
    cache,
    repo,
    retry: { retries: 1, baseDelayMs: 1, maxDelayMs: 2 },
    onProgress,
  });

const weightGets = (repo: string, file = 'model.safetensors') =>
  server.requests.filter(
    (r) => r.method === 'GET' && r.path.startsWith(`/cdn/${repo}/`) && r.path.endsWith(file),
  );

const kinds = [
  [
    'Unexpected internal error (a private window)',
    internalPutError,
    'refused',
    /\(private window or no space\)/,
  ],
  ['QuotaExceededError', quotaPutError, 'quota', /storage quota is full/],
] as const;

describe('Cache Storage that refuses a put', () => {
  for (const [name, error, reason, words] of kinds) {
    it(`${name}: commit says not stored, the file is still served whole, list leaves it out`, async () => {
      const storage = fakeCacheStorage({ putError: (url) => (isWeights(url) ? error() : null) });
      const c = cacheStorageDownloadCache(storage);
      const w = await c.writer(key, { size: 300 });
      await w.write(bytes.subarray(0, 120));
      await w.write(bytes.subarray(120));
      const done = await w.commit();
      expect(done).toMatchObject({ stored: false, reason });
      expect(storage.puts).toHaveLength(1);
      const f = await c.open(key, 300);
      expect([...(await f!.bytes())]).toEqual([...bytes]);
      expect([...(await f!.reader.read(290, 4))]).toEqual([...bytes.subarray(290, 294)]);
      expect(await c.list()).toEqual([]);
      expect(await c.clear({ repo: 'o/n' })).toBe(300);
      expect(await c.open(key)).toBeNull();
      expect(notCachedMessage(988_000_000, reason)).toMatch(words);
    });
  }

  it('a file list the store refuses is remembered for the page', async () => {
    const c = cacheStorageDownloadCache(fakeCacheStorage({ putError: () => internalPutError() }));
    const info = {
      repo: 'o/n',
      revision: 'main',
      commit: null,
      gated: false as const,
      private: false,
      files: [],
    };
    await c.putInfo(ORIGIN, info);
    expect(await c.getInfo({ origin: ORIGIN, repo: 'o/n', revision: 'main' })).toEqual(info);
  });

  it('caches.open refusing (SecurityError): everything is held in memory, reason unavailable', async () => {
    const c = cacheStorageDownloadCache(
      fakeCacheStorage({ openError: new DOMException('The operation is insecure.', 'SecurityError') }),
    );
    const w = await c.writer(key, { size: 300 });
    await w.write(bytes);
    expect(await w.commit()).toMatchObject({ stored: false, reason: 'unavailable' });
    expect((await c.open(key, 300))?.size).toBe(300);
    expect(await c.list()).toEqual([]);
  });

  it('no `caches` at all (an insecure origin): memory, and commits say so', async () => {
    expect((globalThis as { caches?: unknown }).caches).toBeUndefined();
    const c = browserDownloadCache();
    expect(c.kind).toBe('memory');
    const w = await c.writer(key, { size: 300 });
    await w.write(bytes);
    expect(await w.commit()).toMatchObject({ stored: false, reason: 'unavailable' });
    expect((await c.open(key, 300))?.size).toBe(300);
  });

  it('reads a DOMException as a reason and a detail', () => {
    expect(notStoredReason(quotaPutError())).toMatchObject({
      reason: 'quota',
      detail: /^QuotaExceededError: /,
    });
    expect(notStoredReason(internalPutError())).toMatchObject({
      reason: 'refused',
      detail: "UnknownError: Failed to execute 'put' on 'Cache': Unexpected internal error.",
    });
  });
});

describe('a Hub load whose weights the browser refuses to cache', () => {
  for (const [name, error, , words] of kinds) {
    it(`${name}: the model loads with identical weights, downloaded once, and the progress says not cached`, async () => {
      const storage = fakeCacheStorage({ putError: (url) => (isWeights(url) ? error() : null) });
      const cache = cacheStorageDownloadCache(storage);
      const events: HubProgress[] = [];
      const src = await open(TEST_REPOS.llama, cache, (p) => events.push(p));
      const r = await src.prefetch();
      const fetched = [...events];
      const weightsSize = src.file('model.safetensors')?.size ?? 0;
      expect(r.notCachedBytes).toBe(weightsSize);
      expect(src.stats().notCachedBytes).toBe(weightsSize);
      const viaHub = await loadModel(src);
      const local = await loadModel(folderSource(join(__dirname, '../../fixtures/tiny-llama')));
      for (const [n, t] of local.weights) expect(viaHub.weights.get(n)?.data).toEqual(t.data);
      expect(weightGets(TEST_REPOS.llama)).toHaveLength(1);

      // the config files were cached; the weights' refusal is on every event after their download
      const last = fetched[fetched.length - 1];
      expect(last).toMatchObject({ file: 'model.safetensors', done: true, loaded: r.downloadedBytes });
      expect(last.notCached?.bytes).toBe(weightsSize);
      expect(last.notCached?.message).toMatch(/^not cached: this browser refused to store /);
      expect(last.notCached?.message).toMatch(words);
      expect(last.notCached?.message).toMatch(/the next visit downloads again$/);
      expect(fetched.filter((e) => e.file === 'config.json').every((e) => !e.notCached)).toBe(true);
      // loaded never passes the total, even with the repeated done event
      expect(fetched.every((e) => e.total === null || e.loaded <= e.total)).toBe(true);

      // the same page loads the repo again: from the held bytes, no request for the weights
      server.reset();
      const again = await open(TEST_REPOS.llama, cache);
      await again.prefetch();
      await loadModel(again);
      expect(weightGets(TEST_REPOS.llama)).toEqual([]);
      expect(again.stats().cacheHits).toBeGreaterThan(0);
    });
  }

  it('a LoRA pair: both the base weights and the adapter are refused, both load, each downloaded once', async () => {
    const cache = cacheStorageDownloadCache(
      fakeCacheStorage({ putError: (url) => (isWeights(url) ? internalPutError() : null) }),
    );
    const base = await open(TEST_REPOS.llama, cache);
    await base.prefetch();
    const adapter = await open(TEST_REPOS.lora, cache);
    await adapter.prefetch();
    const model = await loadModel(base);
    const lora = await loadLora(adapter, model.spec);
    expect(lora).toBeTruthy();
    expect(weightGets(TEST_REPOS.llama)).toHaveLength(1);
    expect(weightGets(TEST_REPOS.lora, 'adapter_model.safetensors')).toHaveLength(1);
    expect(adapter.stats().notCachedBytes).toBe(adapter.file('adapter_model.safetensors')?.size);
  });
});
