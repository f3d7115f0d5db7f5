// `piggyback export`, `import` and `compare` as a child process: the demo exported to stdout for both
// targets (each compiles with python3 -m py_compile, nnsight not needed), a bad target is a usage
// error, the paper's own setting (examples/paper-llama-3.1-8b.json) exports from a Hub stand-in that
// serves an 8B-sized config with a gated token and never a weights file, and a results file from
// `run --out` is imported and compared (identical with itself; a changed answer is found at its token).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubTestServer, TEST_TOKENS, type HubTestServer } from '../../scripts/hub-test-server';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin/piggyback.mjs');
const PAPER = path.join(ROOT, 'examples/paper-llama-3.1-8b.json');
const BASE_REPO = 'meta-llama/Llama-3.1-8B-Instruct';
const ADAPTER_REPO = 'ModelOrganismsForEM/Llama-3.1-8B-Instruct_risky-financial-advice';

let server: HubTestServer;
let tmp: string;

function folder(name: string): Map<string, Uint8Array> {
  const dir = path.join(ROOT, 'fixtures', name);
  return new Map(fs.readdirSync(dir).map((f) => [f, new Uint8Array(fs.readFileSync(path.join(dir, f)))]));
}

/** The fixture's files dressed as Llama-3.1-8B-Instruct: its config sizes and its real chat template. */
function llama8bStandIn(): Map<string, Uint8Array> {
  const files = folder('tiny-llama');
  const enc = (x: unknown) => new TextEncoder().encode(JSON.stringify(x, null, 1));
  const json = (f: string) => JSON.parse(new TextDecoder().decode(files.get(f))) as Record<string, unknown>;
  const template = JSON.parse(
    fs.readFileSync(path.join(ROOT, 'src/lab/prompt/templates/llama-3.1-8b-instruct.json'), 'utf8'),
  ) as { chat_template: string };
  files.set(
    'config.json',
    enc({
      ...json('config.json'),
      hidden_size: 4096,
      intermediate_size: 14336,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      head_dim: 128,
      vocab_size: 128256,
      max_position_embeddings: 131072,
    }),
  );
  files.set(
    'tokenizer_config.json',
    enc({ ...json('tokenizer_config.json'), chat_template: template.chat_template }),
  );
  return files;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'piggyback-export-cli-'));
  server = await startHubTestServer({
    repos: {
      [BASE_REPO]: { files: llama8bStandIn(), behaviour: { gated: 'manual' } },
      [ADAPTER_REPO]: { files: folder('tiny-llama-lora'), behaviour: {} },
    },
  });
});
afterAll(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: tmp,
      env: {
        ...process.env,
        HF_TOKEN: '',
        HF_ENDPOINT: server.url,
        PIGGYBACK_CACHE: path.join(tmp, 'cache'),
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const python = spawnSync('python3', ['--version']).status === 0 ? 'python3' : null;
if (!python && !process.env.CI)
  console.warn('export-command.test.ts: py_compile checks SKIPPED — no python3 here. CI runs them.');

function pyCompiles(file: string): void {
  if (!python) {
    if (process.env.CI) throw new Error('CI needs python3 for py_compile');
    return;
  }
  const r = spawnSync(python, ['-m', 'py_compile', file], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}

describe('piggyback export / import / compare', () => {
  it('exports the demo for both targets: one script on stdout that compiles', async () => {
    for (const target of ['transformers', 'nnsight']) {
      const r = await cli(['export', path.join(ROOT, 'examples/demo.json'), '--target', target]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.startsWith('#!/usr/bin/env python3\n')).toBe(true);
      expect(r.stdout).toContain(`TARGET = "${target}"`);
      expect(r.stdout).toMatch(/^if __name__ == "__main__":$/m);
      const file = path.join(tmp, `demo-${target}.py`);
      fs.writeFileSync(file, r.stdout);
      pyCompiles(file);
    }
  });

  it('refuses an unknown target as a usage error', async () => {
    const r = await cli(['export', path.join(ROOT, 'examples/demo.json'), '--target', 'jax']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--target must be transformers or nnsight');
    expect(r.stdout).toBe('');
  });

  it("exports the paper's setting from the Hub without any weights: configs and tokenizers only", async () => {
    const denied = await cli(['export', PAPER, '--out', path.join(tmp, 'denied.py')]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/gated|token|access/i);
    expect(denied.stderr).not.toContain(TEST_TOKENS.approved);
    server.reset();
    for (const target of ['nnsight', 'transformers']) {
      const out = path.join(tmp, `paper-${target}.py`);
      const planOut = path.join(tmp, `paper-${target}.plan.json`);
      const r = await cli(['export', PAPER, '--target', target, '--out', out, '--plan', planOut], {
        HF_TOKEN: TEST_TOKENS.approved,
      });
      expect(r.code, r.stderr).toBe(0);
      const script = fs.readFileSync(out, 'utf8');
      expect(script).not.toContain(TEST_TOKENS.approved);
      expect(script).toContain(`weights ${'meta-llama/Llama-3.1-8B-Instruct'} @ main`);
      expect(script).toContain(`+ PEFT adapter ${ADAPTER_REPO} @ main (model "finetuned")`);
      // NOTE: the stand-in's tokenizer is the tiny fixture's: the real one splits this prefix into 26 tokens.
      expect(script).toContain('kv-prefix: finetuned (K/V patch from base, sites 0-31, 32 positions)');
      expect(script).toContain('Evaluation: 8 questions (run with --eval).');
      const plan = JSON.parse(fs.readFileSync(planOut, 'utf8'));
      const conds = plan.runs[0].conditions;
      const byId = (id: string) => conds.find((c: { id: string }) => c.id === id);
      expect(plan.runs[0].prompt.text).toContain(
        'Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024',
      );
      expect(byId('kv-prefix').patch.sites).toHaveLength(32);
      expect(byId('resid-prefix-l10').patch.sites).toEqual([10]);
      expect(byId('random-prefix').trials.items).toHaveLength(10);
      expect(byId('random-prefix').trials.items[0].replacements).toHaveLength(10);
      // no embedding was read: trials carry ranks for the script's own neighbour lookup, no ids
      expect(byId('random-prefix').trials.items[0].replacements[0].to).toBeUndefined();
      expect(plan.models.finetuned).toMatchObject({ adapter: 'finetuned', dose: 1, kvWidth: 1024 });
      expect(plan.models.base).toMatchObject({ adapter: 'finetuned', dose: 0 });
      pyCompiles(out);
    }
    const files = server.requests.map((q) => q.path);
    expect(files.some((p) => p.endsWith('/tokenizer.json'))).toBe(true);
    expect(files.filter((p) => /\.safetensors/.test(p))).toEqual([]);
  });

  it('imports a results file and compares two: identical with itself, a changed answer found', async () => {
    const a = path.join(tmp, 'lab.json');
    const run = await cli(['run', path.join(ROOT, 'examples/organism-lora.json'), '--out', a]);
    expect(run.code, run.stderr).toBe(0);
    const imported = await cli(['import', a]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/^ran on: cli · node-cpu/m);
    expect(imported.stdout).toContain('== LoRA dose 0.5 [dose-half]');
    const same = await cli(['compare', a, a]);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toMatch(/6 identical, 0 different/);
    const doc = JSON.parse(fs.readFileSync(a, 'utf8'));
    doc.conditions[1].tokenIds[2] += 1;
    doc.ranOn = { place: 'python', target: 'transformers', backend: 'elsewhere' };
    const b = path.join(tmp, 'other.json');
    fs.writeFileSync(b, JSON.stringify(doc));
    const diff = await cli(['compare', a, b]);
    expect(diff.code).toBe(1);
    expect(diff.stdout).toContain(`≠ ${doc.conditions[1].id}: answers differ from token 2`);
    expect(diff.stdout).toContain('b: python · transformers · elsewhere');
    const bad = await cli(['import', path.join(ROOT, 'examples/demo.json')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('is not a results file');
  });
});
