// The generated scripts: snapshots of both targets for the demo (a change to what gets exported shows
// up in review), every target and Python piece compiles (python3 -m py_compile: the nnsight script
// compiles without nnsight installed), the embedded plan reads back exactly — also a query with
// quotes, triple quotes, backslashes and non-ASCII — and the script is pure ASCII and holds no key.
// py_compile skips loudly locally without python3 and fails in CI instead.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pythonSources } from '../../cli/export-command';
import { REPO_ROOT as REPO_ROOT_FOR_TESTS, resolveNodeSource } from '../../cli/node-sources';
import { defaultSpec } from '../spec/experiment';
import { exportPlanFromFiles } from './resolve';
import { EXPORT_TARGETS, generatePythonScript, readableJson } from './script';

const python = spawnSync('python3', ['--version']).status === 0 ? 'python3' : null;
const inCI = Boolean(process.env.CI);
if (!python && !inCI)
  console.warn('script.test.ts: py_compile SKIPPED — no python3 here (apt-get install python3). CI runs it.');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'piggyback-script-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const opts = { exporter: 'piggyback-lab (test)' };
const plan = (spec = defaultSpec()) =>
  exportPlanFromFiles(spec, (s) => resolveNodeSource(s, REPO_ROOT_FOR_TESTS));

function embeddedPlan(script: string): unknown {
  const m = /^PLAN_JSON = r'''([\s\S]*?)'''$/m.exec(script);
  if (!m) throw new Error('no PLAN_JSON literal');
  return JSON.parse(m[1]);
}

function compile(file: string): void {
  if (!python) {
    if (inCI) throw new Error('CI needs python3 for py_compile');
    return;
  }
  // python3 -m py_compile, with the bytecode written to the temp folder rather than next to the source
  const code = 'import py_compile,sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)';
  const r = spawnSync(python, ['-c', code, file, path.join(tmp, `${path.basename(file)}c`)], {
    encoding: 'utf8',
  });
  expect(r.status, `${file}: ${r.stderr}`).toBe(0);
}

describe('the exported Python script', () => {
  for (const target of EXPORT_TARGETS) {
    it(`${target}: the demo's script is the snapshot, compiles, and embeds the plan exactly`, async () => {
      const p = await plan();
      const script = generatePythonScript(p, target, pythonSources(), opts);
      expect(script).toMatchSnapshot();
      expect(embeddedPlan(script)).toEqual(JSON.parse(JSON.stringify(p)));
      const file = path.join(tmp, `demo-${target}.py`);
      fs.writeFileSync(file, script);
      compile(file);
    });
  }

  it('every Python piece compiles on its own', () => {
    const dir = path.join(REPO_ROOT_FOR_TESTS, 'src/lab/export/python');
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.py'))) compile(path.join(dir, f));
  });

  it("reads back a query with quotes, ''' , backslashes and non-ASCII; the script is ASCII", async () => {
    const s = defaultSpec();
    s.conversation.user = `it's "odd" ''' \\ \\n é 日本 😀 {answer} ${'${x}'}`;
    s.name = 'Quotes """ and ünïcode';
    const p = await plan(s);
    for (const target of EXPORT_TARGETS) {
      const script = generatePythonScript(p, target, pythonSources(), opts);
      expect(/^[\x20-\x7e\n]*$/.test(script), 'ASCII only (a Windows console prints it too)').toBe(true);
      expect(embeddedPlan(script)).toEqual(JSON.parse(JSON.stringify(p)));
      const file = path.join(tmp, `odd-${target}.py`);
      fs.writeFileSync(file, script);
      compile(file);
      if (python) {
        // Python's own json.loads of the literal gives the same query back
        const r = spawnSync(
          python,
          [
            '-c',
            'import ast,json,sys;t=ast.parse(open(sys.argv[1]).read());' +
              'v=[n.value.value for n in t.body if isinstance(n,ast.Assign) and n.targets[0].id=="PLAN_JSON"][0];' +
              'sys.stdout.write(json.dumps(json.loads(v)["spec"]["conversation"]["user"]))',
            file,
          ],
          { encoding: 'utf8' },
        );
        expect(r.status, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout)).toBe(s.conversation.user);
      }
    }
  });

  it('readableJson keeps scalar arrays on one line and escapes what a raw literal cannot hold', () => {
    expect(readableJson({ a: [1, 2, 3], b: { c: "it's" } })).toBe(
      '{\n "a": [1, 2, 3],\n "b": {"c": "it\\u0027s"}\n}',
    );
  });

  it('never holds a key: keys are read from the environment when the script runs', async () => {
    const script = generatePythonScript(await plan(), 'nnsight', pythonSources(), opts);
    expect(script).toContain('os.environ.get("NDIF_API_KEY")');
    expect(script).toContain('os.environ.get("PIGGYBACK_JUDGE_KEY") or os.environ.get("OPENAI_API_KEY")');
    expect(script).not.toMatch(/set_default_api_key\(/);
    expect(script).not.toMatch(/(api_key|token)\s*=\s*["'][^"']+["']/i);
  });
});
