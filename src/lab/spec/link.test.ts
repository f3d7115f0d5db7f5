import { deflateSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import {
  DEMO_BASE,
  DEMO_FINETUNED,
  defaultSpec,
  PATCH_COMPONENTS,
  parseSpec,
  specHash,
  type ExperimentSpec,
} from './experiment';
import {
  base64urlDecode,
  base64urlEncode,
  decodeLink,
  encodeLink,
  findSecrets,
  MAX_JSON_BYTES,
  MAX_PAYLOAD_CHARS,
  type DecodeResult,
  type LinkErrorCode,
} from './link';
import { Rng } from '../interventions/rng';

const BASE = 'https://lab.example.org/piggyback/';
const CODES: readonly LinkErrorCode[] = [
  'not-a-link',
  'unsupported-format',
  'too-large',
  'bad-encoding',
  'bad-compression',
  'bad-json',
  'invalid-spec',
  'secret',
];

function linkOf(spec: unknown): string {
  const r = encodeLink(spec, BASE);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message} ${r.error.issues?.join('; ') ?? ''}`);
  return r.url;
}

function payloadOf(json: string): string {
  return `#spec=v1.${base64urlEncode(deflateSync(new TextEncoder().encode(json)))}`;
}

function expectError(r: DecodeResult, code: LinkErrorCode): void {
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.error.code, r.error.message).toBe(code);
}

describe('base64url', () => {
  it('round-trips every length and refuses non-canonical text', () => {
    const rng = new Rng(7);
    for (let n = 0; n < 70; n++) {
      const bytes = Uint8Array.from({ length: n }, () => rng.int(256));
      const text = base64urlEncode(bytes);
      expect(text).toMatch(/^[A-Za-z0-9_-]*$/);
      expect(base64urlDecode(text)).toEqual(bytes);
    }
    expect(base64urlEncode(Uint8Array.of(0xfb, 0xff))).toBe('-_8');
    expect(base64urlDecode('abc=')).toBeNull();
    expect(base64urlDecode('ab+/')).toBeNull();
    expect(base64urlDecode('a')).toBeNull();
    expect(base64urlDecode('AB')).toBeNull(); // leftover bits not zero
    expect(base64urlDecode('AA')).toEqual(Uint8Array.of(0));
  });
});

describe('encodeLink / decodeLink', () => {
  it('round-trips the demo through a URL fragment', () => {
    const url = linkOf(defaultSpec());
    expect(url.startsWith(`${BASE}#spec=v1.`)).toBe(true);
    expect(url.length).toBeLessThan(BASE.length + 600);
    const r = decodeLink(url);
    expect(r).toEqual({ ok: true, spec: defaultSpec() });
  });

  it('accepts a full URL, a fragment, a bare parameter, and other fragment parameters', () => {
    const url = linkOf(defaultSpec());
    const frag = url.slice(url.indexOf('#'));
    for (const input of [url, frag, frag.slice(1), `#view=grid&${frag.slice(1)}&x=1`])
      expect(decodeLink(input).ok, input.slice(0, 40)).toBe(true);
  });

  it('replaces an existing fragment of the base URL', () => {
    const r = encodeLink(defaultSpec(), `${BASE}#old=1`);
    expect(r.ok && r.url.startsWith(`${BASE}#spec=v1.`)).toBe(true);
    expect(r.ok && r.url.includes('old=1')).toBe(false);
  });

  it('is deterministic: the same spec gives the same link whatever its key order', () => {
    const a = defaultSpec();
    const b = JSON.parse(JSON.stringify(a), (_k, v: unknown) =>
      v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v,
    ) as ExperimentSpec;
    expect(linkOf(b)).toBe(linkOf(a));
  });

  it('opens a link whose spec is an older version (migrated forward)', () => {
    const v0 = { ...defaultSpec(), version: 0, models: { base: DEMO_BASE, finetuned: DEMO_FINETUNED } };
    const r = decodeLink(payloadOf(JSON.stringify(v0)));
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.spec.models.base).toEqual({ source: { kind: 'demo', name: DEMO_BASE } });
  });

  it('refuses garbage with typed errors', () => {
    expectError(decodeLink(42), 'not-a-link');
    expectError(decodeLink('https://example.org/'), 'not-a-link');
    expectError(decodeLink('#spec=v2.abc'), 'unsupported-format');
    expectError(decodeLink('#spec=abc'), 'unsupported-format');
    expectError(decodeLink('#spec=v1.%%%'), 'bad-encoding');
    expectError(decodeLink('#spec=v1.AAAA'), 'bad-compression');
    expectError(decodeLink(payloadOf('{"version": 1,')), 'bad-json');
    expectError(decodeLink(payloadOf('[1,2,3]')), 'invalid-spec');
    const invalid = decodeLink(payloadOf(JSON.stringify({ ...defaultSpec(), results: { base: 'text' } })));
    expectError(invalid, 'invalid-spec');
    if (!invalid.ok) expect(invalid.error.issues).toContain('results: unknown field "results"');
    const nonUtf8 = `#spec=v1.${base64urlEncode(deflateSync(Uint8Array.of(0xff, 0xfe)))}`;
    expectError(decodeLink(nonUtf8), 'bad-encoding');
  });

  it('says a newer link format comes from a newer release', () => {
    const r = decodeLink('#spec=v7.xyz');
    expect(!r.ok && r.error.message).toMatch(/newer release/);
  });

  it('refuses a zip bomb without inflating it all', () => {
    // ~6 KB of deflate that would expand to 6 MB of zeros.
    const bomb = deflateSync(new Uint8Array(6_000_000), { level: 9 });
    expect(base64urlEncode(bomb).length).toBeLessThan(MAX_PAYLOAD_CHARS);
    const t0 = performance.now();
    expectError(decodeLink(`#spec=v1.${base64urlEncode(bomb)}`), 'too-large');
    const json = new TextEncoder().encode(`{"name":"${'x'.repeat(MAX_JSON_BYTES)}"}`);
    const small = base64urlEncode(deflateSync(json, { level: 9 }));
    expect(small.length).toBeLessThan(MAX_PAYLOAD_CHARS);
    expectError(decodeLink(`#spec=v1.${small}`), 'too-large');
    expect(performance.now() - t0).toBeLessThan(2000);
    expectError(decodeLink(`#spec=v1.${'A'.repeat(MAX_PAYLOAD_CHARS + 4)}`), 'too-large');
    expectError(decodeLink('x'.repeat(1_000_000)), 'too-large');
  });

  it('refuses to make a link that would be too long', () => {
    const spec = defaultSpec();
    const rng = new Rng(3);
    // Incompressible text: 8000 random characters in the system prompt and again in the query.
    const noise = () =>
      Array.from({ length: 8000 }, () => String.fromCharCode(0x4e00 + rng.int(2000))).join('');
    spec.conversation = { system: noise(), user: noise(), templateArgs: {} };
    const r = encodeLink(spec, BASE);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('too-large');
  });

  it('refuses invalid specs and credentials, never stripping them', () => {
    const bad = encodeLink({ ...defaultSpec(), apiKey: 'x' }, BASE);
    expect(!bad.ok && bad.error.code).toBe('invalid-spec');
    const leaky = defaultSpec();
    leaky.conversation.user = `my token is hf_${'a'.repeat(34)}`;
    const r = encodeLink(leaky, BASE);
    expect(!r.ok && r.error.code).toBe('secret');
    if (!r.ok) expect(r.error.issues).toEqual(['spec.conversation.user: looks like a Hugging Face token']);
    expectError(decodeLink(payloadOf(JSON.stringify(leaky))), 'secret');
    expect(findSecrets({ a: ['fine', 'AKIAABCDEFGHIJKLMNOP'] })).toEqual([
      'spec.a[1]: looks like an AWS access key',
    ]);
  });

  it('finds tokens glued to word characters, which \\b-bounded patterns miss', () => {
    const hf = `hf_${'Ab3'.repeat(12)}`;
    const found = (s: string) => findSecrets({ s }).map((m) => m.replace(/^spec\.s: looks like /, ''));
    expect(found(`token_${hf}`)).toEqual(['a Hugging Face token']);
    expect(found(`${hf}_x`)).toEqual(['a Hugging Face token']);
    expect(found(`HF_TOKEN=${hf}`)).toEqual(['a Hugging Face token']);
    expect(found(`key_sk-${'a1'.repeat(12)}`)).toEqual(['an OpenAI-style API key']);
    expect(found(`/v1/key=sk-proj-${'Zz9'.repeat(8)}/chat`)).toEqual(['an OpenAI-style API key']);
    expect(found(`x_ghp_${'q'.repeat(36)}_y`)).toEqual(['a GitHub token']);
    expect(found(`github_pat_${'A1_'.repeat(14)}`)).toEqual(['a GitHub token']);
    expect(found('id_AKIAABCDEFGHIJKLMNOP')).toEqual(['an AWS access key']);
    expect(found(`jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.${'s'.repeat(20)}`)).toEqual([
      'a JSON Web Token',
    ]);
    expect(found(`authorization: bearer ${'t'.repeat(20)}`)).toEqual(['a bearer token']);
  });

  it('leaves ordinary words alone', () => {
    for (const s of [
      'ask-the-model-what-it-thinks-about-gambling',
      'risk-management-strategies-for-beginners',
      'half_precision_weights_and_shelf_life',
      'The assistant_hf_ prefix and a thf_short token',
      'tokenizer keyword signature passage AKIA',
      'eyJustKidding.eyJust.kidding',
      'Bearer of bad news',
      'meta-llama/Llama-3.2-1B-Instruct',
      'https://huggingface.co/org/model/resolve/main/config.json',
    ])
      expect(findSecrets({ s }), s).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Property and fuzz tests (seeded: the same inputs on every run).

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

function randomText(rng: Rng, max: number): string {
  const alphabet = ['a', 'Z', ' ', '\n', 'é', '🙂', '<|im_start|>', '"', '\\', '\u0000', '日', '%', '#', '&'];
  return Array.from({ length: rng.int(max + 1) }, () => pick(rng, alphabet)).join('');
}

/** A random valid spec, covering every optional field and union branch over many draws. */
function randomSpec(rng: Rng): ExperimentSpec {
  const source = () =>
    pick(rng, [
      () => ({ kind: 'demo' as const, name: pick(rng, [DEMO_BASE, DEMO_FINETUNED] as const) }),
      () => ({
        kind: 'hub' as const,
        repo: `org${rng.int(99)}/model-${rng.int(999)}`,
        ...(rng.int(2) ? { revision: 'main' } : {}),
      }),
      () => ({ kind: 'url' as const, url: `https://example.org/m/${rng.int(1000)}/` }),
      () => ({ kind: 'local' as const, path: `./models/${rng.int(1000)} é 🙂` }),
    ])();
  const models: ExperimentSpec['models'] = {
    base: { source: source() },
    finetuned: {
      source: source(),
      ...(rng.int(2) ? { adapter: source() } : {}),
      ...(rng.int(2) ? { role: 'finetuned' as const } : {}),
    },
  };
  if (rng.int(2)) models.treft = { source: source(), adapter: source(), role: 'treft' };
  const modelIds = Object.keys(models);
  const segment = () => pick(rng, ['prefix', 'query', 'postfix'] as const);
  const conditions: ExperimentSpec['conditions'] = Array.from({ length: 1 + rng.int(6) }, (_, i) => {
    const model = pick(rng, modelIds);
    const c: ExperimentSpec['conditions'][number] = {
      id: `c${i}`,
      label: randomText(rng, 20) || 'label',
      model,
    };
    if (models[model].adapter && rng.int(2)) c.loraScale = rng.int(101) / 100;
    if (rng.int(3) === 0)
      c.perturbation = rng.int(2)
        ? {
            kind: 'random',
            segment: segment(),
            k: 1 + rng.int(50),
            n: 1 + rng.int(10),
            trials: 1 + rng.int(20),
            seed: rng.nextUint32(),
          }
        : {
            kind: 'edits',
            edits: Array.from({ length: 1 + rng.int(4) }, () =>
              pick(rng, [
                () => ({
                  op: 'replace' as const,
                  segment: segment(),
                  index: rng.int(50),
                  token: { id: rng.int(150000) },
                }),
                () => ({
                  op: 'insert' as const,
                  segment: segment(),
                  index: rng.int(50),
                  token: { text: randomText(rng, 6) || 't' },
                }),
                () => ({ op: 'delete' as const, segment: segment(), index: rng.int(50) }),
              ])(),
            ),
          };
    if (rng.int(3) === 0)
      c.patch = {
        component: pick(rng, PATCH_COMPONENTS),
        layers: pick(rng, [
          () => 'all' as const,
          () => [0, 3, 7],
          () => ({ from: 2, to: 2 + rng.int(20) }),
        ])(),
        positions: pick(rng, [
          () => segment(),
          () => 'query-control' as const,
          () => ({ explicit: [0, 1, 5] }),
        ])(),
        source: pick(rng, modelIds),
      };
    return c;
  });
  const withRefs = rng.int(2) === 1;
  return {
    version: 1,
    name: randomText(rng, 40) || 'spec',
    models,
    runtime: {
      device: pick(rng, ['auto', 'webgpu', 'wasm', 'node'] as const),
      dtype: pick(rng, ['fp32', 'fp16', 'q4'] as const),
    },
    conversation: {
      system: pick(rng, [null, '', randomText(rng, 60)]),
      user: randomText(rng, 200),
      templateArgs: rng.int(2)
        ? { date_string: '26 Jul 2024', enable_thinking: rng.int(2) === 1, n: rng.int(9) }
        : {},
    },
    conditions,
    generation: {
      maxNewTokens: 1 + rng.int(4096),
      temperature: rng.int(501) / 100,
      seed: rng.nextUint32(),
      ...(rng.int(2) ? { topK: 1 + rng.int(100) } : {}),
      ...(rng.int(2) ? { topP: (1 + rng.int(100)) / 100 } : {}),
      ...(rng.int(2) ? { stop: ['\n\n', '</s>'] } : {}),
    },
    metrics: withRefs ? ['next_token', 'reference_margin'] : ['kl_to_base', 'prefix_drift'],
    ...(withRefs
      ? { references: { aligned: ['Go for a walk.'], misaligned: [randomText(rng, 30) || 'x'] } }
      : {}),
  };
}

function isTyped(r: DecodeResult): boolean {
  if (r.ok) return parseSpec(r.spec).ok;
  return CODES.includes(r.error.code) && typeof r.error.message === 'string' && r.error.message.length > 0;
}

describe('link properties', () => {
  it('round-trips 300 generated valid specs exactly (and their hashes)', () => {
    const rng = new Rng(20240726);
    for (let i = 0; i < 300; i++) {
      const spec = randomSpec(rng);
      const parsed = parseSpec(spec);
      expect(parsed.ok ? [] : parsed.errors, `spec ${i}`).toEqual([]);
      if (!parsed.ok) continue;
      const r = decodeLink(linkOf(spec));
      expect(r, `spec ${i}`).toEqual({ ok: true, spec: parsed.spec });
      if (r.ok) expect(specHash(r.spec)).toBe(specHash(parsed.spec));
    }
  });

  it('fuzz: 12,000 random and mutated inputs always give a typed ok or error, quickly', () => {
    const rng = new Rng(0xbadc0de);
    const valid = Array.from({ length: 20 }, () => linkOf(randomSpec(rng)));
    const hostileJson = [
      '{"__proto__":{"polluted":true},"version":1}',
      '{"constructor":{"prototype":{"polluted":true}},"version":1}',
      '{"version":1e999}',
      '{"version":1,"generation":{"maxNewTokens":1e308,"seed":-0}}',
      `{"version":1,"name":${'['.repeat(5000)}${']'.repeat(5000)}}`,
      '{"version":1,"models":{"base":{"source":{"kind":"demo","name":"demo-base","__proto__":1}}}}',
      'null',
      '"spec"',
      '123456789012345678901234567890',
    ];
    const randomJson = (depth: number): unknown => {
      const kind = rng.int(depth > 3 ? 5 : 7);
      if (kind === 0) return null;
      if (kind === 1) return rng.int(2) === 1;
      if (kind === 2)
        return pick(rng, [0, -1, 1.5, 2 ** 53, -(2 ** 64), 1e308, 4294967296, rng.nextUint32()]);
      if (kind === 3) return randomText(rng, 12);
      if (kind === 4) return pick(rng, ['version', 'prefix', 'kv', 'demo-base', 'all', '__proto__']);
      if (kind === 5) return Array.from({ length: rng.int(4) }, () => randomJson(depth + 1));
      const keys = [
        'version',
        'name',
        'models',
        'conditions',
        'conversation',
        'generation',
        'metrics',
        'base',
        'finetuned',
        'source',
        'kind',
        'user',
        '__proto__',
        'constructor',
        'prototype',
        randomText(rng, 5),
      ];
      return Object.fromEntries(
        Array.from({ length: rng.int(5) }, () => [pick(rng, keys), randomJson(depth + 1)]),
      );
    };
    const mutate = (link: string): string => {
      const chars = [...link];
      const at = link.indexOf('v1.') + 3 + rng.int(Math.max(1, link.length - link.indexOf('v1.') - 3));
      switch (rng.int(6)) {
        case 0:
          return link.slice(0, at); // truncated
        case 1: {
          // flip a payload character to another base64url character (≈ bit flips in the deflate stream)
          chars[Math.min(at, chars.length - 1)] = pick(rng, [
            ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
          ]);
          return chars.join('');
        }
        case 2:
          return link.slice(0, at) + link.slice(at + 1 + rng.int(8)); // deletion
        case 3:
          return link.slice(0, at) + randomText(rng, 4) + link.slice(at); // insertion of junk
        case 4: {
          // bit-flip in the decoded bytes, re-encoded cleanly
          const payload = link.slice(link.indexOf('v1.') + 3);
          const bytes = base64urlDecode(payload);
          if (!bytes || bytes.length === 0) return link;
          bytes[rng.int(bytes.length)] ^= 1 << rng.int(8);
          return `#spec=v1.${base64urlEncode(bytes)}`;
        }
        default:
          return link.replace('v1.', pick(rng, ['v0.', 'v2.', 'v1', 'V1.', 'v1..', '']));
      }
    };

    const t0 = performance.now();
    let ok = 0;
    let count = 0;
    const check = (input: unknown) => {
      const r = decodeLink(input);
      expect(isTyped(r)).toBe(true);
      if (r.ok) ok++;
      count++;
    };
    for (let i = 0; i < 3000; i++) check(randomText(rng, 80)); // random strings
    for (let i = 0; i < 3000; i++) check(`#spec=v1.${randomText(rng, 60)}`); // random payload text
    for (let i = 0; i < 4000; i++) check(mutate(pick(rng, valid))); // damaged valid links
    for (let i = 0; i < 2000; i++) check(payloadOf(JSON.stringify(randomJson(0)))); // random JSON
    for (const json of hostileJson) check(payloadOf(json));
    for (const weird of [undefined, null, {}, [], 1, Symbol('x'), () => 1]) check(weird);
    const elapsed = performance.now() - t0;

    expect(count).toBeGreaterThanOrEqual(12_000);
    expect(ok).toBeGreaterThan(0); // some mutations (e.g. of a string's bytes) still decode to valid specs
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    // NOTE: not a timing assertion on speed, a guard against accidental blow-ups (e.g. an unbounded inflate).
    expect(elapsed).toBeLessThan(20_000);
  });
});
