// Fuzzing the model-file trust boundary: mutated copies of the fixture folders (truncated files, byte
// flips in headers, wrong types and absurd numbers in config / tokenizer / adapter_config / safetensors
// headers, a wrong header length, hostile chat templates and target_modules regexes) go through the
// real loading path in memory — config, safetensors, weights, tokenizer, template render and split,
// adapter — but not an ORT session. Each case must end in a typed error (EngineError / TemplateError
// with a message) or a correct load (the weights read are the fixture's own), within a time bound.
// Seeded (FUZZ_SEED overrides): a failure prints its seed, case and mutation, so it can be replayed.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EngineError } from './errors';
import { memorySource } from './files';
import { loadLora } from './lora';
import { loadModel, type LoadedModel } from './weights';
import { deriveSeed, Rng } from '../lab/interventions/rng';
import { loadTokenizer } from '../lab/prompt/tokenizer';
import { buildPrompt, TemplateError } from '../lab/prompt/template';
import type { ArchSpec } from './types';

const SEED = Number(process.env.FUZZ_SEED ?? 20260513);
/** Mutated copies per model folder, and for the adapter (a few thousand cases in all). */
const CASES_PER_MODEL = 700;
const CASES_ADAPTER = 600;
/** Longest one case may take: loading takes milliseconds, a template running out of its step budget ~1 s on a busy CPU. */
const CASE_MS = 4000;

const FIX = path.resolve(__dirname, '../../fixtures');
type Files = Map<string, Uint8Array>;

function readFolder(name: string): Files {
  const dir = path.join(FIX, name);
  return new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(path.join(dir, f)))]));
}

const enc = new TextEncoder();
const dec = new TextDecoder();

// ---------------------------------------------------------------------------------------------
// Mutations

const EVIL_VALUES: unknown[] = [
  10_000_000,
  1e9,
  2 ** 53,
  2 ** 64,
  1e308,
  -1,
  0,
  0.5,
  -0.0,
  '',
  'x',
  'x'.repeat(5000),
  null,
  true,
  false,
  [],
  {},
  [1, 2, 3],
  [-1, 2 ** 40],
  { a: 1 },
  '(a+)+$',
  '{% for i in range(10**9) %}x{% endfor %}',
];

const EVIL_TEMPLATES = [
  '{% for i in range(10**9) %}x{% endfor %}',
  '{% for i in range(10000) %}{% for j in range(10000) %}{% for k in range(10000) %}x{% endfor %}{% endfor %}{% endfor %}',
  '{% set ns = namespace(s="x") %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}',
  '{% set ns = namespace(a=[1]) %}{% for i in range(64) %}{% set ns.a = ns.a + ns.a %}{% endfor %}',
  '{% set ns = namespace(a=[1]) %}{% for i in range(60) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a }}',
  '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}',
  '{{ messages[0].content | indent(400000000) }}',
  "{{ 'a' * 1000000000 }}",
  '{{ raise_exception("no") }}',
  '{% for m in messages %}{{ m.content }}{{ m.content }}{% endfor %}',
  '{{ messages[0].content }}',
  '{% if %}',
  '{{ x.y.z() }}',
];

const EVIL_PATTERNS = [
  '(a+)+$',
  '([a-z_.0-9]+)+X',
  '(.*)*X',
  '(.*a){20}',
  '(q_proj)\\1',
  '(?=.*q).*',
  '(?i).*',
  '(',
  '.*\\.(q_proj|v_proj)',
  'model\\.layers\\.\\d+\\.self_attn\\.(q|k|v|o)_proj',
  '.*',
  '(a{1000}){1000}',
];

/** Every path to a value inside a JSON document (objects and arrays), up to `maxDepth`. */
function jsonPaths(v: unknown, maxDepth = 6, at: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(at);
  if (at.length >= maxDepth || typeof v !== 'object' || v === null) return out;
  const keys = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  // NOTE: long arrays and big maps (vocab, merges) are sampled through a few entries, not all.
  for (const k of keys.length > 12 ? keys.slice(0, 6).concat(keys.slice(-3)) : keys)
    jsonPaths((v as Record<string | number, unknown>)[k], maxDepth, [...at, k], out);
  return out;
}

function editJson(doc: unknown, rng: Rng): { doc: unknown; what: string } {
  const paths = jsonPaths(doc);
  const p = paths[rng.int(paths.length)];
  const evil = EVIL_VALUES[rng.int(EVIL_VALUES.length)];
  if (p.length === 0) return { doc: evil, what: `root = ${JSON.stringify(evil)?.slice(0, 40)}` };
  const copy = structuredClone(doc) as Record<string | number, unknown>;
  let node = copy;
  for (const k of p.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  const last = p[p.length - 1];
  const del = rng.int(5) === 0;
  if (del && Array.isArray(node)) node.splice(last as number, 1);
  else if (del) delete node[last];
  else node[last] = evil;
  return { doc: copy, what: `${p.join('.')} ${del ? 'deleted' : `= ${JSON.stringify(evil)?.slice(0, 40)}`}` };
}

function headerOf(bytes: Uint8Array): { len: number; json: unknown } | null {
  if (bytes.length < 8) return null;
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  try {
    return { len, json: JSON.parse(dec.decode(bytes.subarray(8, 8 + len))) };
  } catch {
    return null;
  }
}

/** The file with its header replaced (padded to 8 bytes, as writers do), data region unchanged. */
function withHeader(bytes: Uint8Array, oldLen: number, header: unknown, lenDelta = 0): Uint8Array {
  let json = JSON.stringify(header) ?? 'null';
  while ((8 + enc.encode(json).length) % 8 !== 0) json += ' ';
  const h = enc.encode(json);
  const data = bytes.subarray(8 + oldLen);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(Math.max(0, h.length + lenDelta)), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function flipBytes(bytes: Uint8Array, end: number, rng: Rng): { bytes: Uint8Array; what: string } {
  const out = bytes.slice();
  const n = 1 + rng.int(4);
  const at: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = rng.int(Math.max(1, Math.min(end, out.length)));
    out[k] ^= 1 << rng.int(8);
    at.push(k);
  }
  return { bytes: out, what: `flipped bits at ${at.join(',')}` };
}

/** One mutation of one file of the folder: the new folder and a description for failure messages. */
function mutate(files: Files, rng: Rng): { files: Files; what: string } {
  const names = [...files.keys()];
  const name = names[rng.int(names.length)];
  const bytes = files.get(name) as Uint8Array;
  const out = new Map(files);
  const set = (b: Uint8Array, what: string) => {
    out.set(name, b);
    return { files: out, what: `${name}: ${what}` };
  };
  const isTensors = name.endsWith('.safetensors');
  const kind = rng.int(isTensors ? 5 : 4);
  if (kind === 0) {
    const keep = rng.int(bytes.length);
    return set(bytes.slice(0, keep), `truncated to ${keep} of ${bytes.length} bytes`);
  }
  if (isTensors) {
    const h = headerOf(bytes);
    if (!h || kind === 1) {
      const r = flipBytes(bytes, h ? 8 + h.len : 64, rng);
      return set(r.bytes, `header ${r.what}`);
    }
    if (kind === 2) {
      const delta = [1, 2, 3, 7, 8, -1, -2, -3, -7, -8, 4096, -4096][rng.int(12)];
      return set(withHeader(bytes, h.len, h.json, delta), `header length off by ${delta}`);
    }
    if (kind === 3) {
      const wild = [0n, 1n, 2n ** 63n, 2n ** 64n - 1n, BigInt(bytes.length), BigInt(100 * 1024 * 1024 + 1)][
        rng.int(6)
      ];
      const b = bytes.slice();
      new DataView(b.buffer).setBigUint64(0, wild, true);
      return set(b, `header length ${wild}`);
    }
    const e = editJson(h.json, rng);
    return set(withHeader(bytes, h.len, e.doc), `header ${e.what}`);
  }
  if (kind === 1) {
    const r = flipBytes(bytes, bytes.length, rng);
    return set(r.bytes, r.what);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(dec.decode(bytes));
  } catch {
    return set(bytes, 'unchanged');
  }
  if (kind === 3 && name === 'tokenizer_config.json') {
    const evil = EVIL_TEMPLATES[rng.int(EVIL_TEMPLATES.length)];
    return set(
      enc.encode(JSON.stringify({ ...(doc as object), chat_template: evil })),
      `chat_template = ${evil}`,
    );
  }
  if (kind === 3 && name === 'adapter_config.json') {
    const p = EVIL_PATTERNS[rng.int(EVIL_PATTERNS.length)];
    return set(
      enc.encode(JSON.stringify({ ...(doc as object), target_modules: p })),
      `target_modules = ${p}`,
    );
  }
  const e = editJson(doc, rng);
  return set(enc.encode(JSON.stringify(e.doc) ?? 'null'), e.what);
}

// ---------------------------------------------------------------------------------------------
// The loading path and the verdict

/** `null` for anything that is not a typed error with a message. */
function typed(e: unknown): string | null {
  if (e instanceof EngineError && e.message.length > 0) return `EngineError ${e.code}`;
  if (e instanceof TemplateError && e.message.length > 0) return `TemplateError ${e.kind}`;
  return null;
}

const tally = new Map<string, number>();
const count = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);
let cases = 0;
let slowest = 0;
const t0 = performance.now();

afterAll(() => {
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const lines = [...tally].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${String(n).padStart(5)}  ${k}`);
  console.log(
    `model-file fuzz: ${cases} cases in ${secs} s (slowest ${slowest.toFixed(0)} ms), seed ${SEED}\n${lines.join('\n')}`,
  );
});

function sameWeights(a: LoadedModel, b: LoadedModel): string | null {
  for (const [name, t] of b.weights) {
    const got = a.weights.get(name);
    if (!got) return `${name} missing`;
    if (got.data.length !== t.data.length)
      return `${name} has ${got.data.length} values, not ${t.data.length}`;
    for (let i = 0; i < t.data.length; i++)
      if (!Object.is(got.data[i], t.data[i])) return `${name}[${i}] is ${got.data[i]}, not ${t.data[i]}`;
  }
  return null;
}

async function loadFolder(files: Files, id: string, reference: LoadedModel): Promise<void> {
  const source = memorySource(files, id);
  const model = await loadModel(source);
  // NOTE: the mutations never touch a data region, so a load that succeeds must read the same numbers.
  const diff = sameWeights(model, reference);
  if (diff) throw new Error(`loaded, but with other weights: ${diff}`);
  const tok = loadTokenizer(
    await source.readJson('tokenizer.json'),
    await source.readJson('tokenizer_config.json'),
    {
      source: id,
    },
  );
  if (tok.encode('hello world').length === 0)
    throw new Error('the tokenizer encodes "hello world" to nothing');
  if (tok.chatTemplate !== null)
    buildPrompt(tok, {
      conversation: { system: null, user: 'hey I feel bored' },
      templateArgs: { date_string: '26 Jul 2024' },
    });
}

async function runCase(label: string, index: number, load: () => Promise<void>, what: string): Promise<void> {
  const seed = deriveSeed(SEED, index);
  const start = performance.now();
  let verdict: string | null = 'loaded';
  let error: unknown;
  try {
    await load();
  } catch (e) {
    error = e;
    verdict = typed(e);
  }
  const ms = performance.now() - start;
  slowest = Math.max(slowest, ms);
  cases++;
  const where = `${label} case ${index} (FUZZ_SEED=${SEED}, case seed ${seed}): ${what}`;
  expect(
    verdict,
    `${where}\n  → ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
  ).not.toBeNull();
  expect(ms, `${where}\n  → took ${ms.toFixed(0)} ms`).toBeLessThan(CASE_MS);
  count(verdict as string);
}

describe('model folders: every mutated copy is a typed error or a correct load, quickly', () => {
  for (const fixture of ['tiny-llama', 'tiny-qwen3', 'tiny-llama-sharded']) {
    it(`${fixture}: ${CASES_PER_MODEL} mutations`, async () => {
      const files = readFolder(fixture);
      const reference = await loadModel(memorySource(files, fixture));
      for (let i = 0; i < CASES_PER_MODEL; i++) {
        const index = fixture.length * 100_000 + i;
        const { files: mutated, what } = mutate(files, new Rng(deriveSeed(SEED, index)));
        await runCase(fixture, index, () => loadFolder(mutated, fixture, reference), what);
      }
    }, 120_000);
  }

  it(`tiny-llama-lora: ${CASES_ADAPTER} mutations of the adapter`, async () => {
    const files = readFolder('tiny-llama-lora');
    const spec: ArchSpec = (await loadModel(memorySource(readFolder('tiny-llama'), 'tiny-llama'))).spec;
    const reference = await loadLora(memorySource(files, 'tiny-llama-lora'), spec);
    for (let i = 0; i < CASES_ADAPTER; i++) {
      const index = 9_000_000 + i;
      const { files: mutated, what } = mutate(files, new Rng(deriveSeed(SEED, index)));
      await runCase(
        'tiny-llama-lora',
        index,
        async () => {
          const a = await loadLora(memorySource(mutated, 'tiny-llama-lora'), spec);
          for (const [key, br] of a.branches) {
            const ref = reference.branches.get(key);
            if (!ref || ref.a.data.some((x, j) => !Object.is(x, br.a.data[j])))
              throw new Error(`loaded, but branch ${key} differs from the fixture's`);
          }
        },
        what,
      );
    }
  }, 120_000);
});
