// The CLI's graph cache: a model opened from its graph file answers as the in-memory build does, a warm
// open builds nothing, a damaged entry is removed and built again, the key follows the adapter's bytes,
// and a failed build leaves no temp folder behind.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { folderSource } from '../hub/folder-files-node';
import { graphKey } from '../engine/graph-store';
import { loadLora } from '../engine/lora';
import { EngineModel, type EngineModelOptions } from '../engine/model';
import { configureOrt } from '../engine/session';
import { fixturePath, spreadIds } from '../engine/test-fixtures';
import { openModel, storeWeights } from '../engine/weights';
import { cacheCommand } from './cache-command';
import type { ExternalDataSink } from '../engine/graph/builder';
import type { DecoderGraphFiles } from '../engine/graph/decoder';
import type { StoredGraph } from '../engine/graph-store';
import { defaultGraphCacheDir, FileGraphStore, folderIdentity } from './graph-cache';

configureOrt({ numThreads: 1 });

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'graph-cache-test-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A fresh EngineModel of a fixture (+ adapter) on node-cpu, through `store` when given. */
async function open(
  folder: string,
  adapter: string | undefined,
  store: FileGraphStore | null,
  opts: EngineModelOptions = {},
): Promise<EngineModel> {
  const dir = fixturePath(folder);
  const opened = await openModel(folderSource(dir));
  const lora = adapter ? await loadLora(folderSource(adapter), opened.spec) : undefined;
  const source = JSON.stringify({
    model: await folderIdentity(dir),
    adapter: adapter ? await folderIdentity(adapter) : '',
  });
  return EngineModel.create(opened.spec, storeWeights(opened.spec, opened.store), {
    backend: 'node-cpu',
    lora,
    ...opts,
    ...(store ? { graphStore: { store, source } } : {}),
  });
}

/** Logits of two rows (base and LoRA dose) and 6 greedy tokens of row 0, as plain arrays. */
async function answers(m: EngineModel): Promise<{ logits: number[]; greedy: number[] }> {
  const ids = spreadIds(m.spec, 2, 9, 3);
  const out = await m.forward({
    inputIds: ids,
    taps: { logits: 'all' },
    ...(m.hasLora ? { loraScale: [0, 1] } : {}),
  });
  const logits = Array.from(out.logits.data);
  out.present.dispose();
  const seq = [...ids[0]];
  const greedy: number[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await m.forward({ inputIds: [seq], taps: { logits: 'last' } });
    const v = r.logits.data;
    let best = 0;
    for (let j = 1; j < v.length; j++) if (v[j] > v[best]) best = j;
    r.present.dispose();
    greedy.push(best);
    seq.push(best);
  }
  return { logits, greedy };
}

describe('graph cache (onnxruntime-node from a graph file)', () => {
  const cases = [
    { folder: 'tiny-llama', adapter: fixturePath('tiny-llama-lora'), dtype: 'fp32' as const },
    { folder: 'tiny-qwen2', adapter: undefined, dtype: 'fp32' as const },
    { folder: 'tiny-gemma3', adapter: undefined, dtype: 'int8' as const },
    { folder: 'tiny-qwen3', adapter: undefined, dtype: 'q4' as const },
  ];
  for (const c of cases) {
    it(`${c.folder}${c.adapter ? ' + LoRA' : ''}, ${c.dtype}: same answers as without; the warm open builds nothing`, async () => {
      const store = new FileGraphStore(path.join(tmp, `same-${c.folder}`));
      const plain = await open(c.folder, c.adapter, null, { dtype: c.dtype });
      const want = await answers(plain);
      await plain.dispose();
      const cold = await open(c.folder, c.adapter, store, { dtype: c.dtype });
      expect(cold.graphBuilt).toBe(true);
      expect(await answers(cold)).toEqual(want);
      await cold.dispose();
      const warm = await open(c.folder, c.adapter, store, { dtype: c.dtype });
      expect(warm.graphBuilt).toBe(false);
      expect({ builds: store.builds, opens: store.opens }).toEqual({ builds: 1, opens: 1 });
      expect(await answers(warm)).toEqual(want);
      expect(warm.io).toEqual(cold.io);
      await warm.dispose();
    });
  }

  it('another dtype or option is another entry', async () => {
    const store = new FileGraphStore(path.join(tmp, 'options'));
    await (await open('tiny-llama', undefined, store)).dispose();
    await (await open('tiny-llama', undefined, store, { dtype: 'int8' })).dispose();
    await (await open('tiny-llama', undefined, store, { maxPositions: 40 })).dispose();
    expect(store.builds).toBe(3);
    expect(fs.readdirSync(store.dir).length).toBe(3);
  });

  it('a damaged entry is removed and built again', async () => {
    const lines: string[] = [];
    const store = new FileGraphStore(path.join(tmp, 'damaged'), { log: (l) => lines.push(l) });
    const want = await answers(await open('tiny-llama', undefined, store));
    const [entry] = fs.readdirSync(store.dir).map((e) => path.join(store.dir, e));
    const damage: [string, () => void][] = [
      ['external data cut short', () => fs.truncateSync(path.join(entry, 'model.onnx.data'), 4096)],
      ['model.onnx missing', () => fs.rmSync(path.join(entry, 'model.onnx'))],
      ['model.onnx overwritten', () => fs.writeFileSync(path.join(entry, 'model.onnx'), 'not a model')],
      ['meta.json torn', () => fs.writeFileSync(path.join(entry, 'meta.json'), '{"format":')],
      ['meta.json missing', () => fs.rmSync(path.join(entry, 'meta.json'))],
    ];
    for (const [i, [what, f]] of damage.entries()) {
      f();
      const m = await open('tiny-llama', undefined, store);
      expect(m.graphBuilt, what).toBe(true);
      expect(store.builds, what).toBe(i + 2);
      expect(await answers(m), what).toEqual(want);
      await m.dispose();
    }
    expect(lines.filter((l) => l.startsWith('graph cache entry damaged')).length).toBe(damage.length);
    expect(lines.some((l) => l.startsWith('building the graph file'))).toBe(true);
    const warm = await open('tiny-llama', undefined, store);
    expect(warm.graphBuilt).toBe(false);
    expect(lines.filter((l) => /^opening from the graph cache/.test(l)).length).toBe(1);
    await warm.dispose();
  });

  it('the key changes when the adapter’s bytes change, not when they are copied', async () => {
    const a = path.join(tmp, 'lora-a');
    const b = path.join(tmp, 'lora-b');
    fs.cpSync(fixturePath('tiny-llama-lora'), a, { recursive: true });
    fs.cpSync(fixturePath('tiny-llama-lora'), b, { recursive: true });
    const idA = (await folderIdentity(a)).split('|').slice(1);
    expect((await folderIdentity(b)).split('|').slice(1)).toEqual(idA); // same bytes, other folder
    const file = path.join(b, 'adapter_model.safetensors');
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] ^= 1; // the last byte of the last tensor's values
    fs.writeFileSync(file, bytes);
    const stat = fs.statSync(path.join(a, 'adapter_model.safetensors'));
    fs.utimesSync(file, stat.atime, stat.mtime); // same size and mtime: only the hash can tell
    expect((await folderIdentity(b)).split('|').slice(1)).not.toEqual(idA);

    const store = new FileGraphStore(path.join(tmp, 'lora-key'));
    const ma = await open('tiny-llama', a, store);
    const mb = await open('tiny-llama', b, store);
    expect(mb.graphBuilt).toBe(true);
    expect(store.builds).toBe(2);
    const [ra, rb] = [await answers(ma), await answers(mb)];
    expect(rb.logits).not.toEqual(ra.logits);
    await ma.dispose();
    await mb.dispose();

    // the adapter's shape is in the key too, whatever identifies its bytes
    const opened = await openModel(folderSource(fixturePath('tiny-llama')));
    const lora = await loadLora(folderSource(a), opened.spec);
    const k1 = graphKey('x', opened.spec, {}, lora);
    expect(graphKey('x', opened.spec, {}, { ...lora, alpha: lora.alpha * 2 })).not.toBe(k1);
    expect(graphKey('x', opened.spec, {}, undefined)).not.toBe(k1);
    expect(graphKey('x', opened.spec, { dtype: 'q4' }, lora)).not.toBe(k1);
    expect(graphKey('x', { ...opened.spec, ropeTheta: 1 }, {}, lora)).not.toBe(k1);
    expect(graphKey('x', opened.spec, {}, lora)).toBe(k1);
  });

  it('a model file that changes (size or mtime) is another entry', async () => {
    const dir = path.join(tmp, 'model-copy');
    fs.cpSync(fixturePath('tiny-qwen2'), dir, { recursive: true });
    const before = await folderIdentity(dir);
    const f = path.join(dir, 'model.safetensors');
    const t = new Date(fs.statSync(f).mtimeMs + 5000);
    fs.utimesSync(f, t, t);
    expect(await folderIdentity(dir)).not.toBe(before);
  });

  it('a build that fails leaves neither a temp folder nor an entry', async () => {
    const store = new FileGraphStore(path.join(tmp, 'failing'));
    await expect(
      store.graph('k', async (sink) => {
        await sink.write('model.onnx.data', 0, new Uint8Array(8192));
        throw new Error('reading the weights failed');
      }),
    ).rejects.toThrow('reading the weights failed');
    expect(fs.readdirSync(store.dir)).toEqual([]);
    // a source that fails mid-build through EngineModel too
    const opened = await openModel(folderSource(fixturePath('tiny-llama')));
    const weights = storeWeights(opened.spec, opened.store);
    let n = 0;
    const failing = {
      ...weights,
      valuesInto: async (name: string, dst: Float32Array) => {
        if (++n === 5) throw new Error('disk went away');
        await weights.valuesInto(name, dst);
      },
      values: async (name: string) => {
        if (++n === 5) throw new Error('disk went away');
        return weights.values(name);
      },
    };
    await expect(
      EngineModel.create(opened.spec, failing, {
        backend: 'node-cpu',
        graphStore: { store, source: 'tiny-llama' },
      }),
    ).rejects.toThrow('disk went away');
    expect(fs.readdirSync(store.dir)).toEqual([]);
    expect(store.builds).toBe(0);
  });

  it('a killed build’s old temp folder is removed by the next build of that entry, a recent one is kept', async () => {
    const store = new FileGraphStore(path.join(tmp, 'stale'));
    const opened = await openModel(folderSource(fixturePath('tiny-llama')));
    const weights = storeWeights(opened.spec, opened.store);
    const graphStore = { store, source: 'tiny-llama' };
    const opts = { backend: 'node-cpu' as const, graphStore };
    // the entry's id comes from the key; learn it from a first build, then fake two leftovers
    await (await EngineModel.create(opened.spec, weights, opts)).dispose();
    const [id] = fs.readdirSync(store.dir);
    fs.rmSync(path.join(store.dir, id), { recursive: true });
    const old = path.join(store.dir, `.tmp-${id}-old`);
    const recent = path.join(store.dir, `.tmp-${id}-recent`);
    for (const d of [old, recent]) fs.mkdirSync(d);
    const long = new Date(Date.now() - 7 * 3600 * 1000);
    fs.utimesSync(old, long, long);
    await (await EngineModel.create(opened.spec, storeWeights(opened.spec, opened.store), opts)).dispose();
    expect(fs.readdirSync(store.dir).sort()).toEqual([`.tmp-${id}-recent`, id].sort());
  });

  it('cache clear (the whole cache) removes the graph files too, and says how much', async () => {
    const env = { PIGGYBACK_CACHE: path.join(tmp, 'clear') };
    const store = new FileGraphStore(defaultGraphCacheDir(env));
    await (await open('tiny-llama', undefined, store)).dispose();
    expect(fs.readdirSync(store.dir).length).toBe(1);
    const lines: string[] = [];
    expect(await cacheCommand(['clear'], new Map(), env, (s) => lines.push(s))).toBe(0);
    expect(fs.existsSync(store.dir)).toBe(false);
    expect(lines.join('')).toMatch(/cleared the whole cache .*[1-9][\d.]* (KiB|MiB)/);
  });

  describe('prepacked graphs (ORT’s optimized model with its packed weights, per host)', () => {
    const packedDir = (store: FileGraphStore) => {
      const [id] = fs.readdirSync(store.dir).filter((n) => !n.startsWith('.'));
      return path.join(store.dir, id, 'packed');
    };

    it('the first open saves one, later opens map it: the same answers as without any cache', async () => {
      const adapter = fixturePath('tiny-llama-lora');
      const want = await answers(await open('tiny-llama', adapter, null));
      const dir = path.join(tmp, 'packed');
      const first = new FileGraphStore(dir);
      const m1 = await open('tiny-llama', adapter, first);
      expect([first.packedSaves, first.packedOpens]).toEqual([1, 0]);
      expect(await answers(m1)).toEqual(want);
      await m1.dispose();
      const packed = packedDir(first);
      expect(fs.readdirSync(packed).sort()).toEqual(['model.onnx', 'model.onnx.data', 'packed.json']);
      // no temp folder left in the entry
      expect(fs.readdirSync(path.dirname(packed)).filter((n) => n.startsWith('.'))).toEqual([]);
      const lines: string[] = [];
      const again = new FileGraphStore(dir, { log: (l) => lines.push(l) });
      const m2 = await open('tiny-llama', adapter, again);
      expect([again.builds, again.packedSaves, again.packedOpens]).toEqual([0, 0, 1]);
      expect(lines.some((l) => l.startsWith('opening the prepacked graph'))).toBe(true);
      expect(await answers(m2)).toEqual(want);
      await m2.dispose();
    });

    it('one made on another host, or damaged, is not used: packed and saved again', async () => {
      const dir = path.join(tmp, 'packed-host');
      await (await open('tiny-qwen2', undefined, new FileGraphStore(dir))).dispose();
      const lines: string[] = [];
      const other = new FileGraphStore(dir, {
        log: (l) => lines.push(l),
        packedHost: async () => 'another cpu',
      });
      const m = await open('tiny-qwen2', undefined, other);
      expect([other.packedOpens, other.packedSaves]).toEqual([0, 1]);
      expect(lines.some((l) => /made on another CPU or onnxruntime build/.test(l))).toBe(true);
      await m.dispose();
      const host = JSON.parse(fs.readFileSync(path.join(packedDir(other), 'packed.json'), 'utf8')).host;
      expect(host).toBe('another cpu');
      // cut the packed weights short: sizes no longer match, so it is packed again
      const same = new FileGraphStore(dir, { packedHost: async () => 'another cpu' });
      fs.truncateSync(path.join(packedDir(same), 'model.onnx.data'), 10);
      const lines2: string[] = [];
      const s2 = new FileGraphStore(dir, {
        log: (l) => lines2.push(l),
        packedHost: async () => 'another cpu',
      });
      const want = await answers(await open('tiny-qwen2', undefined, null));
      const m2 = await open('tiny-qwen2', undefined, s2);
      expect(lines2.some((l) => /model\.onnx\.data is 10 bytes/.test(l))).toBe(true);
      expect([s2.packedOpens, s2.packedSaves]).toEqual([0, 1]);
      expect(await answers(m2)).toEqual(want);
      await m2.dispose();
    });

    it('one that will not open is removed and the graph opened as it is', async () => {
      const dir = path.join(tmp, 'packed-bad');
      await (await open('tiny-qwen2', undefined, new FileGraphStore(dir))).dispose();
      const packed = packedDir(new FileGraphStore(dir));
      // a model ORT cannot parse, with a packed.json that vouches for it
      fs.writeFileSync(path.join(packed, 'model.onnx'), 'not a model');
      const meta = JSON.parse(fs.readFileSync(path.join(packed, 'packed.json'), 'utf8'));
      meta.modelBytes = 11;
      meta.modelSha256 = createHash('sha256').update('not a model').digest('hex');
      fs.writeFileSync(path.join(packed, 'packed.json'), JSON.stringify(meta));
      const lines: string[] = [];
      const store = new FileGraphStore(dir, { log: (l) => lines.push(l) });
      const want = await answers(await open('tiny-qwen2', undefined, null));
      const m = await open('tiny-qwen2', undefined, store);
      expect(store.packedOpens).toBe(1);
      expect(lines.some((l) => /the prepacked graph did not open: removed/.test(l))).toBe(true);
      expect(fs.existsSync(packed)).toBe(false);
      expect(await answers(m)).toEqual(want);
      await m.dispose();
    });

    it('with prepacking off (--no-prepack) none is saved or opened', async () => {
      const dir = path.join(tmp, 'packed-off');
      const store = new FileGraphStore(dir);
      const off = { session: { sessionConfig: { 'session.disable_prepacking': '1' } } };
      await (await open('tiny-qwen2', undefined, store, off)).dispose();
      await (await open('tiny-qwen2', undefined, store, off)).dispose();
      expect([store.packedSaves, store.packedOpens]).toEqual([0, 0]);
      expect(fs.existsSync(packedDir(store))).toBe(false);
      const none = new FileGraphStore(path.join(tmp, 'packed-none'), { packed: false });
      await (await open('tiny-qwen2', undefined, none)).dispose();
      expect(fs.existsSync(packedDir(none))).toBe(false);
    });
  });

  describe('size limit (least recently used entries go)', () => {
    /** A fake build: `mb` MiB of external data and a few bytes of "protobuf" (check() reads only sizes) */
    const fake = (mb: number) => async (sink: ExternalDataSink) => {
      await sink.write('model.onnx.data', 0, new Uint8Array(mb * 1024 * 1024));
      return {
        model: new TextEncoder().encode(`fake graph of ${mb} MiB`),
        externalFiles: [{ path: 'model.onnx.data', size: mb * 1024 * 1024 }],
        io: {} as StoredGraph['io'],
      } as unknown as DecoderGraphFiles;
    };
    const MiB = 1024 * 1024;
    /** Runs one "process": a fresh store opening or building each key, at a later time each run. */
    let clock = Date.now() - 3600_000;
    async function run(dir: string, maxBytes: number, keys: [string, number][], log?: string[]) {
      const store = new FileGraphStore(dir, { maxBytes, log: (l) => log?.push(l) });
      for (const [k, mb] of keys) {
        await store.graph(k, fake(mb));
        // NOTE: spread the last-use times a minute apart (mtime resolution is the filesystem's)
        clock += 60_000;
        const t = new Date(clock);
        fs.utimesSync(path.join(store.entryDir(k), 'meta.json'), t, t);
      }
      return store;
    }

    it('keeps the cache under its limit, removing the least recently used entries first', async () => {
      const dir = path.join(tmp, 'lru');
      await run(dir, 10 * MiB, [
        ['a', 3],
        ['b', 3],
      ]);
      await run(dir, 10 * MiB, [['a', 3]]); // a opened again: b is now the oldest
      const lines: string[] = [];
      const s = await run(
        dir,
        10 * MiB,
        [
          ['c', 3],
          ['d', 3],
        ],
        lines,
      );
      // a, b, c, d would be 12 MiB: b (least recently used) goes, a stays
      const left = (await s.entries()).map((e) => path.basename(e.dir));
      expect(left.sort()).toEqual(['a', 'c', 'd'].map((k) => path.basename(s.entryDir(k))).sort());
      expect(s.evictions).toBe(1);
      expect(lines.some((l) => /removed the least recently used entry \(3\.0 MiB/.test(l))).toBe(true);
      expect((await s.entries()).reduce((a, e) => a + e.bytes, 0)).toBeLessThanOrEqual(10 * MiB);
      // the entries still there open without a build
      const again = await run(dir, 10 * MiB, [
        ['a', 3],
        ['c', 3],
        ['d', 3],
      ]);
      expect([again.builds, again.opens]).toEqual([0, 3]);
    });

    it('never removes what this run opened or built, even over the limit, and says so', async () => {
      const dir = path.join(tmp, 'lru-own');
      await run(dir, 100 * MiB, [['old', 2]]);
      const lines: string[] = [];
      const s = await run(
        dir,
        5 * MiB,
        [
          ['base', 3],
          ['finetuned', 3],
        ],
        lines,
      );
      const left = (await s.entries()).map((e) => path.basename(e.dir)).sort();
      expect(left).toEqual(['base', 'finetuned'].map((k) => path.basename(s.entryDir(k))).sort());
      expect(s.evictions).toBe(1);
      expect(lines.at(-1)).toMatch(/holds 6\.0 MiB, over its 5\.0 MiB: the graphs of this run alone/);
    });

    it('temp folders are not entries, and Infinity keeps everything', async () => {
      const dir = path.join(tmp, 'lru-inf');
      const s = await run(dir, Infinity, [
        ['a', 2],
        ['b', 2],
        ['c', 2],
      ]);
      fs.mkdirSync(path.join(dir, `.tmp-${path.basename(s.entryDir('z'))}-x`));
      expect((await s.entries()).length).toBe(3);
      const t = await run(dir, 1 * MiB, [['a', 2]]);
      expect(t.evictions).toBe(2);
      expect(fs.readdirSync(dir).filter((n) => n.startsWith('.tmp-')).length).toBe(1);
      expect(() => new FileGraphStore(dir, { maxBytes: -1 })).toThrow(/≥ 0 bytes/);
    });

    it('cache list shows the graph entries, most recently used first', async () => {
      const env = { PIGGYBACK_CACHE: path.join(tmp, 'list') };
      const s = await run(defaultGraphCacheDir(env), Infinity, [
        ['a', 1],
        ['b', 2],
      ]);
      const out: string[] = [];
      expect(await cacheCommand(['list'], new Map(), env, (x) => out.push(x))).toBe(0);
      const g = JSON.parse(out.join('')).graphs;
      expect(g.entries).toBe(2);
      expect(g.bytes).toBeGreaterThanOrEqual(3 * MiB);
      expect(g.list.map((e: { entry: string }) => e.entry)).toEqual([s.entryDir('b'), s.entryDir('a')]);
    });
  });
});
