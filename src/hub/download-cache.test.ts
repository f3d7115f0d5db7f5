// The three download caches (memory, Cache Storage, folder) behave the same: write/commit/open with
// size checks, resume from partial bytes, remembered file lists, list, clear.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  cacheKeyString,
  cacheStorageDownloadCache,
  memoryDownloadCache,
  type DownloadCache,
} from './download-cache';
import { fakeCacheStorage } from './cache-storage.testdata';
import { defaultDownloadCacheDir, folderDownloadCache } from './download-cache-node';
import { HubError, type RepoInfo } from './hub-api';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function makeFolder(): Promise<DownloadCache> {
  const d = await mkdtemp(join(tmpdir(), 'piggyback-cache-'));
  dirs.push(d);
  return folderDownloadCache(d);
}

const ORIGIN = 'https://huggingface.co';
const key = { origin: ORIGIN, repo: 'o/n', revision: 'a'.repeat(40), file: 'sub/model.safetensors' };
const infoKey = (repo: string, revision: string) => ({ origin: ORIGIN, repo, revision });
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
      const w = await c.writer(key, { size: 300 });
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
      const w = await c.writer(key, { size: 301 });
      await w.write(bytes);
      await expect(w.commit()).rejects.toThrow(/300 bytes written, 301 expected; not cached/);
      expect(await c.open(key)).toBeNull();
      const w2 = await c.writer(key, { size: 300 });
      await w2.write(bytes);
      await w2.commit();
      expect(await c.open(key, 299)).toBeNull();
      expect(await c.open(key)).toBeNull();
    });

    it('keeps partial bytes for a resume only when asked', async () => {
      const c = await make();
      const w = await c.writer(key, { size: 300 });
      await w.write(bytes.subarray(0, 120));
      await w.abort(true);
      const w2 = await c.writer(key, { size: 300 });
      expect(w2.offset).toBe(120);
      await w2.write(bytes.subarray(120));
      await w2.commit();
      expect([...(await (await c.open(key, 300))!.bytes())]).toEqual([...bytes]);
      const w3 = await c.writer({ ...key, file: 'other.bin' }, { size: 300 });
      await w3.write(bytes.subarray(0, 50));
      await w3.abort(false);
      expect((await c.writer({ ...key, file: 'other.bin' }, { size: 300 })).offset).toBe(0);
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
      expect(await c.getInfo(infoKey('o/n', 'main'))).toBeNull();
      await c.putInfo(ORIGIN, info);
      expect(await c.getInfo(infoKey('o/n', 'main'))).toEqual(info);
      expect(await c.getInfo(infoKey('o/n', 'dev'))).toBeNull();
    });

    it('clears one repo or everything, reporting the bytes freed', async () => {
      const c = await make();
      for (const repo of ['o/n', 'p/q']) {
        const w = await c.writer({ ...key, repo }, { size: 300 });
        await w.write(bytes);
        await w.commit();
        await c.putInfo(ORIGIN, { ...info, repo });
      }
      expect(await c.clear({ repo: 'o/n' })).toBe(300);
      expect((await c.list()).map((e) => e.repo)).toEqual(['p/q']);
      expect(await c.getInfo(infoKey('o/n', 'main'))).toBeNull();
      expect(await c.getInfo(infoKey('p/q', 'main'))).not.toBeNull();
      expect(await c.clear()).toBe(300);
      expect(await c.list()).toEqual([]);
      expect(await c.getInfo(infoKey('p/q', 'main'))).toBeNull();
    });

    it('keeps origins apart: the same repo, commit and path from another host is another entry', async () => {
      const c = await make();
      const w = await c.writer(key, { size: 300 });
      await w.write(bytes);
      await w.commit();
      const elsewhere = { ...key, origin: 'http://127.0.0.1:8080' };
      expect(await c.open(elsewhere)).toBeNull();
      await c.putInfo(ORIGIN, info);
      expect(await c.getInfo({ ...infoKey('o/n', 'main'), origin: 'http://127.0.0.1:8080' })).toBeNull();
      await expect(c.writer({ ...key, origin: 'https://huggingface.co/x' })).rejects.toThrow(
        /not an http\(s\) origin/,
      );
    });

    it('checks the sha256 before keeping a file: a mismatch keeps nothing, not even a partial', async () => {
      const c = await make();
      const good = createHash('sha256').update(bytes).digest('hex');
      const w = await c.writer(key, { size: 300, sha256: good });
      await w.write(bytes.subarray(0, 100));
      await w.abort(true);
      // resumed from the kept bytes, which are hashed too
      const w2 = await c.writer(key, { size: 300, sha256: good });
      expect(w2.offset).toBe(100);
      await w2.write(bytes.subarray(100));
      await w2.commit();
      expect((await c.open(key, 300))?.size).toBe(300);
      const other = { ...key, file: 'bad.bin' };
      const w3 = await c.writer(other, { size: 300, sha256: good });
      const wrong = bytes.slice();
      wrong[7] ^= 1;
      await w3.write(wrong);
      const e = await w3.commit().catch((x: unknown) => x as HubError);
      expect(e).toBeInstanceOf(HubError);
      expect((e as HubError).reason).toBe('hash_mismatch');
      expect((e as HubError).message).toMatch(
        new RegExp(
          `sha256 mismatch for bad\\.bin: expected ${good}, got [0-9a-f]{64}; the server sent a different file — the download was discarded`,
        ),
      );
      expect(await c.open(other)).toBeNull();
      expect((await c.writer(other, { size: 300, sha256: good })).offset).toBe(0);
    });

    it('keeps the validator with partial bytes, and drops it on reset', async () => {
      const c = await make();
      const w = await c.writer(key, { size: 300 });
      expect(w.validator).toBeNull();
      await w.setValidator('"etag-1"');
      await w.write(bytes.subarray(0, 40));
      await w.abort(true);
      const w2 = await c.writer(key, { size: 300 });
      expect([w2.offset, w2.validator]).toEqual([40, '"etag-1"']);
      await w2.reset();
      expect([w2.offset, w2.validator]).toEqual([0, null]);
      await w2.write(bytes.subarray(0, 10));
      await w2.abort(true);
      expect((await c.writer(key, { size: 300 })).validator).toBeNull();
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
  it('keys are origin/repo@revision/path, nothing else', () => {
    expect(cacheKeyString(key)).toBe(`https://huggingface.co/o/n@${'a'.repeat(40)}/sub/model.safetensors`);
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
    const w = await c.writer(key, { size: 300 });
    await w.write(bytes.subarray(0, 10));
    await w.abort(true);
    expect(await c.list()).toEqual([]);
    const w2 = await c.writer(key, { size: 300 });
    await w2.write(bytes.subarray(10));
    await w2.commit();
    const folder = join(d, 'v2', 'files', encodeURIComponent(ORIGIN), 'o', 'n', 'a'.repeat(40), 'sub');
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
