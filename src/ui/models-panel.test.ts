// The models panel's pure parts: building a models section from typed Hub ids / URLs, the demo
// finetune choice, progress in words, folding progress events into a model's load, picked folders.
import { describe, expect, it } from 'vitest';
import { demoFinetuneOf, demoModels } from './components/DemoModelPicker';
import { buildModels } from './components/HubModelForm';
import { describeProgress, withBase } from './components/LoadStatus';
import { folderFromInput, folderKind } from './local-files';
import { mergeLoad } from './session';
import { defaultSpec, parseSpec } from '../lab/spec/experiment';

describe('buildModels', () => {
  it('a base and an adapter: the finetune is the base with the adapter', () => {
    expect(buildModels('hub', 'Qwen/Qwen2.5-0.5B-Instruct', '', 'org/adapter@v2')).toEqual({
      base: { source: { kind: 'hub', repo: 'Qwen/Qwen2.5-0.5B-Instruct' }, role: 'base' },
      finetuned: {
        source: { kind: 'hub', repo: 'Qwen/Qwen2.5-0.5B-Instruct' },
        adapter: { kind: 'hub', repo: 'org/adapter', revision: 'v2' },
        role: 'finetuned',
      },
    });
  });

  it('a full finetune; URLs; and what is refused', () => {
    const m = buildModels('url', 'http://127.0.0.1:1/a/b', 'http://127.0.0.1:1/a/c', '');
    expect(m).toMatchObject({ finetuned: { source: { kind: 'url', url: 'http://127.0.0.1:1/a/c' } } });
    expect(parseSpec({ ...defaultSpec(), models: m }).ok).toBe(true);
    expect(buildModels('hub', 'not a repo', '', 'a/b')).toMatch(/^Base: expected a Hub id/);
    expect(buildModels('hub', 'a/b', '', '')).toMatch(/finetuned model or a LoRA adapter/);
    expect(buildModels('url', 'ftp://x/y', '', 'http://h/a')).toMatch(/^Base: expected an http/);
  });
});

describe('demo models', () => {
  it('each finetune round-trips; the LoRA one is an adapter on the base', () => {
    for (const name of ['demo-finetuned', 'demo-treft', 'demo-interleave', 'demo-lora'] as const) {
      const models = demoModels(name);
      expect(demoFinetuneOf(models)).toBe(name);
      expect(parseSpec({ ...defaultSpec(), models }).ok).toBe(true);
    }
    expect(demoModels('demo-lora').finetuned).toEqual({
      source: { kind: 'demo', name: 'demo-base' },
      adapter: { kind: 'demo', name: 'demo-lora' },
      role: 'finetuned',
    });
    expect(demoFinetuneOf({ base: { source: { kind: 'hub', repo: 'a/b' } } })).toBeNull();
  });

  it('the Qwen3-template finetune comes with its own base; a mismatched pair is not a demo choice', () => {
    const models = demoModels('demo-qwen3-finetuned');
    expect(models.base).toEqual({ source: { kind: 'demo', name: 'demo-qwen3-base' }, role: 'base' });
    expect(demoFinetuneOf(models)).toBe('demo-qwen3-finetuned');
    expect(parseSpec({ ...defaultSpec(), models }).ok).toBe(true);
    // the Qwen3 finetune against the Llama-template base (different tokenizers) is no demo pair
    expect(demoFinetuneOf({ ...models, base: demoModels('demo-finetuned').base })).toBeNull();
    expect(demoFinetuneOf({ ...demoModels('demo-finetuned'), base: models.base })).toBeNull();
  });
});

describe('load progress', () => {
  const dl = { stage: 'download' as const, model: 'o/r', file: 'model.safetensors' };
  it('in words: bytes, rate, time left; or from cache', () => {
    expect(
      describeProgress({ ...dl, loaded: 1024, total: 4096, rate: 2048, etaSeconds: 1.5, cached: false }),
    ).toBe('model.safetensors · 1.0 KiB / 4.0 KiB · 2.0 KiB/s · about 2 s left');
    expect(describeProgress({ ...dl, loaded: 4096, total: 4096, rate: 0, etaSeconds: 0, cached: true })).toBe(
      'model.safetensors · 4.0 KiB / 4.0 KiB · from cache',
    );
    expect(describeProgress({ stage: 'preflight', model: 'base', loaded: 0, total: 1 })).toBe(
      'checking configs',
    );
  });

  it('a load that downloaded anything stays "downloaded" though it ends on cache reads', () => {
    let l = mergeLoad(undefined, { ...dl, loaded: 10, total: 100, cached: false });
    l = mergeLoad(l, { ...dl, file: 'tokenizer.json', loaded: 5, total: 5, cached: true });
    expect(l).toMatchObject({ fetched: true, bytes: 100, file: 'tokenizer.json' });
    const c = mergeLoad(undefined, { ...dl, loaded: 100, total: 100, cached: true });
    expect(c).toMatchObject({ fetched: false, bytes: 100 });
  });

  it('the browser refusing to cache a download stays on the row until the load ends', () => {
    const words =
      'not cached: this browser refused to store 988 MB (private window or no space); the next visit downloads again';
    let l = mergeLoad(undefined, { ...dl, loaded: 100, total: 100, cached: false });
    expect(l.notCached).toBeUndefined();
    l = mergeLoad(l, { ...dl, loaded: 100, total: 100, cached: false, notCached: words });
    l = mergeLoad(l, { ...dl, file: 'tokenizer.json', loaded: 5, total: 5, cached: true });
    expect(l).toMatchObject({ fetched: true, notCached: words });
    expect(mergeLoad(l, { stage: 'parse', model: dl.model, loaded: 1, total: 2 }).notCached).toBe(words);
  });
});

describe('withBase', () => {
  it('swaps the base repo everywhere it is a source, never the adapter', () => {
    const models = buildModels('hub', 'Qwen/Qwen2.5-0.5B-Instruct', '', 'org/adapter');
    if (typeof models === 'string') throw new Error(models);
    const s = withBase(
      { ...defaultSpec(), models },
      'Qwen/Qwen2.5-0.5B-Instruct',
      'unsloth/Qwen2.5-0.5B-Instruct',
    );
    expect(s.models.base.source).toEqual({ kind: 'hub', repo: 'unsloth/Qwen2.5-0.5B-Instruct' });
    expect(s.models.finetuned.source).toEqual({ kind: 'hub', repo: 'unsloth/Qwen2.5-0.5B-Instruct' });
    expect(s.models.finetuned.adapter).toEqual({ kind: 'hub', repo: 'org/adapter' });
  });
});

describe('picked folders', () => {
  const file = (name: string, path: string) =>
    Object.assign(new File(['{}'], name), { webkitRelativePath: path });
  it('a directory picker: the folder name from the relative paths, and what it holds', () => {
    const f = folderFromInput([
      file('config.json', 'my-model/config.json'),
      file('x.bin', 'my-model/sub/x.bin'),
    ]);
    expect(f?.name).toBe('my-model');
    expect(f?.files.map((x) => x.path)).toEqual(['my-model/config.json', 'my-model/sub/x.bin']);
    expect(folderKind(f?.files ?? [])).toBe('model');
    expect(folderKind([{ path: 'a/adapter_config.json', file: new Blob() }])).toBe('adapter');
    expect(folderKind([{ path: 'a/readme.md', file: new Blob() }])).toBe('unknown');
    expect(folderFromInput([])).toBeNull();
  });
});
