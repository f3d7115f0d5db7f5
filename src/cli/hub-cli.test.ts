// The `piggyback` command against the local Hub stand-in: inspect by URL and by hub id (gated with
// and without a token), run a LoRA organism + base from the Hub layout (second run from the cache
// with no request), and the cache command.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  startHubTestServer,
  TEST_REPOS,
  TEST_TOKENS,
  type HubTestServer,
} from '../../scripts/hub-test-server';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin/piggyback.mjs');

let server: HubTestServer;
let cacheDir: string;
let tmp: string;

beforeAll(async () => {
  server = await startHubTestServer();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'piggyback-cli-hub-'));
  cacheDir = path.join(tmp, 'cache');
});
afterAll(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => server.reset());

/** Runs the CLI as a child (async, so this process keeps serving the Hub stand-in). */
function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, HF_TOKEN: '', HF_ENDPOINT: server.url, PIGGYBACK_CACHE: cacheDir, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('piggyback + the Hub stand-in', () => {
  it('inspect <server URL>/<repo>: architecture, memory, Hub details; weights not downloaded', async () => {
    const r = await cli(['inspect', `${server.url}/${TEST_REPOS.llama}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/config\.json 801 B ✓/);
    expect(r.stderr).not.toMatch(/piggyback:/);
    const info = JSON.parse(r.stdout);
    expect(info.kind).toBe('model');
    expect(info.architecture.numLayers).toBe(2);
    expect(info.hub).toMatchObject({
      endpoint: server.url,
      repo: TEST_REPOS.llama,
      revision: 'main',
      gated: false,
    });
    expect(info.hub.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(info.hub.downloadBytes).toBeGreaterThan(500_000);
    expect(info.memory.q4.totalBytes).toBeLessThan(info.memory.fp32.totalBytes);
    expect(info.sample.prefix.length).toBeGreaterThan(0);
    const weightGets = server.requests.filter(
      (q) => q.path.endsWith('model.safetensors') && q.method === 'GET',
    );
    expect(weightGets.every((q) => q.range !== null)).toBe(true);
  });

  it('inspect an adapter by hub id: its declared base and the mapping to confirm', async () => {
    const r = await cli(['inspect', TEST_REPOS.mirrorOrganism]);
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.kind).toBe('adapter');
    expect(info.adapter.baseModel).toBe(TEST_REPOS.mirror);
    expect(info.baseMapping.declared).toBe(TEST_REPOS.mirror);
  });

  it('gated repo: a message that says what to do, then works with HF_TOKEN or --token; the token is never printed', async () => {
    const no = await cli(['inspect', TEST_REPOS.gated]);
    expect(no.code).toBe(1);
    expect(no.stdout).toBe('');
    expect(no.stderr).toContain(
      `${TEST_REPOS.gated} is gated: accept its license on the Hub (${server.url}/${TEST_REPOS.gated}) and paste a read token`,
    );

    const pending = await cli(['inspect', TEST_REPOS.gated, '--token', TEST_TOKENS.unapproved]);
    expect(pending.code).toBe(1);
    expect(pending.stderr).toMatch(/has no access yet/);
    expect(pending.stderr).not.toContain(TEST_TOKENS.unapproved);

    const ok = await cli(['inspect', TEST_REPOS.gated], { HF_TOKEN: TEST_TOKENS.approved });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).hub.gated).toBe('manual');
    expect(ok.stdout + ok.stderr).not.toContain(TEST_TOKENS.approved);
  });

  it('the token goes only to HF_ENDPOINT: a URL source elsewhere is read without it', async () => {
    const r = await cli(['inspect', `${server.url}/${TEST_REPOS.gated}`], {
      HF_ENDPOINT: 'https://huggingface.invalid',
      HF_TOKEN: TEST_TOKENS.approved,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is gated/);
    expect(server.requests.every((q) => q.auth === 'none')).toBe(true);
  });

  it('404: a missing repo says to check the spelling', async () => {
    const r = await cli(['inspect', 'nobody/nothing-here']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /nobody\/nothing-here was not found on http:\/\/127\.0\.0\.1:\d+: check the spelling/,
    );
  });

  it('run: a LoRA organism on its base from the Hub layout; the second run needs no request', async () => {
    const spec = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples/fixtures-lora-dose.json'), 'utf8')) as {
      models: Record<string, unknown>;
      conditions: { id: string }[];
    };
    spec.models = {
      base: { source: { kind: 'hub', repo: TEST_REPOS.llama }, role: 'base' },
      finetuned: {
        source: { kind: 'hub', repo: TEST_REPOS.llama },
        adapter: { kind: 'hub', repo: TEST_REPOS.lora },
        role: 'finetuned',
      },
    };
    spec.conditions = spec.conditions.slice(0, 2);
    const file = path.join(tmp, 'hub-lora.json');
    fs.writeFileSync(file, JSON.stringify(spec));
    const runCache = path.join(tmp, 'run-cache');
    const first = await cli(['run', file, '--json'], { PIGGYBACK_CACHE: runCache });
    expect(first.stderr).toMatch(/model\.safetensors/);
    expect(first.code).toBe(0);
    const out = JSON.parse(first.stdout);
    expect(out.conditions.map((c: { id: string }) => c.id)).toEqual(['base', 'finetuned']);
    for (const c of out.conditions) expect(c.error).toBeNull();

    // the same spec from local fixture folders gives the same tokens
    const local = await cli(['run', path.join(ROOT, 'examples/fixtures-lora-dose.json'), '--json']);
    const localOut = JSON.parse(local.stdout);
    expect(out.conditions[1].token_ids).toEqual(localOut.conditions[1].token_ids);

    server.reset();
    const second = await cli(['run', file, '--json'], { PIGGYBACK_CACHE: runCache });
    expect(second.code).toBe(0);
    expect(server.requests).toEqual([]);
    expect(second.stderr).toMatch(/\(cached\)/);
    expect(JSON.parse(second.stdout).conditions[1].token_ids).toEqual(out.conditions[1].token_ids);

    const list = await cli(['cache', 'list'], { PIGGYBACK_CACHE: runCache });
    const listed = JSON.parse(list.stdout);
    expect(listed.entries.map((e: { repo: string }) => e.repo)).toContain(TEST_REPOS.lora);
    const clear = await cli(['cache', 'clear', TEST_REPOS.lora], { PIGGYBACK_CACHE: runCache });
    expect(clear.stdout).toMatch(/freed/);
    const after = JSON.parse((await cli(['cache', 'list'], { PIGGYBACK_CACHE: runCache })).stdout);
    expect(after.entries.map((e: { repo: string }) => e.repo)).not.toContain(TEST_REPOS.lora);
    expect(after.entries.length).toBeGreaterThan(0);
  });
});
