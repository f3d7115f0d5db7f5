// The three download caches (memory, Cache Storage, folder) behave the same: write/commit/open with
// size checks, resume from partial bytes, remembered file lists, list, clear.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  cacheKeyString,
  cacheStorageDownloadCache,
  memoryDownloadCache,
  type CacheLike,
  type CacheStorageLike,
  type DownloadCache,
} from './download-cache';
import { defaultDownloadCacheDir, folderDownloadCache } from './download-cache-node';
import type { RepoInfo } from './hub-api';

/** Cache Storage as the browser has it, in memory (Node has no `caches`). */
function fakeCacheStorage(): CacheStorageLike & { names: () => string[] } {
  const stores = new Map<string, Map<string, Response>>();
  return {
    names: () => [...stores.keys()],
    async open(name) {
      let m = stores.get(name);
      if (!m) {
        m = new Map();
        stores.set(name, m);
      }
      const store = m;
      const cache: CacheLike = {
        async match(url) {
          return store.get(url)?.clone();
        },
        async put(url, res) {
          // NOTE: like the browser, the body is consumed and stored.
          store.set(url, new Response(await res.arrayBuffer(), { headers: res.headers }));
        },
        async delete(url) {
          return store.delete(url);
        },
        async keys() {
          return [...store.keys()].map((url) => ({ url }));
        },
      };
      return cache;
    },
    async delete(name) {
      return stores.delete(name);
    },
  };
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function makeFolder(): Promise<DownloadCache> {
  const d = await mkdtemp(join(tmpdir(), 'piggyback-cache-'));
  dirs.push(d);
  return folderDownloadCache(d);
}

const key = { repo: 'o/n', revision: 'a'.repeat(40), file: 'sub/model.safetensors' };
const bytes = Uint8Array.from({ length: 300 }, (_, i) => i & 255);
const info: RepoInfo = {
  repo: 'o/n',
  revision: 'main',
  commit: 'a'.repeat(40),
  gated: 'manual',
  private: false,
  files: [{ path: 'config.json', size: 10, sha256: null }],
};

const impls: [string, () => Promise<DownloadCache>][] = [
  ['memory', async () => memoryDownloadCache()],
  ['cache storage', async () => cacheStorageDownloadCache(fakeCacheStorage())],
  ['folder', makeFolder],
];

for (const [name, make] of impls) {
  describe(`${name} cache`, () => {
    it('writes, commits and opens with random access', async () => {
      const c = await make();
      expect(await c.open(key)).toBeNull();
      const w = await c.writer(key, 300);
      expect(w.offset).toBe(0);
      await w.write(bytes.subarray(0, 100));
      await w.write(bytes.subarray(100));
      expect(w.offset).toBe(300);
      expect(await c.open(key)).toBeNull();
      await w.commit();
      const f = await c.open(key, 300);
      expect(f?.size).toBe(300);
      expect([...(await f!.reader.read(250, 5))]).toEqual([250, 251, 252, 253, 254]);
      expect([...(await f!.bytes())]).toEqual([...bytes]);
      expect(await c.list()).toEqual([{ ...key, size: 300 }]);
    });

    it('refuses to commit the wrong size, and drops an entry whose size disagrees', async () => {
      const c = await make();
      const w = await c.writer(key, 301);
      await w.write(bytes);
      await expect(w.commit()).rejects.toThrow(/300 bytes written, 301 expected; not cached/);
      expect(await c.open(key)).toBeNull();
      const w2 = await c.writer(key, 300);
      await w2.write(bytes);
      await w2.commit();
      expect(await c.open(key, 299)).toBeNull();
      expect(await c.open(key)).toBeNull();
    });

    it('keeps partial bytes for a resume only when asked', async () => {
      const c = await make();
      const w = await c.writer(key, 300);
      await w.write(bytes.subarray(0, 120));
      await w.abort(true);
      const w2 = await c.writer(key, 300);
      expect(w2.offset).toBe(120);
      await w2.write(bytes.subarray(120));
      await w2.commit();
      expect([...(await (await c.open(key, 300))!.bytes())]).toEqual([...bytes]);
      const w3 = await c.writer({ ...key, file: 'other.bin' }, 300);
      await w3.write(bytes.subarray(0, 50));
      await w3.abort(false);
      expect((await c.writer({ ...key, file: 'other.bin' }, 300)).offset).toBe(0);
      const w4 = await c.writer({ ...key, file: 'reset.bin' });
      await w4.write(bytes.subarray(0, 50));
      await w4.reset();
      expect(w4.offset).toBe(0);
      await w4.write(bytes.subarray(0, 7));
      await w4.commit();
      expect((await c.open({ ...key, file: 'reset.bin' }))?.size).toBe(7);
    });

    it('remembers file lists per revision asked for', async () => {
      const c = await make();
      expect(await c.getInfo('o/n', 'main')).toBeNull();
      await c.putInfo(info);
      expect(await c.getInfo('o/n', 'main')).toEqual(info);
      expect(await c.getInfo('o/n', 'dev')).toBeNull();
    });

    it('clears one repo or everything, reporting the bytes freed', async () => {
      const c = await make();
      for (const repo of ['o/n', 'p/q']) {
        const w = await c.writer({ ...key, repo }, 300);
        await w.write(bytes);
        await w.commit();
        await c.putInfo({ ...info, repo });
      }
      expect(await c.clear({ repo: 'o/n' })).toBe(300);
      expect((await c.list()).map((e) => e.repo)).toEqual(['p/q']);
      expect(await c.getInfo('o/n', 'main')).toBeNull();
      expect(await c.getInfo('p/q', 'main')).not.toBeNull();
      expect(await c.clear()).toBe(300);
      expect(await c.list()).toEqual([]);
      expect(await c.getInfo('p/q', 'main')).toBeNull();
    });

    it('refuses unsafe file paths', async () => {
      const c = await make();
      for (const file of ['../x', 'a/../../x', '/abs', 'a//b', '', 'a\\b']) {
        await expect(c.writer({ ...key, file })).rejects.toThrow(/not a safe relative file path/);
      }
    });
  });
}

describe('cache details', () => {
  it('keys are repo@revision/path, nothing else', () => {
    expect(cacheKeyString(key)).toBe(`o/n@${'a'.repeat(40)}/sub/model.safetensors`);
  });

  it('the folder cache lives under PIGGYBACK_CACHE, else XDG_CACHE_HOME or ~/.cache', () => {
    expect(defaultDownloadCacheDir({ PIGGYBACK_CACHE: '/tmp/pc' })).toBe('/tmp/pc');
    expect(defaultDownloadCacheDir({ XDG_CACHE_HOME: '/tmp/xdg' })).toBe(join('/tmp/xdg', 'piggyback'));
    expect(defaultDownloadCacheDir({})).toMatch(/\.cache[/\\]piggyback$/);
  });

  it('the folder cache ignores .part files in listings and drops a file changed on disk', async () => {
    const d = await mkdtemp(join(tmpdir(), 'piggyback-cache-'));
    dirs.push(d);
    const c = folderDownloadCache(d);
    const w = await c.writer(key, 300);
    await w.write(bytes.subarray(0, 10));
    await w.abort(true);
    expect(await c.list()).toEqual([]);
    const w2 = await c.writer(key, 300);
    await w2.write(bytes.subarray(10));
    await w2.commit();
    const folder = join(d, 'files', 'o', 'n', 'a'.repeat(40), 'sub');
    expect(await readdir(folder)).toEqual(['model.safetensors']);
    await writeFile(join(folder, 'model.safetensors'), bytes.subarray(0, 5));
    expect(await c.open(key, 300)).toBeNull();
    expect(await readdir(folder)).toEqual([]);
  });

  it('Cache Storage: clearing everything deletes the named cache', async () => {
    const s = fakeCacheStorage();
    const c = cacheStorageDownloadCache(s, 'test-cache');
    const w = await c.writer(key);
    await w.write(bytes);
    await w.commit();
    expect(s.names()).toEqual(['test-cache']);
    await c.clear();
    expect(s.names()).toEqual([]);
    expect(await c.open(key)).toBeNull();
  });
});
