// Memory estimates against hand-computed numbers, and the refusal messages that suggest q4.
import { describe, expect, it } from 'vitest';
import {
  estimateMemory,
  planMemory,
  planSessions,
  q4Bytes,
  WEBGPU_DEFAULT_LIMITS,
  WEBGPU_WEIGHT_BLOCK_BYTES,
} from './memory';
import { tinySpec } from './tiny-model';
import type { ArchSpec } from './types';

/** Qwen2.5-0.5B-Instruct's config.json, as an ArchSpec. */
const qwen05: ArchSpec = tinySpec({
  modelType: 'qwen2',
  vocabSize: 151936,
  hiddenSize: 896,
  intermediateSize: 4864,
  numLayers: 24,
  numHeads: 14,
  numKvHeads: 2,
  headDim: 64,
  tieWordEmbeddings: true,
  qkvBias: true,
  maxPositionEmbeddings: 32768,
});
// NOTE: an MLP matrix of 100,000 × 896 fp32 (342 MiB) is one buffer on every backend (only the
// embedding and an untied head are built as row blocks), so this shape is too big for WebGPU in fp32
const wideMlp: ArchSpec = { ...qwen05, intermediateSize: 100_000 };
const llama1b: ArchSpec = tinySpec({
  modelType: 'llama',
  vocabSize: 128256,
  hiddenSize: 2048,
  intermediateSize: 8192,
  numLayers: 16,
  numHeads: 32,
  numKvHeads: 8,
  headDim: 64,
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 131072,
});

describe('estimateMemory', () => {
  it('counts Qwen2.5-0.5B parameters like the model card (~494M)', () => {
    const e = estimateMemory(qwen05, { dtype: 'fp32', contextLength: 1024 });
    expect(e.parameters).toBe(494_032_768);
    expect(e.weightsBytes).toBe(494_032_768 * 4);
    expect(e.largestBuffer).toEqual({ name: 'model.embed_tokens.weight', bytes: 151936 * 896 * 4 });
    // K and V: 2 · layers · kvHeads · slots · headDim · 4 bytes; the append cache's buffer has up to 64
    // spare slots (1024 → 1088), the concat cache holds a step's past and present together
    expect(e.kvBytes).toBe(2 * 24 * 2 * 1088 * 64 * 4);
    const concat = estimateMemory(qwen05, { dtype: 'fp32', contextLength: 1024, kvCache: 'concat' });
    expect(concat.kvBytes).toBe(2 * 24 * 2 * (1023 + 1024) * 64 * 4);
    expect(e.loaderBytes).toBe(494_032_768 * 4);
  });

  it('fp16 loads as fp32; q4 packs every matrix at 4 bits + fp32 scales + zero points', () => {
    const f32 = estimateMemory(qwen05, { dtype: 'fp32', contextLength: 1024 });
    const f16 = estimateMemory(qwen05, { dtype: 'fp16', contextLength: 1024 });
    expect(f16.weightsBytes).toBe(f32.weightsBytes);
    expect(f16.kvBytes).toBe(f32.kvBytes);
    const q4 = estimateMemory(qwen05, { dtype: 'q4', contextLength: 1024 });
    const emb = q4Bytes(151936, 896, 4, false);
    expect(emb).toEqual({ codes: 151936 * 28 * 16, scales: 151936 * 28 * 4, zeroPoints: 0 });
    expect(q4Bytes(10, 100, 2, true)).toEqual({ codes: 10 * 4 * 16, scales: 10 * 4 * 2, zeroPoints: 10 * 2 });
    // per layer: q, o [896, 896]; k, v [128, 896]; gate, up [4864, 896]; down [896, 4864]
    const proj = (n: number, k: number) => {
      const b = q4Bytes(n, k, 4, true);
      return b.codes + b.scales + b.zeroPoints;
    };
    const perLayer = 2 * proj(896, 896) + 2 * proj(128, 896) + 2 * proj(4864, 896) + proj(896, 4864);
    // tied: GatherBlockQuantized's scales and zero points (one per byte), then the head's MatMulNBits
    // scales and packed zero points on the same codes
    const embedding = emb.codes + emb.scales + 151936 * 28 + emb.scales + 151936 * 14;
    // norms (2·896 per layer + final) and q/k/v biases (896 + 2·128 per layer), fp32
    const vectors = (24 * (2 * 896 + 896 + 256) + 896) * 4;
    expect(q4.weightsBytes).toBe(embedding + 24 * perLayer + vectors);
    expect(q4.largestBuffer).toEqual({ name: 'model.embed_tokens.weight', bytes: emb.codes });
    expect(q4.kvBytes).toBe(f32.kvBytes);
    expect(q4.weightsBytes).toBeLessThan(f32.weightsBytes / 5);
  });

  it('int8 stores every matrix as one byte per weight + an fp32 scale per row (tied head shares)', () => {
    const f32 = estimateMemory(qwen05, { dtype: 'fp32', contextLength: 1024 });
    const i8 = estimateMemory(qwen05, { dtype: 'int8', contextLength: 1024 });
    const proj = (n: number, k: number) => n * k + n * 4;
    const perLayer = 2 * proj(896, 896) + 2 * proj(128, 896) + 2 * proj(4864, 896) + proj(896, 4864);
    const vectors = (24 * (2 * 896 + 896 + 256) + 896) * 4;
    const zeroPoints = 151936 + 896 + 128 + 4864; // one uint8 [N] per distinct output width
    expect(i8.weightsBytes).toBe(proj(151936, 896) + 24 * perLayer + vectors + zeroPoints);
    expect(i8.largestBuffer).toEqual({ name: 'model.embed_tokens.weight', bytes: 151936 * 896 });
    expect(i8.kvBytes).toBe(f32.kvBytes);
    expect(i8.weightsBytes).toBeLessThan(f32.weightsBytes / 3.9);
    // an untied head is a second int8 matrix
    const untied = estimateMemory(
      { ...qwen05, tieWordEmbeddings: false },
      { dtype: 'int8', contextLength: 1024 },
    );
    expect(untied.weightsBytes - i8.weightsBytes).toBe(proj(151936, 896));
  });

  it('q4: an untied lm_head is 4-bit too; an embedding of partial blocks stays fp32', () => {
    const untied = { ...qwen05, tieWordEmbeddings: false };
    const a = estimateMemory(untied, { dtype: 'q4', contextLength: 256 });
    const b = estimateMemory(qwen05, { dtype: 'q4', contextLength: 256 });
    // the head gets its own codes; the embedding then needs no MatMulNBits scales or zero points
    const head = q4Bytes(151936, 896, 4, true);
    expect(a.weightsBytes - b.weightsBytes).toBe(head.codes);
    const odd = tinySpec({
      vocabSize: 100,
      hiddenSize: 48,
      intermediateSize: 64,
      numHeads: 3,
      numKvHeads: 1,
      headDim: 16,
    });
    const e = estimateMemory(odd, { dtype: 'q4', contextLength: 16 });
    expect(e.topBuffers.find((x) => x.name === 'model.embed_tokens.weight')?.bytes).toBe(100 * 48 * 4);
  });

  it('a full-finetune pair holds two weight copies, LoRA adds its branches once', () => {
    const one = estimateMemory(qwen05, { dtype: 'q4', contextLength: 256 });
    const two = estimateMemory(qwen05, { dtype: 'q4', contextLength: 256, weightCopies: 2 });
    expect(two.weightsBytes).toBe(2 * one.weightsBytes);
    const lora = estimateMemory(qwen05, { dtype: 'q4', contextLength: 256, loraParams: 1000 });
    expect(lora.weightsBytes).toBe(one.weightsBytes + 4000); // LoRA stays fp32
  });

  it('batch and the positions asked for size the logits buffer', () => {
    const last = estimateMemory(qwen05, { dtype: 'q4', contextLength: 512, batch: 8, prefillTokens: 100 });
    expect(last.topBuffers.find((b) => b.name === 'logits')?.bytes).toBe(8 * 151936 * 4);
    const all = estimateMemory(qwen05, {
      dtype: 'q4',
      contextLength: 512,
      batch: 8,
      prefillTokens: 100,
      logitsPositions: 100,
    });
    expect(all.topBuffers.find((b) => b.name === 'logits')?.bytes).toBe(8 * 100 * 151936 * 4);
  });
});

describe('planMemory', () => {
  it('refuses fp32 on a default-limits GPU, naming the buffer and the limit, and suggests q4', () => {
    const p = planMemory(
      wideMlp,
      { dtype: 'fp32', contextLength: 1024 },
      { backend: 'webgpu', limits: WEBGPU_DEFAULT_LIMITS },
      'a wide-MLP model',
    );
    expect(p.ok).toBe(false);
    expect(p.suggestion).toBe('q4');
    expect(p.message).toContain('a wide-MLP model does not fit in fp32 on webgpu');
    expect(p.message).toMatch(/mlp\.(gate|up|down)_proj\.weight needs one 342 MiB buffer/);
    expect(p.message).toContain('maxStorageBufferBindingSize');
    expect(p.message).toContain('Choose q4');
  });

  it('on WebGPU an fp32 embedding counts as row blocks that bind on any adapter (0.5B and 1B shapes fit)', () => {
    for (const spec of [qwen05, llama1b]) {
      const whole = estimateMemory(spec, { dtype: 'fp32', contextLength: 1024 });
      expect(whole.largestBuffer.name).toBe('model.embed_tokens.weight');
      expect(whole.largestBuffer.bytes).toBe(spec.vocabSize * spec.hiddenSize * 4);
      const p = planMemory(
        spec,
        { dtype: 'fp32', contextLength: 1024 },
        { backend: 'webgpu', limits: WEBGPU_DEFAULT_LIMITS },
      );
      expect(p.ok).toBe(true);
      expect(p.estimate.largestBuffer.bytes).toBeLessThanOrEqual(WEBGPU_WEIGHT_BLOCK_BYTES);
      // the same bytes in all: blocks, not copies
      expect(p.estimate.weightsBytes).toBe(whole.weightsBytes);
      const blocks = p.estimate.topBuffers.filter((b) =>
        b.name.startsWith('model.embed_tokens.weight (rows'),
      );
      expect(blocks.length).toBeGreaterThan(0);
    }
    // WASM has one heap, no binding limit: one buffer there
    expect(
      planMemory(qwen05, { dtype: 'fp32', contextLength: 1024 }, { backend: 'wasm' }).estimate.largestBuffer
        .name,
    ).toBe('model.embed_tokens.weight');
  });

  it('never suggests fp16 (it loads as fp32); an fp16 request that does not fit is offered q4', () => {
    const mid = { maxBufferSize: 300 * 2 ** 20, maxStorageBufferBindingSize: 300 * 2 ** 20 };
    const p = planMemory(wideMlp, { dtype: 'fp32', contextLength: 1024 }, { backend: 'webgpu', limits: mid });
    expect(p.suggestion).toBe('q4');
    const p16 = planMemory(
      wideMlp,
      { dtype: 'fp16', contextLength: 1024 },
      { backend: 'webgpu', limits: mid },
    );
    expect(p16.ok).toBe(false);
    expect(p16.suggestion).toBe('q4');
  });

  it('the fp16 graph (WebGPU with shader-f16) counts every matrix at 2 bytes, norms and biases at 4', () => {
    const f32 = estimateMemory(qwen05, { dtype: 'fp32', contextLength: 1024 });
    const f16 = estimateMemory(qwen05, { dtype: 'fp16', contextLength: 1024, fp16Graph: true });
    const vectors = (24 * (2 * 896 + 896 + 256) + 896) * 4;
    expect(f16.weightsBytes).toBe((f32.weightsBytes - vectors) / 2 + vectors);
    // fp32 with fp16Graph set is still fp32
    expect(estimateMemory(qwen05, { dtype: 'fp32', contextLength: 1024, fp16Graph: true }).weightsBytes).toBe(
      f32.weightsBytes,
    );
    // on such an adapter the embedding blocks are half the size, so an fp16 request that fits only there
    const budget = Math.ceil(f16.totalBytes * 1.1);
    const big = { maxBufferSize: 2 ** 31, maxStorageBufferBindingSize: 2 ** 31 };
    const at = (shaderF16: boolean) =>
      planMemory(
        qwen05,
        { dtype: 'fp16', contextLength: 1024 },
        { backend: 'webgpu', limits: big, budgetBytes: budget, shaderF16 },
      );
    expect(at(true).ok).toBe(true);
    expect(at(false).ok).toBe(false);
    expect(at(true).estimate.largestBuffer.bytes).toBeLessThanOrEqual(128 * 2 ** 20);
  });

  it('a total budget counts too; nothing fitting says so', () => {
    const big = { maxBufferSize: 2 ** 31, maxStorageBufferBindingSize: 2 ** 31 };
    const p = planMemory(
      qwen05,
      { dtype: 'q4', contextLength: 4096, batch: 4 },
      { backend: 'webgpu', limits: big, budgetBytes: 100 * 2 ** 20 },
    );
    expect(p.ok).toBe(false);
    expect(p.suggestion).toBeNull();
    expect(p.message).toMatch(/more than the 100 MiB available/);
    expect(p.message).toMatch(
      /use a smaller batch; shorten the context; try the WASM backend or a smaller model/,
    );
  });

  it('WASM: a Llama-3.2-1B-shaped pair fits as int8 or q4, not as fp32 (LoRA pair and full-finetune pair)', () => {
    // r 32 on all seven projections: per layer r·(in + out) each
    const perLayer = 32 * (2 * (2048 + 2048) + 2 * (2048 + 512) + 2 * (2048 + 8192) + (8192 + 2048));
    const loraParams = 16 * perLayer;
    const wasm = { backend: 'wasm' } as const;
    for (const pair of [{ loraParams }, { weightCopies: 2 }]) {
      const opts = { contextLength: 1024, ...pair };
      const f32 = planMemory(llama1b, { dtype: 'fp32', ...opts }, wasm);
      expect(f32.ok).toBe(false);
      expect(f32.suggestion).toBe('int8');
      expect(planMemory(llama1b, { dtype: 'int8', ...opts }, wasm).ok).toBe(true);
      expect(planMemory(llama1b, { dtype: 'q4', ...opts }, wasm).ok).toBe(true);
    }
    // the int8 embedding (one byte per weight, shared with the tied head) is its biggest buffer
    const e = estimateMemory(llama1b, { dtype: 'int8', contextLength: 1024 });
    expect(e.largestBuffer).toEqual({ name: 'model.embed_tokens.weight', bytes: 128256 * 2048 });
  });

  it('WASM: the 4 GiB heap (a 3B model fits in int8 and q4, an 8B one not even in q4)', () => {
    const llama3b = tinySpec({
      vocabSize: 128256,
      hiddenSize: 3072,
      intermediateSize: 8192,
      numLayers: 28,
      numHeads: 24,
      numKvHeads: 8,
      headDim: 128,
      tieWordEmbeddings: true,
    });
    const p = planMemory(llama3b, { dtype: 'fp16', contextLength: 1024 }, { backend: 'wasm' });
    expect(p.ok).toBe(false);
    // int8 is tried first on WASM (lighter than fp32, and faster than q4 there)
    expect(p.suggestion).toBe('int8');
    expect(p.message).toMatch(/Choose int8 \(8-bit weights\)/);
    expect(planMemory(llama3b, { dtype: 'q4', contextLength: 1024 }, { backend: 'wasm' }).ok).toBe(true);
    expect(p.message).toMatch(/WebAssembly's 4.0 GiB heap/);
    const llama8b = tinySpec({
      vocabSize: 128256,
      hiddenSize: 4096,
      intermediateSize: 14336,
      numLayers: 32,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 128,
    });
    const p8 = planMemory(llama8b, { dtype: 'fp16', contextLength: 1024 }, { backend: 'wasm' });
    expect(p8.suggestion).toBeNull();
    expect(p8.message).toMatch(/even q4 does not fit; shorten the context; use a smaller model/);
  });
});

describe('planSessions: every session of a spec at once', () => {
  const ctx = { dtype: 'fp32' as const, contextLength: 1024 };
  const lora = 17_596_416; // r 32 on all seven projections of Qwen2.5-0.5B

  it('a base and its full finetune in fp32 do not fit one WASM heap together (each does alone); int8 does', () => {
    expect(planMemory(qwen05, ctx, { backend: 'wasm' }).ok).toBe(true);
    const pair = [
      { label: 'base', spec: qwen05 },
      { label: 'finetuned', spec: qwen05 },
    ];
    const p = planSessions(pair, ctx, { backend: 'wasm' });
    expect(p.ok).toBe(false);
    expect(p.suggestion).toBe('int8');
    expect(p.totalBytes).toBe(2 * estimateMemory(qwen05, ctx).totalBytes);
    expect(p.message).toMatch(/2 sessions \(base .* \+ finetuned .*\).*heap, which they share.*Choose int8/);
    expect(planSessions(pair, { ...ctx, dtype: 'int8' }, { backend: 'wasm' }).ok).toBe(true);
    expect(planSessions(pair, { ...ctx, dtype: 'q4' }, { backend: 'wasm' }).ok).toBe(true);
    // WebGPU has no int8 kernel: there the lighter choice is q4
    const wide = pair.map((s) => ({ ...s, spec: wideMlp }));
    const gpu = planSessions(wide, ctx, { backend: 'webgpu', limits: WEBGPU_DEFAULT_LIMITS });
    expect(gpu.suggestion).toBe('q4');
  });

  it('a LoRA finetune rides on its base: one session fits; a judge of the same size on top does not', () => {
    const one = [{ label: 'base + finetuned', spec: qwen05, loraParams: lora }];
    expect(planSessions(one, ctx, { backend: 'wasm' }).ok).toBe(true);
    const withJudge = planSessions([...one, { label: 'judge', spec: qwen05 }], ctx, { backend: 'wasm' });
    expect(withJudge.ok).toBe(false);
    expect(withJudge.message).toMatch(/base \+ finetuned .* \+ judge/);
  });

  it('a smaller WASM heap (heapBytes) is the limit, for one session and for several, and says so', () => {
    const fp32 = estimateMemory(qwen05, ctx);
    const int8 = estimateMemory(qwen05, { ...ctx, dtype: 'int8' });
    // between one int8 session and one fp32 session: fp32 refused, int8 offered
    const heapBytes = Math.round((fp32.totalBytes + int8.totalBytes) / 2);
    const one = planMemory(qwen05, ctx, { backend: 'wasm', heapBytes });
    expect(one.ok).toBe(false);
    expect(one.suggestion).toBe('int8');
    expect(one.message).toMatch(/WebAssembly heap this page was given/);
    expect(planMemory(qwen05, { ...ctx, dtype: 'int8' }, { backend: 'wasm', heapBytes }).ok).toBe(true);
    // the pair: int8 totals and the second session's staging must fit the smaller heap
    const pair = [
      { label: 'base', spec: qwen05 },
      { label: 'finetuned', spec: qwen05 },
    ];
    const pairHeap = 2 * int8.totalBytes + int8.weightsBytes + 1;
    const p = planSessions(pair, ctx, { backend: 'wasm', heapBytes: pairHeap });
    expect(p.suggestion).toBe('int8');
    expect(planSessions(pair, { ...ctx, dtype: 'int8' }, { backend: 'wasm', heapBytes: pairHeap }).ok).toBe(
      true,
    );
    expect(
      planSessions(pair, { ...ctx, dtype: 'int8' }, { backend: 'wasm', heapBytes: pairHeap - 2 }).ok,
    ).toBe(false);
  });

  it('on onnxruntime-node the budget is the machine; beyond q4 it names what else would fit', () => {
    const pair = [
      { label: 'a', spec: qwen05 },
      { label: 'b', spec: qwen05 },
    ];
    expect(planSessions(pair, ctx, { backend: 'node', budgetBytes: 16 * 2 ** 30 }).ok).toBe(true);
    const tight = planSessions(pair, ctx, { backend: 'node', budgetBytes: 2 ** 29 });
    expect(tight.ok).toBe(false);
    expect(tight.suggestion).toBeNull();
    expect(tight.message).toMatch(/even int8 or q4 does not fit.*LoRA adapter/);
  });
});
