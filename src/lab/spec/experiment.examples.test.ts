// Every spec in examples/ parses, is canonical (parsing changes nothing) and survives a share link.

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultSpec, parseSpec } from './experiment';
import { decodeLink, encodeLink } from './link';

const dir = new URL('../../../examples/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('examples/', () => {
  it('has examples, including the demo', () => {
    expect(files).toContain('demo.json');
    expect(files.length).toBeGreaterThanOrEqual(3);
  });

  for (const file of files) {
    it(`${file} is a valid, canonical spec that fits in a link`, () => {
      const json = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as unknown;
      const parsed = parseSpec(json);
      expect(parsed.ok ? [] : parsed.errors).toEqual([]);
      if (!parsed.ok) return;
      expect(parsed.spec).toEqual(json);
      const link = encodeLink(parsed.spec, 'https://lab.example.org/');
      expect(link.ok).toBe(true);
      if (link.ok) expect(decodeLink(link.url)).toEqual({ ok: true, spec: parsed.spec });
    });
  }

  it('demo.json is defaultSpec()', () => {
    expect(JSON.parse(readFileSync(new URL('demo.json', dir), 'utf8'))).toEqual(defaultSpec());
  });
});
