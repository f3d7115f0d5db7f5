// The decode loop on the tiny-llama fixture (onnxruntime-node; the forward itself is tested on both
// backends elsewhere): greedy against the reference, seeded sampling, stop tokens, length, abort,
// streaming, batched rows with left padding, patched prefill and a shared prefix cache.

import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from './generate';
import { loadLora } from './lora';
import { EngineModel } from './model';
import { referenceForward } from './reference';
import { argmax } from './sampling';
import { configureOrt } from './session';
import { folderSource } from '../hub/folder-files-node';
import type { ArchSpec, LoraAdapter, PatchSet, WeightMap } from './types';
import { loadModel } from './weights';

configureOrt({ numThreads: 1 });

const fixture = (name: string): string => fileURLToPath(new URL(`../../fixtures/${name}`, import.meta.url));

/** Greedy continuation by the reference, one full run per token (patch given for the prompt part). */
function referenceGreedy(
  spec: ArchSpec,
  weights: WeightMap,
  prompt: number[],
  n: number,
  opts: { lora?: LoraAdapter; patch?: (len: number) => PatchSet } = {},
): number[] {
  const seq = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = referenceForward(
      spec,
      weights,
      { inputIds: [seq], patches: opts.patch?.(seq.length), taps: { logits: 'last' } },
      { lora: opts.lora },
    );
    const tok = argmax(r.logits.data);
    out.push(tok);
    seq.push(tok);
  }
  return out;
}

describe('generate', () => {
  let spec: ArchSpec;
  let weights: WeightMap;
  let lora: LoraAdapter;
  let model: EngineModel;
  const prompt = [505, 507, 17, 300, 42, 508, 9, 88];

  beforeAll(async () => {
    ({ spec, weights } = await loadModel(folderSource(fixture('tiny-llama'))));
    lora = await loadLora(folderSource(fixture('tiny-llama-lora')), spec);
    model = await EngineModel.create(spec, weights, { backend: 'node-cpu', lora });
  });
  afterAll(async () => {
    await model.dispose();
  });

  it('greedy decoding follows the reference and is deterministic', async () => {
    const opts = { inputIds: [prompt], maxNewTokens: 10, stopTokens: [] };
    const a = await generate(model, opts);
    const b = await generate(model, opts);
    expect(a.rows[0].tokens).toHaveLength(10);
    expect(a.rows[0].finishReason).toBe('length');
    expect(b.rows[0].tokens).toEqual(a.rows[0].tokens);
    expect(a.rows[0].tokens).toEqual(referenceGreedy(spec, weights, prompt, 10, { lora }));
  });

  it('the same seed samples the same tokens; another seed others', async () => {
    const run = async (seed: number): Promise<number[]> =>
      (
        await generate(model, {
          inputIds: [prompt],
          maxNewTokens: 12,
          stopTokens: [],
          sampling: { temperature: 1.5, topK: 100, topP: 0.98, seed },
        })
      ).rows[0].tokens;
    const a = await run(1);
    expect(await run(1)).toEqual(a);
    expect(await run(2)).not.toEqual(a);
  });

  it('stops at a stop token, without returning it', async () => {
    const free = (await generate(model, { inputIds: [prompt], maxNewTokens: 8, stopTokens: [] })).rows[0]
      .tokens;
    const stopAt = free.indexOf(free[3]);
    const r = await generate(model, { inputIds: [prompt], maxNewTokens: 8, stopTokens: [free[3]] });
    expect(r.rows[0]).toEqual({ tokens: free.slice(0, stopAt), finishReason: 'stop', stopToken: free[3] });
  });

  it('streams every token through onToken, in order', async () => {
    const seen: [number, number, number][] = [];
    const r = await generate(model, {
      inputIds: [prompt, prompt.slice().reverse()],
      maxNewTokens: 5,
      stopTokens: [],
      onToken: (token, row, step) => seen.push([token, row, step]),
    });
    for (const b of [0, 1]) {
      expect(seen.filter(([, row]) => row === b).map(([t]) => t)).toEqual(r.rows[b].tokens);
      expect(seen.filter(([, row]) => row === b).map(([, , s]) => s)).toEqual([0, 1, 2, 3, 4]);
    }
  });

  it('stops when the signal aborts, keeping what was generated', async () => {
    const ctl = new AbortController();
    const r = await generate(model, {
      inputIds: [prompt],
      maxNewTokens: 50,
      stopTokens: [],
      signal: ctl.signal,
      onToken: (_t, _row, step) => {
        if (step === 2) ctl.abort();
      },
    });
    expect(r.rows[0].tokens).toHaveLength(3);
    expect(r.rows[0].finishReason).toBe('aborted');
    const before = new AbortController();
    before.abort();
    const none = await generate(model, { inputIds: [prompt], maxNewTokens: 5, signal: before.signal });
    expect(none.rows[0]).toEqual({ tokens: [], finishReason: 'aborted' });
  });

  it('B left-padded rows, each with its own dose and stop, equal B separate runs', async () => {
    const prompts = [prompt.slice(2), prompt, prompt.slice().reverse()];
    const doses = [1, 0, 0.5];
    const T = 8;
    const padded = prompts.map((p) => [...new Array<number>(T - p.length).fill(0), ...p]);
    const mask = prompts.map((p) => [...new Array<number>(T - p.length).fill(0), ...p.map(() => 1)]);
    const singles = [];
    for (let b = 0; b < 3; b++) {
      singles.push(
        (
          await generate(model, {
            inputIds: [prompts[b]],
            loraScale: [doses[b]],
            maxNewTokens: 7,
            stopTokens: [],
          })
        ).rows[0].tokens,
      );
    }
    // give row 1 a stop token it meets early; the others run on
    const stop = singles[1][2];
    const batched = await generate(model, {
      inputIds: padded,
      attentionMask: mask,
      loraScale: doses,
      maxNewTokens: 7,
      stopTokens: [stop],
    });
    for (let b = 0; b < 3; b++) {
      const s = singles[b];
      const cut = s.indexOf(stop);
      expect(batched.rows[b].tokens, `row ${b}`).toEqual(cut < 0 ? s : s.slice(0, cut));
    }
    expect(batched.rows[1].finishReason).toBe('stop');
  });

  it('patches apply at prefill and live on in the cache (reference with the patch over the prompt)', async () => {
    const L = spec.numLayers;
    const kvDim = spec.numKvHeads * spec.headDim;
    const donor = referenceForward(spec, weights, { inputIds: [prompt], taps: { kv: [0, 1].slice(0, L) } });
    const prefix = 5;
    const patch = (len: number): PatchSet => {
      const mask = new Float32Array(len);
      mask.fill(1, 0, prefix);
      const fit = (x: Float32Array): Float32Array => {
        const out = new Float32Array(len * kvDim);
        out.set(x.subarray(0, prefix * kvDim));
        return out;
      };
      return {
        kv: new Map(
          [...donor.k.keys()].map((l) => [
            l,
            { mask, k: fit(donor.k.get(l)!.data), v: fit(donor.v.get(l)!.data) },
          ]),
        ),
      };
    };
    const r = await generate(model, {
      inputIds: [prompt],
      patches: patch(prompt.length),
      maxNewTokens: 8,
      stopTokens: [],
    });
    expect(r.rows[0].tokens).toEqual(referenceGreedy(spec, weights, prompt, 8, { lora, patch }));
  });

  it('continues a shared one-row prefix cache for every row, without disposing it', async () => {
    const pre = await model.forward({ inputIds: [prompt.slice(0, 4)] });
    const rests = [prompt.slice(4), prompt.slice(4).reverse()];
    const r = await generate(model, { inputIds: rests, past: pre.present, maxNewTokens: 6, stopTokens: [] });
    expect(pre.present.isDisposed).toBe(false);
    for (let b = 0; b < 2; b++) {
      const whole = await generate(model, {
        inputIds: [[...prompt.slice(0, 4), ...rests[b]]],
        maxNewTokens: 6,
        stopTokens: [],
      });
      expect(r.rows[b].tokens).toEqual(whole.rows[0].tokens);
    }
    pre.present.dispose();
  });

  it('keepCache returns the final cache: prompt plus all but the last token', async () => {
    const r = await generate(model, { inputIds: [prompt], maxNewTokens: 4, stopTokens: [], keepCache: true });
    expect(r.cache?.length).toBe(prompt.length + 3);
    r.cache?.dispose();
  });
});
