import { describe, expect, it } from 'vitest';
import { defaultSpec, parseSpec, SPEC_VERSION } from './experiment';
import { MigrationError, MIGRATIONS, migrateSpec, modelSourceFromV0, type Migration } from './migrations';

/** A v0 draft: the demo spec as it was written before models had sources. */
function v0Draft(): Record<string, unknown> {
  const v1 = JSON.parse(JSON.stringify(defaultSpec())) as Record<string, unknown>;
  return {
    ...v1,
    version: 0,
    models: {
      base: 'demo-base',
      finetuned: 'ModelOrganismsForEM/Qwen2.5-0.5B-Instruct_bad-medical-advice@main',
      treft: 'https://example.org/treft/',
      local: './models/mine',
    },
  };
}

describe('migrations', () => {
  it('form one chain from version 0 to the current version', () => {
    expect(MIGRATIONS.map((m) => m.from)).toEqual([...Array(SPEC_VERSION).keys()]);
  });

  it('open a v0 draft: string model names become sources', () => {
    const r = parseSpec(v0Draft());
    expect(r.ok ? [] : r.errors).toEqual([]);
    if (!r.ok) return;
    expect(r.spec.version).toBe(1);
    expect(r.spec.models).toEqual({
      base: { source: { kind: 'demo', name: 'demo-base' } },
      finetuned: {
        source: {
          kind: 'hub',
          repo: 'ModelOrganismsForEM/Qwen2.5-0.5B-Instruct_bad-medical-advice',
          revision: 'main',
        },
      },
      treft: { source: { kind: 'url', url: 'https://example.org/treft/' } },
      local: { source: { kind: 'local', path: './models/mine' } },
    });
    expect(r.spec.conditions).toEqual(defaultSpec().conditions);
  });

  it('do not mutate their input', () => {
    const draft = v0Draft();
    const copy = JSON.parse(JSON.stringify(draft)) as unknown;
    parseSpec(draft);
    expect(draft).toEqual(copy);
  });

  it('refuse what they cannot read, with the path', () => {
    const draft = v0Draft();
    (draft.models as Record<string, unknown>).base = 'not a model';
    const r = parseSpec(draft);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]).toMatch(/^models\.base: "not a model" is neither/);
  });

  it('leave fields they do not know for the schema to refuse', () => {
    const r = parseSpec({ ...v0Draft(), colour: 'red' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toContain('colour: unknown field "colour"');
  });

  it('reads v0 model strings', () => {
    expect(modelSourceFromV0('owner/name', 'm')).toEqual({ kind: 'hub', repo: 'owner/name' });
    expect(modelSourceFromV0('/abs/path', 'm')).toEqual({ kind: 'local', path: '/abs/path' });
    expect(modelSourceFromV0('C:\\models\\x', 'm')).toEqual({ kind: 'local', path: 'C:\\models\\x' });
    expect(() => modelSourceFromV0('just-a-word', 'm')).toThrow(MigrationError);
  });

  it('run a longer chain in order and check each step', () => {
    const chain: Migration[] = [
      { from: 0, description: 'a', up: (d) => ({ ...d, version: 1, trail: ['a'] }) },
      {
        from: 1,
        description: 'b',
        up: (d) => ({ ...d, version: 2, trail: [...(d.trail as string[]), 'b'] }),
      },
    ];
    expect(migrateSpec({ version: 0 }, 2, chain)).toEqual({ version: 2, trail: ['a', 'b'] });
    expect(migrateSpec({ version: 1, trail: [] }, 2, chain)).toEqual({ version: 2, trail: ['b'] });
    expect(() => migrateSpec({ version: 0 }, 3, chain)).toThrow(/no migration from version 2/);
    const broken: Migration[] = [{ from: 0, description: 'x', up: (d) => d }];
    expect(() => migrateSpec({ version: 0 }, 1, broken)).toThrow(/did not produce version 1/);
    expect(() => migrateSpec({ version: -1 }, 1)).toThrow(/non-negative integer/);
  });
});
