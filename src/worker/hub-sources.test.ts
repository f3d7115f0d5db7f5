// The worker's source resolution (run in Node against the Hub stand-in): Hub ids, Hub-layout URLs,
// plain folder URLs, progress events, the in-memory token sent only to the Hub endpoint.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  startHubTestServer,
  TEST_REPOS,
  TEST_TOKENS,
  type HubTestServer,
} from '../../scripts/hub-test-server';
import { readdirSync, readFileSync } from 'node:fs';
import { blobFolderSource } from '../hub/browser-files';
import { cacheStorageDownloadCache, memoryDownloadCache } from '../hub/download-cache';
import { fakeCacheStorage, internalPutError } from '../hub/cache-storage.testdata';
import { hubToken } from '../hub/token';
import { loadModel } from '../engine/weights';
import { resolveBrowserSource, type DownloadProgressEvent } from './hub-sources';

let server: HubTestServer;
beforeAll(async () => {
  server = await startHubTestServer();
});
afterAll(async () => server.close());
beforeEach(() => server.reset());
afterEach(() => hubToken.clear());

describe('resolveBrowserSource', () => {
  it('hub id: prefetches with download progress events (file, rate, ETA), then loads', async () => {
    const events: DownloadProgressEvent[] = [];
    const src = await resolveBrowserSource(
      { kind: 'hub', repo: TEST_REPOS.llama },
      {
        origin: 'http://app.invalid',
        endpoint: server.url,
        cache: memoryDownloadCache(),
        onProgress: (p) => events.push(p),
      },
    );
    expect(events.length).toBeGreaterThan(3);
    expect(events.every((e) => e.stage === 'download' && e.model === TEST_REPOS.llama)).toBe(true);
    const last = events[events.length - 1];
    expect(last.file).toBe('model.safetensors');
    expect(last.loaded).toBe(last.total);
    server.reset();
    expect((await loadModel(src)).spec.numLayers).toBe(2);
    expect(server.requests).toEqual([]);
  });

  it('weights the browser refuses to cache still load; the download events say "not cached"', async () => {
    const events: DownloadProgressEvent[] = [];
    const src = await resolveBrowserSource(
      { kind: 'hub', repo: TEST_REPOS.llama },
      {
        origin: 'http://app.invalid',
        endpoint: server.url,
        cache: cacheStorageDownloadCache(
          fakeCacheStorage({ putError: (url) => (url.endsWith('.safetensors') ? internalPutError() : null) }),
        ),
        onProgress: (p) => events.push(p),
      },
    );
    const last = events[events.length - 1];
    expect(last.notCached).toMatch(
      /^not cached: this browser refused to store .* \(private window or no space\)/,
    );
    expect(events.filter((e) => e.file === 'config.json').every((e) => e.notCached === undefined)).toBe(true);
    expect((await loadModel(src)).weights.size).toBeGreaterThan(0);
  });

  it('the pasted token is read at load time and sent to the Hub endpoint only', async () => {
    const cache = memoryDownloadCache();
    const opts = { origin: 'http://app.invalid', endpoint: server.url, cache };
    await expect(resolveBrowserSource({ kind: 'hub', repo: TEST_REPOS.gated }, opts)).rejects.toThrow(
      /is gated/,
    );
    hubToken.set(TEST_TOKENS.approved);
    const src = await resolveBrowserSource({ kind: 'hub', repo: TEST_REPOS.gated }, opts);
    expect(src.id).not.toContain(TEST_TOKENS.approved);
    expect(server.requests.some((r) => r.auth === 'approved')).toBe(true);

    // a URL source on a host that is not the endpoint never gets it
    server.reset();
    await expect(
      resolveBrowserSource(
        { kind: 'url', url: `${server.url}/${TEST_REPOS.gated}` },
        {
          origin: 'http://app.invalid',
          endpoint: 'https://huggingface.invalid',
          cache: memoryDownloadCache(),
        },
      ),
    ).rejects.toThrow(/is gated/);
    expect(server.requests.every((r) => r.auth === 'none')).toBe(true);
  });

  it('a Hub-layout URL is a Hub repo; a plain folder URL falls back to plain files', async () => {
    const viaUrl = await resolveBrowserSource(
      { kind: 'url', url: `${server.url}/${TEST_REPOS.lora}` },
      { origin: 'http://app.invalid', cache: memoryDownloadCache() },
    );
    expect(await viaUrl.has('adapter_config.json')).toBe(true);
    expect(server.requests.some((r) => r.path.startsWith('/api/models/'))).toBe(true);

    // a static folder two levels deep: the model-info probe 404s, plain reads take over
    const plainFetch: typeof fetch = async (input, init) => {
      const u = new URL(String(input));
      if (u.pathname.startsWith('/api/')) return new Response('nope', { status: 404 });
      const m = /^\/static\/tiny\/(.+)$/.exec(u.pathname);
      return m
        ? fetch(`${server.url}/${TEST_REPOS.llama}/resolve/main/${m[1]}`, init)
        : new Response('nope', { status: 404 });
    };
    const plain = await resolveBrowserSource(
      { kind: 'url', url: 'http://static.invalid/static/tiny' },
      { origin: 'http://app.invalid', cache: memoryDownloadCache(), fetch: plainFetch },
    );
    expect(plain.id).toBe('http://static.invalid/static/tiny');
    expect((await loadModel(plain)).spec.numLayers).toBe(2);
  });

  it('without prefetch (a preflight) nothing but the file list is fetched', async () => {
    const src = await resolveBrowserSource(
      { kind: 'hub', repo: TEST_REPOS.llama },
      { origin: 'http://app.invalid', endpoint: server.url, cache: memoryDownloadCache(), prefetch: false },
    );
    expect(await src.has('model.safetensors')).toBe(true);
    expect(server.requests.map((r) => r.path)).toEqual([`/api/models/${TEST_REPOS.llama}/revision/main`]);
  });

  it('a local path reads the folder picked under that name', async () => {
    const dir = 'fixtures/tiny-llama';
    const files = readdirSync(dir).map((name) => ({
      path: `tiny-llama/${name}`,
      blob: new Blob([readFileSync(`${dir}/${name}`)]),
    }));
    const picked = blobFolderSource(files, 'tiny-llama');
    const src = await resolveBrowserSource(
      { kind: 'local', path: 'tiny-llama' },
      { origin: 'http://app.invalid', local: (p) => (p === 'tiny-llama' ? picked : undefined) },
    );
    expect((await loadModel(src)).spec.numLayers).toBe(2);
    expect(server.requests).toEqual([]);
  });

  it('a local path no folder was picked for says to pick it', async () => {
    await expect(
      resolveBrowserSource({ kind: 'local', path: 'x' }, { origin: 'http://app.invalid' }),
    ).rejects.toThrow(/pick the folder/);
  });
});
