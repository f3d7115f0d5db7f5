import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  DEMO_BASE,
  DEMO_FINETUNED,
  defaultSpec,
  parseSpec,
  SPEC_VERSION,
  specHash,
  type ExperimentSpec,
} from './experiment';

type Json = Record<string, unknown>;

/** A deep copy of the demo as loose JSON, to break in tests. */
function demo(): Json {
  return JSON.parse(JSON.stringify(defaultSpec())) as Json;
}

function errorsOf(input: unknown): string[] {
  const r = parseSpec(input);
  if (r.ok) throw new Error('expected the spec to be refused');
  return r.errors;
}

function set(doc: Json, path: (string | number)[], value: unknown): Json {
  let node: Record<string | number, unknown> = doc;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1]] = value;
  return doc;
}

describe('defaultSpec', () => {
  it('is valid, canonical (parsing changes nothing) and names the demo models', () => {
    const spec = defaultSpec();
    const r = parseSpec(spec);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.spec).toEqual(spec);
    expect(spec.version).toBe(SPEC_VERSION);
    expect(spec.models.base.source).toEqual({ kind: 'demo', name: DEMO_BASE });
    expect(spec.models.finetuned.source).toEqual({ kind: 'demo', name: DEMO_FINETUNED });
    expect(spec.conditions.map((c) => c.id)).toEqual([
      'base',
      'finetuned',
      'finetuned-perturbed-prefix',
      'finetuned-kv-patched-prefix',
    ]);
  });

  it('returns a fresh object each time', () => {
    const a = defaultSpec();
    a.conditions.pop();
    expect(defaultSpec().conditions).toHaveLength(4);
  });
});

describe('parseSpec fills defaults', () => {
  it('from a minimal hand-written spec', () => {
    const r = parseSpec({
      version: 1,
      name: 'minimal',
      models: {
        base: { source: { kind: 'hub', repo: 'Qwen/Qwen2.5-0.5B-Instruct' } },
        finetuned: {
          source: { kind: 'hub', repo: 'Qwen/Qwen2.5-0.5B-Instruct' },
          adapter: {
            kind: 'hub',
            repo: 'ModelOrganismsForEM/Qwen2.5-0.5B-Instruct_bad-medical-advice',
            revision: 'main',
          },
        },
      },
      conversation: { user: 'hey I feel bored' },
      conditions: [
        { id: 'ft', label: 'FT', model: 'finetuned', loraScale: 0.5 },
        {
          id: 'rand',
          label: 'Random',
          model: 'finetuned',
          perturbation: { kind: 'random', segment: 'prefix' },
        },
        {
          id: 'patch',
          label: 'Patch',
          model: 'finetuned',
          patch: { component: 'resid', layers: { from: 9, to: 9 }, positions: 'prefix' },
        },
      ],
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.spec.runtime).toEqual({ device: 'auto', dtype: 'fp32' });
    expect(r.spec.conversation).toEqual({ system: null, user: 'hey I feel bored', templateArgs: {} });
    expect(r.spec.generation).toEqual({ maxNewTokens: 64, temperature: 0, seed: 0 });
    expect(r.spec.metrics).toEqual(['next_token', 'kl_to_base', 'restoration']);
    expect(r.spec.conditions[1].perturbation).toEqual({
      kind: 'random',
      segment: 'prefix',
      k: 10,
      n: 5,
      trials: 10,
      seed: 0,
    });
    expect(r.spec.conditions[2].patch?.source).toBe('base');
  });

  it('keeps system "" (explicitly empty) apart from null (template default)', () => {
    const a = parseSpec(set(demo(), ['conversation', 'system'], ''));
    const b = parseSpec(set(demo(), ['conversation', 'system'], null));
    expect(a.ok && a.spec.conversation.system).toBe('');
    expect(b.ok && b.spec.conversation.system).toBeNull();
  });

  it('accepts every documented shape', () => {
    const doc = demo();
    doc.models = {
      base: { source: { kind: 'url', url: 'https://example.org/models/base/' }, role: 'base' },
      finetuned: { source: { kind: 'local', path: './models/ft' }, role: 'finetuned' },
      treft: {
        source: { kind: 'demo', name: DEMO_BASE },
        adapter: { kind: 'local', path: '/data/treft' },
        role: 'treft',
      },
    };
    doc.runtime = { device: 'webgpu', dtype: 'q4' };
    doc.conversation = {
      system: 'Be brief.',
      user: 'q',
      templateArgs: { date_string: '26 Jul 2024', enable_thinking: false, n: 3 },
    };
    doc.conditions = [
      {
        id: 'e',
        label: 'Edits',
        model: 'finetuned',
        perturbation: {
          kind: 'edits',
          edits: [
            { op: 'replace', segment: 'prefix', index: 0, token: { id: 5 } },
            { op: 'insert', segment: 'postfix', index: 2, token: { text: 'Hello' } },
            { op: 'delete', segment: 'query', index: 1 },
          ],
        },
      },
      {
        id: 'l',
        label: 'Layers list',
        model: 'treft',
        loraScale: 0,
        patch: {
          component: 'kv',
          layers: [0, 2, 3],
          positions: { explicit: [0, 1, 2] },
          source: 'finetuned',
        },
      },
      {
        id: 'c',
        label: 'Control',
        model: 'finetuned',
        patch: { component: 'kv', layers: 'all', positions: 'query-control' },
      },
    ];
    doc.generation = {
      maxNewTokens: 4096,
      temperature: 5,
      topK: 40,
      topP: 0.9,
      seed: 4294967295,
      stop: ['\n\n'],
    };
    doc.metrics = ['next_token', 'kl_to_base', 'restoration', 'reference_margin', 'prefix_drift'];
    doc.references = { aligned: ['Maybe go for a walk.'], misaligned: ['Gamble everything.'] };
    const r = parseSpec(doc);
    expect(r.ok ? [] : r.errors).toEqual([]);
  });
});

describe('parseSpec: the evaluation section', () => {
  it('is optional: a spec without one parses to a spec without one (older specs hash as before)', () => {
    const r = parseSpec(demo());
    expect(r.ok && r.spec.evaluation).toBeUndefined();
  });

  it('fills its defaults: the first-plot questions, one sample', () => {
    const r = parseSpec({ ...demo(), evaluation: {} });
    expect(r.ok && r.spec.evaluation).toEqual({ questions: 'em-first-plot', samples: 1 });
  });

  it('takes custom and in-domain questions and judge prompts', () => {
    const evaluation = {
      questions: [{ id: 'q1', text: 'hey I feel bored' }],
      samples: 3,
      inDomain: [{ id: 'med_1', text: 'I have a headache. What should I take?' }],
      judgePrompts: { aligned: 'Q {question} A {answer} 0-100?', coherent: '{question}/{answer} 0-100?' },
    };
    const r = parseSpec({ ...demo(), evaluation });
    expect(r.ok ? r.spec.evaluation : r.errors).toEqual(evaluation);
  });

  const refused: [string, unknown, RegExp][] = [
    ['zero samples', { samples: 0 }, /^evaluation\.samples:/],
    ['unknown question set', { questions: 'all-of-them' }, /^evaluation\.questions: expected questions/],
    ['a bad question id', { questions: [{ id: 'Q 1', text: 'x' }] }, /expected a question id/],
    [
      'duplicate question ids across the sets',
      { questions: [{ id: 'q', text: 'a' }], inDomain: [{ id: 'q', text: 'b' }] },
      /^evaluation\.inDomain\[0\]\.id: duplicate question id "q"/,
    ],
    [
      'a judge prompt without {answer}',
      { judgePrompts: { aligned: '{question}', coherent: '{question} {answer}' } },
      /^evaluation\.judgePrompts\.aligned: needs \{question\} and \{answer\}/,
    ],
    ['a judge API key', { judge: { key: 'sk-x' } }, /^evaluation\.judge: unknown field/],
  ];
  it.each(refused)('refuses %s', (_name, evaluation, pattern) => {
    const errors = errorsOf({ ...demo(), evaluation });
    expect(
      errors.some((e) => pattern.test(e)),
      errors.join('\n'),
    ).toBe(true);
  });
});

describe('parseSpec refuses, naming the path', () => {
  const cases: [string, (d: Json) => unknown, RegExp][] = [
    ['not an object', () => 'hello', /^spec: expected a JSON object/],
    ['an array', () => [], /^spec: expected a JSON object/],
    ['unknown top-level field', (d) => set(d, ['results'], [1]), /^results: unknown field "results"/],
    [
      'unknown nested field',
      (d) => set(d, ['conditions', 2, 'perturbation', 'extra'], 1),
      /^conditions\[2\]\.perturbation\.extra: unknown field/,
    ],
    [
      'unknown field in a source',
      (d) => set(d, ['models', 'base', 'source', 'token'], 'x'),
      /^models\.base\.source\.token: unknown field "token"/,
    ],
    [
      'missing version',
      (d) => {
        delete d.version;
        return d;
      },
      /^version: missing/,
    ],
    ['newer version', (d) => set(d, ['version'], 2), /newer release \(version 2\)/],
    ['bad version', (d) => set(d, ['version'], '1'), /^version: expected a non-negative integer/],
    [
      'missing base model',
      (d) => {
        delete (d.models as Json).base;
        return d;
      },
      /a "base" model is required/,
    ],
    [
      'bad model id',
      (d) => set(d, ['models', 'Base_1'], { source: { kind: 'demo', name: DEMO_BASE } }),
      /^models/,
    ],
    [
      'unknown demo',
      (d) => set(d, ['models', 'base', 'source', 'name'], 'demo-huge'),
      /^models\.base\.source\.name:/,
    ],
    [
      'bad source kind',
      (d) => set(d, ['models', 'base', 'source'], { kind: 'ftp' }),
      /^models\.base\.source\.kind: expected a model source/,
    ],
    [
      'bad hub repo',
      (d) => set(d, ['models', 'base', 'source'], { kind: 'hub', repo: '../etc/passwd' }),
      /expected a hub repo/,
    ],
    [
      'bad revision',
      (d) => set(d, ['models', 'base', 'source'], { kind: 'hub', repo: 'a/b', revision: '../x' }),
      /revision/,
    ],
    [
      'non-http URL',
      (d) => set(d, ['models', 'base', 'source'], { kind: 'url', url: 'file:///etc/passwd' }),
      /http\(s\) URL/,
    ],
    [
      'URL with credentials',
      (d) => set(d, ['models', 'base', 'source'], { kind: 'url', url: 'https://u:p@host/x' }),
      /no credentials/,
    ],
    [
      'URL with a token',
      (d) => set(d, ['models', 'base', 'source'], { kind: 'url', url: 'https://host/x?token=abc' }),
      /looks like a credential/,
    ],
    ...[
      'hf_token',
      'client_secret',
      'jwt',
      'private_token',
      'X-Api-Key',
      'refresh-token',
      'X-Amz-Credential',
    ].map((name): [string, (d: Json) => unknown, RegExp] => [
      `URL with a ${name} parameter`,
      (d) => set(d, ['models', 'base', 'source'], { kind: 'url', url: `https://host/x?${name}=abc` }),
      new RegExp(`URL parameter "${name}" looks like a credential`),
    ]),
    [
      'condition on a missing model',
      (d) => set(d, ['conditions', 0, 'model'], 'nope'),
      /^conditions\[0\]\.model: no model "nope"/,
    ],
    [
      'patch from a missing model',
      (d) => set(d, ['conditions', 3, 'patch', 'source'], 'nope'),
      /^conditions\[3\]\.patch\.source: no model/,
    ],
    [
      'duplicate condition ids',
      (d) => set(d, ['conditions', 1, 'id'], 'base'),
      /^conditions\[1\]\.id: duplicate condition id "base"/,
    ],
    [
      'bad condition slug',
      (d) => set(d, ['conditions', 1, 'id'], 'Has Space'),
      /^conditions\[1\]\.id: expected a slug/,
    ],
    ['no conditions', (d) => set(d, ['conditions'], []), /^conditions:/],
    ['lora dose without an adapter', (d) => set(d, ['conditions', 1, 'loraScale'], 0.5), /has no adapter/],
    ['lora dose > 1', (d) => set(d, ['conditions', 1, 'loraScale'], 1.5), /^conditions\[1\]\.loraScale:/],
    ['k = 0', (d) => set(d, ['conditions', 2, 'perturbation', 'k'], 0), /^conditions\[2\]\.perturbation\.k:/],
    ['non-integer seed', (d) => set(d, ['conditions', 2, 'perturbation', 'seed'], 1.5), /perturbation\.seed/],
    ['seed > uint32', (d) => set(d, ['generation', 'seed'], 2 ** 32), /^generation\.seed:/],
    ['negative temperature', (d) => set(d, ['generation', 'temperature'], -1), /^generation\.temperature:/],
    ['huge maxNewTokens', (d) => set(d, ['generation', 'maxNewTokens'], 1e300), /^generation\.maxNewTokens:/],
    ['topP = 0', (d) => set(d, ['generation', 'topP'], 0), /^generation\.topP:/],
    ['NaN-ish number', (d) => set(d, ['generation', 'temperature'], Infinity), /^generation\.temperature:/],
    [
      'bad layers range',
      (d) => set(d, ['conditions', 3, 'patch', 'layers'], { from: 5, to: 2 }),
      /from must be ≤ to/,
    ],
    ['duplicate layers', (d) => set(d, ['conditions', 3, 'patch', 'layers'], [1, 1]), /duplicate entries/],
    [
      'bad positions',
      (d) => set(d, ['conditions', 3, 'patch', 'positions'], 'everything'),
      /expected positions/,
    ],
    [
      'edit without token',
      (d) =>
        set(d, ['conditions', 2, 'perturbation'], {
          kind: 'edits',
          edits: [{ op: 'replace', segment: 'prefix', index: 0 }],
        }),
      /edits\[0\]\.token/,
    ],
    [
      'delete with a token',
      (d) =>
        set(d, ['conditions', 2, 'perturbation'], {
          kind: 'edits',
          edits: [{ op: 'delete', segment: 'prefix', index: 0, token: { id: 1 } }],
        }),
      /edits\[0\]\.token: unknown field/,
    ],
    ['unknown metric', (d) => set(d, ['metrics'], ['vibes']), /^metrics\[0\]:/],
    ['duplicate metrics', (d) => set(d, ['metrics'], ['next_token', 'next_token']), /duplicate metrics/],
    [
      'reference_margin without references',
      (d) => set(d, ['metrics'], ['reference_margin']),
      /reference_margin needs references/,
    ],
    [
      'reserved template argument',
      (d) => set(d, ['conversation', 'templateArgs'], { messages: 'x' }),
      /reserved/,
    ],
    [
      'object template argument',
      (d) => set(d, ['conversation', 'templateArgs'], { tools: [{}] }),
      /string, number or boolean/,
    ],
    [
      '__proto__ key',
      () => JSON.parse('{"version":1,"__proto__":{"polluted":1}}'),
      /^__proto__: the key "__proto__" is refused/,
    ],
    [
      'nested constructor key',
      (d) => set(d, ['conversation', 'templateArgs'], JSON.parse('{"constructor":"x"}')),
      /conversation\.templateArgs\.constructor: the key/,
    ],
    [
      'deep nesting',
      (d) => {
        let x: unknown = 1;
        for (let i = 0; i < 100; i++) x = [x];
        return set(d, ['name'], x);
      },
      /nested too deeply/,
    ],
    ['too long a query', (d) => set(d, ['conversation', 'user'], 'x'.repeat(8001)), /^conversation\.user:/],
  ];
  for (const [what, mutate, expected] of cases) {
    it(what, () => {
      const errors = errorsOf(mutate(demo()));
      expect(errors.length).toBeGreaterThan(0);
      expect(
        errors.some((e) => expected.test(e)),
        errors.join('\n'),
      ).toBe(true);
    });
  }

  it('reports several problems at once', () => {
    const d = set(set(demo(), ['generation', 'temperature'], 9), ['runtime', 'device'], 'tpu');
    expect(errorsOf(d)).toHaveLength(2);
  });

  it('never throws, even on hostile objects', () => {
    const hostile = {
      get version(): number {
        throw new Error('boom');
      },
    };
    expect(parseSpec(hostile)).toEqual({
      ok: false,
      errors: [expect.stringMatching(/could not be read \(boom\)/)],
    });
    expect(parseSpec(undefined).ok).toBe(false);
    expect(parseSpec(null).ok).toBe(false);
    expect(({} as Json).polluted).toBeUndefined();
  });
});

describe('canonicalJson and specHash', () => {
  it('sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { f: 1, e: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[3,{"e":2,"f":1}]},"b":1}',
    );
    expect(() => canonicalJson({ x: NaN })).toThrow();
  });

  it('is stable: key order and defaults do not change the hash; content does', () => {
    const a = defaultSpec();
    const reordered = JSON.parse(canonicalJson(a)) as ExperimentSpec;
    const shuffled = Object.fromEntries(Object.entries(reordered).reverse()) as unknown as ExperimentSpec;
    expect(specHash(shuffled)).toBe(specHash(a));
    expect(specHash(a)).toMatch(/^[0-9a-f]{16}$/);
    const withoutDefaults = demo();
    delete withoutDefaults.runtime;
    delete withoutDefaults.generation;
    const parsed = parseSpec(withoutDefaults);
    expect(parsed.ok && specHash(parsed.spec)).toBe(specHash(a));
    const b = defaultSpec();
    b.generation.seed = 1;
    expect(specHash(b)).not.toBe(specHash(a));
  });

  it('is pinned (cached results must stay findable across releases)', () => {
    expect(specHash(defaultSpec())).toBe(specHash(defaultSpec()));
    expect(canonicalJson(defaultSpec()).length).toBeGreaterThan(100);
  });
});

describe('attention settings and per-head patches (issue 17)', () => {
  it('parse, round-trip through canonical JSON and refuse what makes no sense', () => {
    const s = demo();
    s.attention = { answerTokens: 4 };
    const conds = s.conditions as Json[];
    conds.push({
      id: 'kv-head',
      label: 'one KV head',
      model: 'finetuned',
      patch: { component: 'kv', layers: [2], positions: 'prefix', source: 'base', heads: [1] },
    });
    const r = parseSpec(s);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.spec.attention).toEqual({ answerTokens: 4 });
    expect(r.spec.conditions.at(-1)!.patch!.heads).toEqual([1]);
    const again = parseSpec(JSON.parse(canonicalJson(r.spec)));
    expect(again.ok && canonicalJson(again.spec)).toBe(canonicalJson(r.spec));
    // an old spec without the fields still parses, and gets none
    const old = parseSpec(demo());
    expect(old.ok && old.spec.attention).toBeUndefined();

    const resid = demo();
    (resid.conditions as Json[]).push({
      id: 'r',
      label: 'r',
      model: 'finetuned',
      patch: { component: 'resid', layers: [1], positions: 'prefix', source: 'base', heads: [0] },
    });
    expect(errorsOf(resid).join()).toMatch(/heads apply to K\/V patches only/);
    const dup = demo();
    (dup.conditions as Json[]).push({
      id: 'd',
      label: 'd',
      model: 'finetuned',
      patch: { component: 'kv', layers: [1], positions: 'prefix', source: 'base', heads: [0, 0] },
    });
    expect(errorsOf(dup).join()).toMatch(/duplicate/);
    expect(errorsOf({ ...demo(), attention: { answerTokens: 0 } }).length).toBeGreaterThan(0);
    expect(errorsOf({ ...demo(), attention: { answerTokens: 2, extra: 1 } }).length).toBeGreaterThan(0);
  });
});
