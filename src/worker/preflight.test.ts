// The worker's preflight against the Hub stand-in: what stops a load before the weights move (an
// adapter naming another base until confirmed, a model too big for the backend, a gated repo without
// a token), and that none of it fetches a base model's weights.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHubTestServer, TEST_REPOS, type HubTestServer } from '../../scripts/hub-test-server';
import { memoryDownloadCache, type DownloadCache } from '../hub/download-cache';
import { defaultSpec, type ExperimentSpec, type ModelEntry } from '../lab/spec/experiment';
import { resolveBrowserSource } from './hub-sources';
import { problemOf } from './load-problem';
import {
  confirmKey,
  modelsToCheck,
  preflightJudgeOrThrow,
  preflightOrThrow,
  preflightTarget,
} from './preflight';

let server: HubTestServer;
let cache: DownloadCache;
beforeAll(async () => {
  server = await startHubTestServer();
});
afterAll(async () => server.close());
beforeEach(() => {
  server.reset();
  cache = memoryDownloadCache();
});

const hub = (repo: string) => ({ kind: 'hub' as const, repo });

function specWith(
  models: Record<string, ModelEntry>,
  dtype: ExperimentSpec['runtime']['dtype'] = 'fp32',
): ExperimentSpec {
  const d = defaultSpec();
  return { ...d, models, runtime: { ...d.runtime, dtype } };
}

const opts = (confirmed: Set<string> = new Set()) => ({
  resolveSource: (s: Parameters<typeof resolveBrowserSource>[0]) =>
    resolveBrowserSource(s, { origin: 'http://app.invalid', endpoint: server.url, cache, prefetch: false }),
  target: { backend: 'wasm' as const },
  confirmed,
});

const weightRequests = () =>
  server.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/model.safetensors'));

async function thrown(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('preflightOrThrow', () => {
  it('an adapter that names another repo as its base waits for a confirmation, without fetching weights', async () => {
    const spec = specWith({
      base: { source: hub(TEST_REPOS.llama), role: 'base' },
      finetuned: {
        source: hub(TEST_REPOS.llama),
        adapter: hub(TEST_REPOS.mirrorOrganism),
        role: 'finetuned',
      },
    });
    const e = await thrown(preflightOrThrow(spec, opts()));
    const problem = problemOf(e);
    expect(problem).toMatchObject({
      kind: 'confirm-base',
      model: 'finetuned',
      adapter: TEST_REPOS.mirrorOrganism,
      base: TEST_REPOS.llama,
      declared: TEST_REPOS.mirror,
    });
    expect(weightRequests()).toEqual([]);
    // confirmed: it passes
    await preflightOrThrow(spec, opts(new Set([confirmKey(TEST_REPOS.mirrorOrganism, TEST_REPOS.llama)])));
    expect(weightRequests()).toEqual([]);
  });

  it('a model too big for the backend is refused with the dtype that fits, before any download', async () => {
    const spec = specWith({
      base: { source: hub(TEST_REPOS.tooBig), role: 'base' },
      finetuned: { source: hub(TEST_REPOS.llama), role: 'finetuned' },
    });
    const e = await thrown(preflightOrThrow(spec, opts()));
    // int8 before q4 on WASM: lighter than fp32 and, unlike q4 there, faster (memory.ts planMemory)
    expect(problemOf(e)).toMatchObject({ kind: 'memory', model: 'base', suggestion: 'int8' });
    expect((e as Error).message).toMatch(/does not fit in fp32 on wasm.*Choose int8/);
    expect(weightRequests()).toEqual([]);
    await preflightOrThrow(specWith(spec.models, 'int8'), opts());
    await preflightOrThrow(specWith(spec.models, 'q4'), opts());
  });

  it('a gated repo without a token keeps the Hub reason (the panel asks for a token)', async () => {
    const spec = specWith({
      base: { source: hub(TEST_REPOS.gated), role: 'base' },
      finetuned: { source: hub(TEST_REPOS.gated), adapter: hub(TEST_REPOS.lora), role: 'finetuned' },
    });
    const e = await thrown(preflightOrThrow(spec, opts()));
    expect(problemOf(e)).toEqual({ kind: 'auth', reason: 'gated' });
    expect((e as Error).message).toMatch(/is gated/);
  });

  it('an adapter whose shapes do not fit the base is an error naming the model', async () => {
    // NOTE: the llama-shaped adapter on the qwen3 fixture (head_dim 32): its shapes cannot fit.
    const onQwen = specWith({
      base: { source: hub(TEST_REPOS.qwen3), role: 'base' },
      finetuned: { source: hub(TEST_REPOS.qwen3), adapter: hub(TEST_REPOS.misfitAdapter), role: 'finetuned' },
    });
    const e = await thrown(preflightOrThrow(onQwen, opts()));
    expect((e as Error).message).toMatch(/^finetuned: /);
    expect(problemOf(e)).toBeUndefined();
    expect(weightRequests()).toEqual([]);
  });

  it('the embedded demo needs no preflight; the target follows the device and the probe', () => {
    expect(modelsToCheck(defaultSpec())).toEqual({});
    expect(preflightTarget('wasm', null)).toEqual({ backend: 'wasm' });
    expect(preflightTarget('auto', null, 2 ** 30)).toEqual({ backend: 'wasm', heapBytes: 2 ** 30 });
    expect(preflightTarget('auto', { kind: 'wasm', shaderF16: false })).toEqual({ backend: 'wasm' });
    expect(
      preflightTarget('auto', {
        kind: 'webgpu',
        shaderF16: true,
        maxBufferSize: 1e9,
        maxStorageBufferBindingSize: 5e8,
      }),
    ).toEqual({
      backend: 'webgpu',
      shaderF16: true,
      limits: { maxBufferSize: 1e9, maxStorageBufferBindingSize: 5e8 },
    });
  });
});

/** a config.json of Qwen2.5-0.5B's shape (2 GiB in fp32): two of them do not fit one WASM heap */
const QWEN05_CONFIG = JSON.stringify({
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  vocab_size: 151936,
  tie_word_embeddings: true,
  max_position_embeddings: 32768,
});

describe('preflightOrThrow: every session in one WASM heap', () => {
  it('a base + full finetune that each fit alone is refused together, with int8, before any download', async () => {
    const { memorySource } = await import('../engine/files');
    const local = (path: string) => ({ kind: 'local' as const, path });
    const spec = specWith({
      base: { source: local('base'), role: 'base' },
      finetuned: { source: local('ft'), role: 'finetuned' },
    });
    const o = {
      ...opts(),
      resolveSource: (s: { kind: string; path?: string }) =>
        Promise.resolve(memorySource({ 'config.json': QWEN05_CONFIG }, s.path ?? 'x')),
    };
    const e = await thrown(preflightOrThrow(spec, o));
    expect(problemOf(e)).toMatchObject({ kind: 'memory', model: 'base, finetuned', suggestion: 'int8' });
    expect((e as Error).message).toMatch(/2 sessions .*heap, which they share/);
    await preflightOrThrow(specWith(spec.models, 'q4'), o);
  });

  it('a separate model judge counts as one more session (fp32), the spec’s own plain model as none', async () => {
    const { memorySource } = await import('../engine/files');
    const local = (path: string) => ({ kind: 'local' as const, path });
    const read: string[] = [];
    const o = {
      ...opts(),
      resolveSource: (s: { kind: string; path?: string }) => {
        read.push(s.path ?? '?');
        return Promise.resolve(memorySource({ 'config.json': QWEN05_CONFIG }, s.path ?? 'x'));
      },
    };
    // a full pair in q4 fits one heap; a 0.5B judge in fp32 beside it too (≈ 2 GiB + 2 × 0.4 GiB)…
    const q4 = specWith(
      {
        base: { source: local('base'), role: 'base' },
        finetuned: { source: local('ft'), role: 'finetuned' },
      },
      'q4',
    );
    await preflightJudgeOrThrow(q4, local('judge'), o);
    expect(read).toContain('judge');
    // …but not beside the same pair in fp32 (each fits alone): refused, naming the judge
    const fp32 = specWith(q4.models, 'fp32');
    const e = await thrown(preflightJudgeOrThrow(fp32, local('judge'), o));
    expect(problemOf(e)).toMatchObject({ kind: 'memory' });
    expect((e as Error).message).toMatch(/3 sessions \(base .* \+ finetuned .* \+ judge .*\)/);
    // the spec's own base as the judge, in fp32, is the same session: no check, nothing read
    read.length = 0;
    await preflightJudgeOrThrow(
      specWith({ base: fp32.models.base, finetuned: fp32.models.base }),
      local('base'),
      o,
    );
    await preflightJudgeOrThrow(fp32, { kind: 'demo', name: 'demo-base' }, o);
    expect(read).toEqual([]);
  });
});
