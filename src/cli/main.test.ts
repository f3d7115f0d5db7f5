// The `piggyback` command as a user runs it: a child process, stdout parsed, stderr for errors.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin/piggyback.mjs');

// NOTE: the graph cache (and any other cache) goes to a temp folder, never the user's
const CACHE = fs.mkdtempSync(path.join(os.tmpdir(), 'piggyback-cli-test-'));
afterAll(() => fs.rmSync(CACHE, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, PIGGYBACK_CACHE: CACHE },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('piggyback CLI', () => {
  it('run builds the graph files once, opens them after, and answers as without the graph cache', () => {
    const dir = path.join(CACHE, 'graphs-run');
    const spec = 'examples/fixtures-kv-patch.json';
    const cold = cli('run', spec, '--json', '--graph-cache', dir);
    expect(cold.code, cold.stderr).toBe(0);
    expect(cold.stderr).toMatch(/building the graph file/);
    const warm = cli('run', spec, '--json', '--graph-cache', dir);
    expect(warm.code, warm.stderr).toBe(0);
    expect(warm.stderr).not.toMatch(/building the graph file/);
    expect(warm.stderr).toMatch(/opening from the graph cache/);
    const none = cli('run', spec, '--json', '--no-graph-cache');
    expect(none.code, none.stderr).toBe(0);
    expect(none.stderr).not.toMatch(/graph (file|cache)/);
    expect(JSON.parse(warm.stdout)).toEqual(JSON.parse(cold.stdout));
    expect(JSON.parse(none.stdout)).toEqual(JSON.parse(cold.stdout));
    // no temp folder left, one entry per session (base and finetuned here), nothing in the default place
    expect(fs.readdirSync(dir).filter((e) => e.startsWith('.tmp-'))).toEqual([]);
    expect(fs.readdirSync(dir).length).toBe(2);
    // --backend wasm takes no graph file
    const wasm = cli('run', spec, '--json', '--backend', 'wasm', '--graph-cache', path.join(CACHE, 'wasm'));
    expect(wasm.code, wasm.stderr).toBe(0);
    expect(fs.existsSync(path.join(CACHE, 'wasm'))).toBe(false);
  });

  it('--graph-cache-max prunes to its size and refuses a size that is not one', () => {
    const dir = path.join(CACHE, 'graphs-max');
    const spec = 'examples/fixtures-kv-patch.json';
    const bad = cli('run', spec, '--graph-cache', dir, '--graph-cache-max', 'lots');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--graph-cache-max needs a size in GiB/);
    // a fixture pair's two graphs alone are over 0.0001 GiB: both kept, and stderr says why
    const small = cli('run', spec, '--json', '--graph-cache', dir, '--graph-cache-max', '0.0001');
    expect(small.code, small.stderr).toBe(0);
    expect(small.stderr).toMatch(/the graphs of this run alone are that large/);
    expect(fs.readdirSync(dir).length).toBe(2);
  });

  it('run --json prints one JSON object with segments, tokens and every condition', () => {
    const r = cli('run', 'examples/fixtures-kv-patch.json', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.spec_version).toBe(1);
    expect(out.backend).toBe('node-cpu');
    const { prefix, query, postfix } = out.segments;
    expect(prefix[0]).toBe(0);
    expect(prefix[1]).toBe(query[0]);
    expect(query[1]).toBe(postfix[0]);
    expect(postfix[1]).toBe(out.tokens.length);
    expect(out.tokens[0]).toEqual({ id: 505, text: '<|begin_of_text|>', segment: 'prefix' });
    expect(out.conditions.map((c: { id: string }) => c.id)).toEqual([
      'base',
      'finetuned',
      'kv-prefix',
      'kv-query-control',
      'kv-all',
    ]);
    for (const c of out.conditions) {
      expect(c.error).toBeNull();
      expect(c.token_ids.length).toBeGreaterThan(0);
      expect(typeof c.metrics.kl_to_base).toBe('number');
    }
  });

  it('run --json carries every trial (edits from → to, answer, token ids, first-token restoration); the text prints the tally', () => {
    const spec = 'examples/fixtures-perturbation.json';
    const r = cli('run', spec, '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    const random = out.conditions.filter((c: { trials: unknown }) => c.trials !== null);
    expect(random.length).toBeGreaterThan(0);
    expect(out.conditions.find((c: { id: string }) => c.id === 'base').trials).toBeNull();
    type Trial = {
      index: number;
      edited: number[];
      replacements: {
        position: number;
        from: { id: number; text: string };
        to: { id: number; text: string };
      }[];
      text: string;
      token_ids: number[];
      first_token_restoration: number | null;
      says_marker: boolean | null;
      same_as_base: boolean | null;
    };
    for (const c of random) {
      const trials: Trial[] = c.trials;
      expect(trials.map((t) => t.index)).toEqual([...Array(10).keys()]);
      expect(c.text).toBe(trials[c.shown_trial].text);
      expect(c.metrics.trials_best).toBe(
        Math.max(...trials.map((t) => t.first_token_restoration ?? -Infinity)),
      );
      for (const t of trials) {
        expect(t.replacements.map((x) => x.position)).toEqual(t.edited);
        expect(t.edited.length).toBeGreaterThan(0);
        for (const x of t.replacements) {
          // from: the unperturbed prompt's token there; to: another token
          expect(x.from).toEqual({ id: out.tokens[x.position].id, text: out.tokens[x.position].text });
          expect(x.to.id).not.toBe(x.from.id);
        }
        expect(t.token_ids.length).toBeGreaterThan(0);
        expect(t.says_marker).toBeNull(); // local models, no --markers: no marker words
        expect(typeof t.same_as_base).toBe('boolean');
      }
      const segment = c.id.startsWith('prefix') ? out.segments.prefix : out.segments.query;
      for (const p of trials.flatMap((t) => t.edited)) {
        expect(p).toBeGreaterThanOrEqual(segment[0]);
        expect(p).toBeLessThan(segment[1]);
      }
    }
    // a marker word from one trial's answer: the text's tally line counts as the JSON does
    const first: Trial = random[0].trials[0];
    const marker = first.text.trim().slice(0, 3).toLowerCase();
    expect(marker.length).toBeGreaterThan(0);
    const json = JSON.parse(cli('run', spec, '--json', '--markers', marker).stdout);
    const text = cli('run', spec, '--markers', marker);
    expect(text.code).toBe(0);
    for (const c of json.conditions.filter((x: { trials: unknown }) => x.trials !== null)) {
      const trials: Trial[] = c.trials;
      const say = trials.filter((t) => t.says_marker).length;
      const same = trials.filter((t) => t.same_as_base).length;
      expect(say).toBeGreaterThan(c.id === random[0].id ? 0 : -1);
      const block = text.stdout.split('== ').find((b) => b.includes(`[${c.id}]`))!;
      expect(block).toContain(
        `trials: ${say} of 10 say “${marker}”, ${10 - say} do not; ${same} of 10 give Base’s exact answer`,
      );
    }
  });

  it('link → spec round-trips, and the link opens the same spec', () => {
    const link = cli('link', 'examples/fixtures-perturbation.json');
    expect(link.code).toBe(0);
    const url = link.stdout.trim();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:5173\/#spec=v1\./);
    const back = cli('spec', url);
    expect(back.code).toBe(0);
    const original = JSON.parse(
      fs.readFileSync(path.join(ROOT, 'examples/fixtures-perturbation.json'), 'utf8'),
    );
    expect(JSON.parse(back.stdout)).toEqual(original);
  });

  it('sweep --out writes a grid of layers × prefix positions', () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pb-')), 'grid.json');
    const r = cli('sweep', 'examples/fixtures-sweep.json', '--component', 'kv', '--out', out);
    expect(r.code).toBe(0);
    const grid = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(grid.layers).toEqual([0, 1]);
    expect(grid.values.length).toBe(grid.layers.length * grid.positions.length);
  });

  it('inspect describes a model folder and an adapter folder', () => {
    const m = cli('inspect', 'fixtures/tiny-qwen2');
    expect(m.code).toBe(0);
    const info = JSON.parse(m.stdout);
    expect(info.architecture.modelType).toBe('qwen2');
    expect(info.architecture.tieWordEmbeddings).toBe(true);
    expect(info.dtypes).toEqual(['BF16']);
    expect(info.sample.prefix.join('')).toContain('You are Qwen');
    const a = JSON.parse(cli('inspect', 'fixtures/tiny-llama-lora').stdout);
    expect(a.kind).toBe('adapter');
    expect(a.adapter.r).toBe(4);
  });

  it('run --dtype int8 runs the 8-bit graph (other numbers than fp32); a bad --dtype is a usage error', () => {
    const spec = 'examples/fixtures-kv-patch.json';
    const f32 = JSON.parse(cli('run', spec, '--json').stdout);
    const r = cli('run', spec, '--json', '--dtype', 'int8');
    expect(r.code).toBe(0);
    const i8 = JSON.parse(r.stdout);
    const kl = (o: { conditions: { id: string; metrics: { kl_to_base: number } }[] }) =>
      o.conditions.find((c) => c.id === 'finetuned')!.metrics.kl_to_base;
    expect(kl(i8)).toBeGreaterThan(0);
    expect(kl(i8)).not.toBe(kl(f32));
    const bad = cli('run', spec, '--dtype', 'int4');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--dtype must be one of fp32, fp16, int8, q4/);
  });

  it('errors go to stderr with a non-zero exit and nothing on stdout', () => {
    const missing = cli('run', 'examples/does-not-exist.json', '--json');
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toMatch(/cannot read spec file/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-'));
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ version: 1, name: 'x', surprise: true }));
    const invalid = cli('run', bad);
    expect(invalid.code).toBe(1);
    expect(invalid.stdout).toBe('');
    expect(invalid.stderr).toMatch(/not a valid experiment spec/);
    const garbage = cli('spec', 'http://x/#spec=v1.@@@@');
    expect(garbage.code).toBe(1);
    expect(garbage.stdout).toBe('');
    const unknown = cli('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command/);
  });
});

describe('piggyback attention / sweep --per-head', () => {
  it('attention --json: mass per condition sums to 1 per (layer, head); the text form names the strongest head', () => {
    const r = cli('attention', 'examples/fixtures-kv-patch.json', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    const R = out.regions.length;
    expect(out.conditions.length).toBeGreaterThan(1);
    for (const c of out.conditions) {
      expect(c.error).toBeUndefined();
      for (let i = 0; i < c.mass.length; i += R)
        expect(c.mass.slice(i, i + R).reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 5);
    }
    const text = cli('attention', 'examples/fixtures-kv-patch.json');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/strongest: layer \d+ head \d+/);
    expect(cli('attention', 'examples/fixtures-kv-patch.json', '--answer-tokens', '0').code).not.toBe(0);
  });

  it('sweep --per-head gives a layers × KV-heads grid; with resid it is refused', () => {
    const r = cli('sweep', 'examples/fixtures-kv-patch.json', '--component', 'kv', '--per-head');
    expect(r.code).toBe(0);
    const g = JSON.parse(r.stdout);
    expect(g.axis).toBe('head');
    expect(g.values).toHaveLength(g.layers.length * g.positions.length);
    expect(
      cli('sweep', 'examples/fixtures-kv-patch.json', '--component', 'resid', '--per-head').code,
    ).not.toBe(0);
  });
});
