import { describe, expect, it } from 'vitest';
import { describeLayers, displayToken, formatMetric, tickLabel } from './format';

describe('format', () => {
  it('makes whitespace visible in token text', () => {
    expect(displayToken(' the')).toBe('·the');
    expect(displayToken('\n\n')).toBe('↵↵');
    expect(displayToken('\t')).toBe('⇥');
    expect(displayToken('')).toBe('∅');
    expect(displayToken('<|im_start|>')).toBe('<|im_start|>');
  });
  it('cuts long tick labels', () => {
    expect(tickLabel('<|start_header_id|>', 8)).toBe('<|start…');
    expect(tickLabel('ab', 8)).toBe('ab');
  });
  it('formats metrics and missing values', () => {
    expect(formatMetric(0.12345)).toBe('0.123');
    expect(formatMetric(null)).toBe('—');
    expect(formatMetric(Number.NaN)).toBe('—');
    expect(formatMetric(undefined)).toBe('—');
  });

  it('describes layer selections', () => {
    expect(describeLayers('all')).toBe('all layers');
    expect(describeLayers([2])).toBe('layer 2');
    expect(describeLayers([1, 3])).toBe('layers 1, 3');
    expect(describeLayers({ from: 0, to: 3 })).toBe('layers 0–3');
  });
});

describe('model sources', () => {
  it('describes and parses hub refs', async () => {
    const { describeSource, parseHubRef } = await import('./format');
    expect(describeSource({ kind: 'demo', name: 'demo-base' })).toBe('demo-base (embedded demo)');
    expect(parseHubRef('Qwen/Qwen2.5-0.5B-Instruct@main')).toEqual({
      kind: 'hub',
      repo: 'Qwen/Qwen2.5-0.5B-Instruct',
      revision: 'main',
    });
    expect(parseHubRef('not a repo')).toBeNull();
    expect(describeSource(parseHubRef('a/b')!)).toBe('a/b');
  });
});
