// reference.ts against golden vectors from an independent float64 PyTorch forward
// (scripts/golden/torch_reference.py → fixtures/golden/*.json) on the fixture models.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadLora } from './lora';
import { referenceForward64, type Tensor64 } from './reference';
import { folderSource } from '../hub/folder-files-node';
import type { ForwardInput, PatchSet } from './types';
import { loadModel } from './weights';

interface GoldenTensor {
  shape: number[];
  data: number[];
}

interface Golden {
  model: string;
  adapter: string | null;
  /** fixture folder → sha256 of its config/weight files when the golden was written */
  digest: Record<string, string>;
  input: {
    inputIds: number[][];
    attentionMask?: number[][];
    positionIds?: number[][];
    loraScale?: number[];
    taps?: { resid?: number[]; kv?: number[] };
    patches?: {
      resid?: Record<string, { mask: number[]; value: number[] }>;
      kv?: Record<string, { mask: number[]; k: number[]; v: number[] }>;
    };
  };
  logits: GoldenTensor;
  resid: Record<string, GoldenTensor>;
  k: Record<string, GoldenTensor>;
  v: Record<string, GoldenTensor>;
  /** 'all': written with every digit (repr), checked to 1e-9 relative; else 10 digits, 1e-5 absolute */
  digits?: 'all';
}

const FIXTURES = new URL('../../fixtures/', import.meta.url).pathname;
const GOLDEN = `${FIXTURES}golden/`;
const files = existsSync(GOLDEN) ? readdirSync(GOLDEN).filter((f) => f.endsWith('.json')) : [];

/** Same digest as folder_digest() in the Python script. */
function folderDigest(folder: string): string {
  const h = createHash('sha256');
  for (const name of readdirSync(folder).sort()) {
    if ((name.endsWith('.json') && !name.startsWith('tokenizer')) || name.endsWith('.safetensors')) {
      h.update(name);
      h.update(readFileSync(`${folder}/${name}`));
    }
  }
  return h.digest('hex');
}

/** Worst |got − want| (absolute), or relative to the tensor's largest |want| when `relative`. */
function expectClose(got: Tensor64 | undefined, want: GoldenTensor, tol: number, relative = false): number {
  expect(got?.shape).toEqual(want.shape);
  let max = 0;
  let scale = 0;
  want.data.forEach((w, i) => {
    max = Math.max(max, Math.abs((got as Tensor64).data[i] - w));
    scale = Math.max(scale, Math.abs(w));
  });
  const err = relative ? max / scale : max;
  expect(err).toBeLessThanOrEqual(tol);
  return err;
}

function toInput(g: Golden['input']): ForwardInput {
  const f32 = (a: number[]): Float32Array => Float32Array.from(a);
  const patches: PatchSet = {
    resid: new Map(
      Object.entries(g.patches?.resid ?? {}).map(([k, p]) => [
        Number(k),
        { mask: f32(p.mask), value: f32(p.value) },
      ]),
    ),
    kv: new Map(
      Object.entries(g.patches?.kv ?? {}).map(([k, p]) => [
        Number(k),
        { mask: f32(p.mask), k: f32(p.k), v: f32(p.v) },
      ]),
    ),
  };
  return {
    inputIds: g.inputIds,
    attentionMask: g.attentionMask,
    positionIds: g.positionIds,
    loraScale: g.loraScale,
    patches,
    taps: { resid: g.taps?.resid, kv: g.taps?.kv },
  };
}

describe('reference.ts vs PyTorch goldens', () => {
  it('has the committed golden vectors', () => expect(files.length).toBeGreaterThan(0));
  it.each(files)('%s', async (file) => {
    const g = JSON.parse(readFileSync(GOLDEN + file, 'utf8')) as Golden;
    for (const [folder, digest] of Object.entries(g.digest)) {
      // a mismatch means the fixtures were regenerated: rerun scripts/golden/torch_reference.py
      expect(folderDigest(FIXTURES + folder), `fixtures/${folder} changed since ${file} was written`).toBe(
        digest,
      );
    }
    const { spec, weights } = await loadModel(folderSource(FIXTURES + g.model));
    const lora = g.adapter ? await loadLora(folderSource(FIXTURES + g.adapter), spec) : undefined;
    const r = referenceForward64(spec, weights, toInput(g.input), { lora });
    // full-precision goldens (Gemma; patch values exact in fp32): 1e-9 relative; the others 1e-5
    const full = g.digits === 'all';
    const tol = full ? 1e-9 : 1e-5;
    let worst = expectClose(r.logits, g.logits, tol, full);
    for (const [site, t] of Object.entries(g.resid))
      worst = Math.max(worst, expectClose(r.resid.get(Number(site)), t, tol, full));
    for (const [layer, t] of Object.entries(g.k))
      worst = Math.max(worst, expectClose(r.k.get(Number(layer)), t, tol, full));
    for (const [layer, t] of Object.entries(g.v))
      worst = Math.max(worst, expectClose(r.v.get(Number(layer)), t, tol, full));
    console.log(`${file}: worst ${full ? 'relative' : 'absolute'} error ${worst.toExponential(2)}`);
  });
});
