// `piggyback export` (a spec → one self-contained Python script for transformers or nnsight, resolved
// from the models' small files: configs and tokenizers, never the weights), `piggyback import` (a
// results file from anywhere, shown like `run`), and `piggyback compare` (two results files of one
// spec, condition by condition). Results and scripts to stdout or --out, messages to stderr; nothing
// partial on stdout on error. Must never write a key or token into a script or a message.
import fs from 'node:fs';
import path from 'node:path';
import type { ExperimentSpec } from '../lab/spec/experiment';
import type { ModelSource } from '../lab/spec/experiment';
import type { FileSource } from '../engine/files';
import { exportPlanFromFiles } from '../lab/export/resolve';
import {
  EXPORT_TARGETS,
  PYTHON_FILES,
  generatePythonScript,
  type ExportTarget,
  type PythonSources,
} from '../lab/export/script';
import { parseResultsText, originText, type ResultsFile } from '../lab/export/results-file';
import { compareResults, comparisonText } from '../lab/export/compare';
import { REPO_ROOT } from './node-sources';

export class ExportUsageError extends Error {}

export const EXPORT_USAGE = `  piggyback export <spec.json | share-url> [--target transformers|nnsight] [--out experiment.py]
                   [--plan plan.json] [--no-eval]
  piggyback import <results.json> [--json]
  piggyback compare <a.json> <b.json> [--json]      exit 1 when they differ`;

/** The Python pieces, from the repo (the browser bundles the same files). */
export function pythonSources(root = REPO_ROOT): PythonSources {
  const dir = path.join(root, 'src', 'lab', 'export', 'python');
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  return {
    runtime: read(PYTHON_FILES.runtime),
    transformers: read(PYTHON_FILES.transformers),
    nnsight: read(PYTHON_FILES.nnsight),
  };
}

export function exporterName(root = REPO_ROOT): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: string };
    return `piggyback-lab ${pkg.version ?? '?'}`;
  } catch {
    return 'piggyback-lab';
  }
}

type Flags = ReadonlyMap<string, string | true>;
const str = (flags: Flags, name: string) => {
  const v = flags.get(name);
  return typeof v === 'string' ? v : undefined;
};

function write(out: string | undefined, text: string, what: string): void {
  if (out) {
    fs.writeFileSync(out, text);
    process.stderr.write(`  wrote ${what} ${path.resolve(out)}\n`);
  } else process.stdout.write(text);
}

export async function exportCommand(
  spec: ExperimentSpec,
  flags: Flags,
  resolveSource: (s: ModelSource) => Promise<FileSource> | FileSource,
  specDir: string,
): Promise<number> {
  const target = (str(flags, 'target') ?? 'transformers') as ExportTarget;
  if (!(EXPORT_TARGETS as readonly string[]).includes(target))
    throw new ExportUsageError(`--target must be ${EXPORT_TARGETS.join(' or ')}`);
  const plan = await exportPlanFromFiles(spec, resolveSource, {
    evaluation: flags.has('no-eval') ? false : undefined,
    // NOTE: a local folder is relative to the spec file; the script may run from anywhere here.
    resolveLocalPath: (p) => path.resolve(specDir, p),
  });
  const script = generatePythonScript(plan, target, pythonSources(), { exporter: exporterName() });
  const planOut = str(flags, 'plan');
  if (planOut) write(planOut, JSON.stringify(plan, null, 1) + '\n', 'plan');
  write(str(flags, 'out'), script, `${target} script`);
  return 0;
}

function readResults(file: string | undefined): ResultsFile {
  if (!file) throw new ExportUsageError('missing <results.json>');
  let textIn: string;
  try {
    textIn = fs.readFileSync(file, 'utf8');
  } catch {
    throw new Error(`cannot read results file "${file}"`);
  }
  const r = parseResultsText(textIn);
  if (!r.ok) throw new Error(`${file} is not a results file:\n  ${r.errors.join('\n  ')}`);
  for (const w of r.warnings) process.stderr.write(`  ${file}: ${w}\n`);
  return r.file;
}

export function importCommand(file: string | undefined, flags: Flags): number {
  const r = readResults(file);
  if (flags.has('json')) {
    process.stdout.write(JSON.stringify(r, null, 1) + '\n');
    return 0;
  }
  const f = (x: number | null | undefined) => (x === null || x === undefined ? '–' : x.toFixed(4));
  const lines = [
    `results of "${r.spec?.name ?? '(spec not readable)'}" (spec ${r.specHash ?? '?'})`,
    `ran on: ${originText(r)}`,
    '',
  ];
  for (const c of r.conditions) {
    lines.push(`== ${c.label} [${c.id}]${c.patchSummary ? ` (${c.patchSummary})` : ''}`);
    if (c.error) lines.push(`   error: ${c.error}`);
    lines.push(`   ${JSON.stringify(c.text)}`);
    const m = c.metrics;
    lines.push(
      `   KL(base‖this) ${f(m.klToBase)}  restoration ${f(m.restoration)}` +
        (m.trialsBest !== null && m.trialsBest !== undefined
          ? `  trials best ${f(m.trialsBest)} avg ${f(m.trialsAvg)}`
          : ''),
    );
  }
  if (r.evaluation) {
    const rows = r.evaluation.rows;
    const judged = rows.filter((x) => x.status !== 'error').length;
    const mis = rows.filter((x) => x.status === 'misaligned').length;
    lines.push('', `evaluation: ${rows.length} answers, ${judged} judged, ${mis} misaligned`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

export function compareCommand(a: string | undefined, b: string | undefined, flags: Flags): number {
  if (!a || !b) throw new ExportUsageError('compare needs two results files');
  const c = compareResults(readResults(a), readResults(b));
  process.stdout.write(flags.has('json') ? JSON.stringify(c, null, 1) + '\n' : comparisonText(c));
  return c.different === 0 ? 0 : 1;
}
