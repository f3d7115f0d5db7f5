import { describe, expect, it } from 'vitest';
import { defaultSpec } from '../lab/spec/experiment';
import { encodeLink } from '../lab/spec/link';
import { specFromHash } from './link-boot';

describe('link boot', () => {
  it('ignores a page without a spec fragment', () => {
    expect(specFromHash('')).toEqual({ kind: 'none' });
    expect(specFromHash('#teach')).toEqual({ kind: 'none' });
  });
  it('restores a spec from a link made by encodeLink', () => {
    const spec = { ...defaultSpec(), name: 'shared experiment' };
    const link = encodeLink(spec, 'http://127.0.0.1:4173/');
    if (!link.ok) throw new Error(link.error.message);
    const r = specFromHash(new URL(link.url).hash);
    expect(r.kind).toBe('spec');
    if (r.kind === 'spec') expect(r.spec).toEqual(spec);
  });
  it('turns garbage into an error message', () => {
    for (const bad of ['#spec=', '#spec=v1.%%%%', '#spec=v1.AAAA', '#spec=v9.abc', '#spec=garbage']) {
      const r = specFromHash(bad);
      expect(r.kind, bad).toBe('error');
      if (r.kind === 'error') expect(r.message).toContain('default demo');
    }
  });
});
