import { describe, expect, it } from 'vitest';
import { currentLoadStep, describeStage } from './load-steps';

describe('currentLoadStep', () => {
  it('says nothing when no load is running', () => {
    expect(currentLoadStep(null, 'done')).toBeNull();
    expect(currentLoadStep({ stage: 'parse', model: 'base', loaded: 1, total: 2 }, 'error')).toBeNull();
  });

  it('is the engine start before the first event', () => {
    expect(currentLoadStep(null, 'running')).toMatchObject({ stage: 'engine', text: 'Starting the engine…' });
  });

  it('names the model i of n and the weights read in bytes', () => {
    const s = currentLoadStep(
      {
        stage: 'parse',
        model: 'finetuned',
        loaded: 12,
        total: 40,
        weightBytes: 3 * 1024 * 1024,
        index: 1,
        count: 2,
      },
      'running',
    );
    expect(s?.stage).toBe('parse');
    expect(s?.text).toMatch(
      /^Model 1 of 2 \(finetuned\): reading weights · 3(\.0)? MiB \(12 of 40 tensors\)…$/,
    );
    expect([s?.loaded, s?.total]).toEqual([12, 40]);
  });

  it('graph, session and warm-up are steps without a known size', () => {
    for (const stage of ['graph', 'session', 'warmup'] as const) {
      const s = currentLoadStep({ stage, model: 'base', loaded: 0, total: 1, index: 2, count: 2 }, 'running');
      expect(s?.stage).toBe(stage);
      expect(s?.text.startsWith('Model 2 of 2 (base): ')).toBe(true);
      expect(s?.total).toBe(0);
    }
    expect(describeStage({ stage: 'warmup', model: 'm', loaded: 0, total: 1 })).toMatch(/WebGPU/);
  });

  it('after the last model is ready the prompt is rendered; before it, the next model follows', () => {
    expect(
      currentLoadStep({ stage: 'ready', model: 'base', loaded: 1, total: 1, index: 2, count: 2 }, 'running')
        ?.text,
    ).toBe('Model 2 of 2 (base) ready · rendering the prompt…');
    expect(
      currentLoadStep({ stage: 'ready', model: 'base', loaded: 1, total: 1, index: 1, count: 2 }, 'running')
        ?.text,
    ).toBe('Model 1 of 2 (base) ready');
  });

  it('a download shows the file, bytes and what is left', () => {
    const s = currentLoadStep(
      {
        stage: 'download',
        model: 'org/m',
        file: 'model.safetensors',
        loaded: 1024,
        total: 4096,
        rate: 1024,
        etaSeconds: 3,
      },
      'running',
    );
    expect(s?.text).toBe(
      'Downloading org/m: model.safetensors · 1.0 KiB / 4.0 KiB · 1.0 KiB/s · about 3 s left',
    );
  });
});
