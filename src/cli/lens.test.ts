// `piggyback lens` as a user runs it: --json is one LensResult; the table names every condition.
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

describe('piggyback lens', () => {
  it('--json prints the lens of every condition: sites 0 … L, tracked probabilities, top-k', () => {
    const r = cli('lens', 'examples/fixtures-kv-patch.json', '--json', '--top-k', '3');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.mode).toBe('first');
    expect(out.topK).toBe(3);
    expect(out.tracked[0].role).toBe('finetuned');
    const L = out.sites.length - 1;
    expect(out.conditions.map((c: { id: string }) => c.id)).toContain('kv-prefix');
    for (const c of out.conditions) {
      expect(c.error).toBeUndefined();
      const [p] = c.positions;
      expect(p.tracked).toHaveLength(L + 1);
      expect(p.top[L]).toHaveLength(3);
      for (const row of p.tracked) for (const x of row) expect(x).toBeGreaterThanOrEqual(0);
    }
    const table = cli('lens', 'examples/fixtures-kv-patch.json');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/logit lens \(first\)/);
    expect(table.stdout).toMatch(/kv-prefix/);
  });

  it('refuses a bad --positions with the usage', () => {
    const r = cli('lens', 'examples/fixtures-kv-patch.json', '--positions', 'middle');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--positions must be first or answer/);
  });
});
