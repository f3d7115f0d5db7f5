// The streamed build (each weight read from safetensors while it is written into the external data, no
// WeightMap) against the in-memory build: byte-identical protobuf and external data for every fixture
// family, fp32 / int8 / q4, with and without LoRA, from F32, BF16 and F16 checkpoints.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { memorySource } from '../files';
import { loadLora } from '../lora';
import { folderSource } from '../../hub/folder-files-node';
import { openSafetensors, writeSafetensors, type SafetensorsDtype, type WriteEntry } from '../safetensors';
import { FIXTURE_CASES, fixturePath } from '../test-fixtures';
import { loadModel, openModel, storeWeights } from '../weights';
import { FILE_ALIGN, type ExternalDataSink } from './builder';
import {
  buildDecoderGraph,
  buildDecoderGraphFrom,
  buildDecoderGraphTo,
  type DecoderGraph,
  type DecoderGraphFiles,
  type GraphDtype,
} from './decoder';

function same(a: DecoderGraph, b: DecoderGraph): void {
  expect(Buffer.from(a.model).equals(Buffer.from(b.model))).toBe(true);
  expect(a.externalData.map((f) => f.path)).toEqual(b.externalData.map((f) => f.path));
  for (let i = 0; i < a.externalData.length; i++) {
    expect(Buffer.from(a.externalData[i].data).equals(Buffer.from(b.externalData[i].data))).toBe(true);
  }
  expect(a.io).toEqual(b.io);
}

/** A sink into growing in-memory files, checking that each file's writes come in offset order. */
function memorySink() {
  const files = new Map<string, { bytes: Uint8Array; end: number }>();
  const sink: ExternalDataSink = {
    write(path, offset, data) {
      const f = files.get(path) ?? { bytes: new Uint8Array(0), end: 0 };
      expect(offset).toBeGreaterThanOrEqual(f.end);
      if (offset + data.byteLength > f.bytes.byteLength) {
        const grown = new Uint8Array(offset + data.byteLength);
        grown.set(f.bytes);
        f.bytes = grown;
      }
      f.bytes.set(data, offset);
      f.end = offset + data.byteLength;
      files.set(path, f);
    },
  };
  return { sink, files };
}

/** A file build's tensors by name, read out of its sink's files. */
function tensorsOf(g: DecoderGraphFiles, files: Map<string, { bytes: Uint8Array }>): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const t of g.tensors)
    out.set(t.name, files.get(t.path)!.bytes.subarray(t.offset, t.offset + t.length));
  return out;
}

/** A fixture folder's files with model.safetensors re-encoded as `dtype` (rounded to nearest even). */
async function recoded(folder: string, dtype: SafetensorsDtype) {
  const dir = fixturePath(folder);
  const files: Record<string, Uint8Array> = {};
  for (const f of readdirSync(dir)) files[f] = readFileSync(join(dir, f));
  const st = await openSafetensors(files['model.safetensors']);
  const entries = new Map<string, WriteEntry>();
  for (const name of st.tensors.keys()) {
    const t = await st.read(name);
    entries.set(name, { dtype, shape: t.shape, data: t.data });
  }
  files['model.safetensors'] = writeSafetensors(entries);
  return memorySource(files, folder);
}

const DTYPES: readonly GraphDtype[] = ['fp32', 'int8', 'q4'];

describe('streamed decoder build = in-memory build, byte for byte', () => {
  for (const c of FIXTURE_CASES) {
    for (const dtype of DTYPES) {
      it(`${c.name}, ${dtype}`, async () => {
        const source = folderSource(fixturePath(c.folder));
        const loaded = await loadModel(source);
        const lora = c.lora ? await loadLora(folderSource(fixturePath(c.lora)), loaded.spec) : undefined;
        const opts = { lora, dtype, maxPositions: 32, externalChunkBytes: 64 * 1024 };
        const want = buildDecoderGraph(loaded.spec, loaded.weights, opts);
        const opened = await openModel(source);
        const progress: number[] = [];
        const w = storeWeights(opened.spec, opened.store, { onProgress: (done) => progress.push(done) });
        const got = await buildDecoderGraphFrom(opened.spec, w, opts);
        same(got, want);
        // every required tensor read exactly once, in order
        expect(progress).toEqual(Array.from({ length: loaded.weights.size }, (_, i) => i + 1));
        expect(w.fp32Bytes).toBe([...loaded.weights.values()].reduce((n, t) => n + t.data.byteLength, 0));
      });
    }
  }

  for (const dtype of ['BF16', 'F16'] as const) {
    for (const folder of ['tiny-qwen2', 'tiny-gemma3']) {
      it(`${folder} stored as ${dtype}: fp32 and q4`, async () => {
        const source = await recoded(folder, dtype);
        const loaded = await loadModel(source);
        const opened = await openModel(source);
        for (const g of ['fp32', 'q4'] as const) {
          const opts = { dtype: g, maxPositions: 32 };
          const got = await buildDecoderGraphFrom(opened.spec, storeWeights(opened.spec, opened.store), opts);
          same(got, buildDecoderGraph(loaded.spec, loaded.weights, opts));
        }
      });
    }
  }

  for (const c of FIXTURE_CASES) {
    for (const dtype of DTYPES) {
      it(`${c.name}, ${dtype}: built to a sink = in memory`, async () => {
        const source = folderSource(fixturePath(c.folder));
        const loaded = await loadModel(source);
        const lora = c.lora ? await loadLora(folderSource(fixturePath(c.lora)), loaded.spec) : undefined;
        const opts = { lora, dtype, maxPositions: 32 };
        const want = buildDecoderGraph(loaded.spec, loaded.weights, opts);
        const opened = await openModel(source);
        // at the in-memory build's alignment and file split: the same protobuf and the same files
        const a = memorySink();
        const same64 = await buildDecoderGraphTo(
          opened.spec,
          storeWeights(opened.spec, opened.store),
          a.sink,
          {
            ...opts,
            externalAlign: 64,
            externalChunkBytes: 1 << 30,
          },
        );
        expect(Buffer.from(same64.model).equals(Buffer.from(want.model))).toBe(true);
        expect(same64.io).toEqual(want.io);
        expect(same64.externalFiles.map((f) => f.path)).toEqual(want.externalData.map((f) => f.path));
        for (const [i, f] of want.externalData.entries()) {
          expect(same64.externalFiles[i].size).toBe(f.data.byteLength);
          const got = a.files.get(f.path)!.bytes;
          expect(Buffer.from(got).equals(Buffer.from(f.data))).toBe(true);
        }
        // the file layout (page-aligned, one file): every tensor's bytes as the in-memory build's
        const b = memorySink();
        const paged = await buildDecoderGraphTo(
          opened.spec,
          storeWeights(opened.spec, opened.store),
          b.sink,
          opts,
        );
        expect(paged.io).toEqual(want.io);
        expect(paged.externalFiles.length).toBe(want.externalData.length ? 1 : 0);
        for (const t of paged.tensors) expect(t.offset % FILE_ALIGN).toBe(0);
        const pagedTensors = tensorsOf(paged, b.files);
        const wantTensors = tensorsOf(same64, a.files);
        expect([...pagedTensors.keys()]).toEqual([...wantTensors.keys()]);
        for (const [name, bytes] of wantTensors) {
          expect(Buffer.from(pagedTensors.get(name)!).equals(Buffer.from(bytes)), name).toBe(true);
        }
      });
    }
  }

  it('reads a kept tensor fresh, without counting it as progress', async () => {
    const opened = await openModel(folderSource(fixturePath('tiny-llama')));
    let calls = 0;
    const w = storeWeights(opened.spec, opened.store, { onProgress: () => calls++ });
    const a = await w.read('model.embed_tokens.weight');
    const b = await w.read('model.embed_tokens.weight');
    expect(a.data).not.toBe(b.data);
    expect(a.data).toEqual(b.data);
    expect(a.shape).toEqual([opened.spec.vocabSize, opened.spec.hiddenSize]);
    expect(calls).toBe(0);
    await expect(w.read('model.layers.99.mlp.up_proj.weight')).rejects.toThrow(/lacks/);
  });
});
