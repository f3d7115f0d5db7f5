// The `piggyback` command: the same lab and engine as the browser, in Node. Results go to stdout,
// progress and errors to stderr; on error nothing partial is printed to stdout and the exit code is 1.
import fs from 'node:fs';
import path from 'node:path';
import { errorMessage } from '../common/errors';
import { configureOrt } from '../engine/session';
import { EngineError } from '../engine/errors';
import { redactToken } from '../hub/hub-api';
import { parseSpec, type ExperimentSpec, type ModelSource } from '../lab/spec/experiment';
import { decodeLink, encodeLink } from '../lab/spec/link';
import { baseModelId, Lab } from '../lab/run/lab';
import type { LensResult, RunResult, TrialResult } from '../lab/spec/results';
import { DEMO_MARKERS, markerIn, parseMarkers } from '../lab/eval/judge-marker';
import { evalCommand, EvalUsageError, EVAL_USAGE, judgeSourceArg } from './eval';
import { inspectModel } from './inspect';
import { preflightMemory } from './preflight';
import { cacheCommand } from './cache-command';
import { defaultGraphCacheDir, FileGraphStore, sourceIdentity } from './graph-cache';
import type { FileSource } from '../engine/files';
import { cliHubOptions, HUB_USAGE, parseSourceArg, resolveNodeSource } from './node-sources';
import {
  compareCommand,
  exportCommand,
  ExportUsageError,
  EXPORT_USAGE,
  importCommand,
} from './export-command';
import { resultsFileJson, resultsFileOf } from '../lab/export/results-file';
import os from 'node:os';
import { ATTENTION_USAGE, formatAttention } from './attention';

const USAGE = `piggyback — the Piggyback Lab from the command line

usage:
  piggyback run <spec.json | share-url> [--json] [--markers WORDS] [--backend node-cpu|wasm] [--dtype fp32|int8|q4] [--out results.json]
  piggyback sweep <spec.json | share-url> --component resid|kv [--per-head] [--dtype fp32|int8|q4] [--out grid.json]
  piggyback drift <spec.json | share-url> [--dtype fp32|int8|q4]
  piggyback lens <spec.json | share-url> [--json] [--positions first|answer] [--top-k N]
${ATTENTION_USAGE}
${EVAL_USAGE}
${EXPORT_USAGE}
  piggyback inspect <model folder | URL | owner/name[@rev] | demo:demo-base>
  piggyback link <spec.json> [--base https://…/]
  piggyback spec <share-url>

graph cache (run, sweep, drift, lens, attention, eval; node-cpu):
  --graph-cache DIR  keep built graphs here (default: graphs/ in the cache folder, PIGGYBACK_CACHE)
  --no-graph-cache   build the graph in memory each time
  --graph-cache-max GIB  least recently used graphs go past this size (default 16; a 0.5B LoRA pair: 5.7)
  --no-prepack       open sessions without MLAS weight prepacking: a graph file opens in ~2 s instead
                     of ~20 s and holds no packed copy, but decode runs ~2x slower (BENCHMARKS.md)

${HUB_USAGE}
`;

const DEFAULT_LINK_BASE = 'http://127.0.0.1:5173/';

class UsageError extends Error {}

interface Args {
  positional: string[];
  flags: Map<string, string | true>;
}

/** Flags that never take a value (the next word stays positional). */
const BOOLEAN_FLAGS = new Set([
  'json',
  'no-cache',
  'refresh',
  'no-eval',
  'per-head',
  'no-graph-cache',
  'no-prepack',
]);

function parseArgs(argv: string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const [k, v] = a.slice(2).split('=', 2);
      if (v !== undefined) flags.set(k, v);
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--') && !BOOLEAN_FLAGS.has(k))
        flags.set(k, argv[++i]);
      else flags.set(k, true);
    } else positional.push(a);
  }
  return { positional, flags };
}

function flag(args: Args, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** A spec from a file path or a share link. Local model paths resolve against `specDir(arg)`. */
function loadSpecArg(arg: string | undefined): ExperimentSpec {
  if (!arg) throw new UsageError('missing <spec.json | share-url>');
  if (arg.includes('#spec=') || arg.startsWith('spec=')) {
    const d = decodeLink(arg);
    if (!d.ok)
      throw new Error(
        `bad share link: ${d.error.message}${d.error.issues ? `\n  ${d.error.issues.join('\n  ')}` : ''}`,
      );
    return d.spec;
  }
  let text: string;
  try {
    text = fs.readFileSync(arg, 'utf8');
  } catch {
    throw new Error(`cannot read spec file "${arg}"`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${arg} is not valid JSON: ${errorMessage(e)}`);
  }
  const parsed = parseSpec(json);
  if (!parsed.ok) throw new Error(`${arg} is not a valid experiment spec:\n  ${parsed.errors.join('\n  ')}`);
  return parsed.spec;
}

const DTYPES = ['fp32', 'fp16', 'int8', 'q4'] as const;

/** The spec to run: `--dtype` (run, sweep, drift, eval, lens, attention) overrides its runtime.dtype. */
function labSpecArg(args: Args, arg: string | undefined): ExperimentSpec {
  const spec = loadSpecArg(arg);
  const d = args.flags.get('dtype');
  if (d === undefined) return spec;
  const dtype = DTYPES.find((x) => x === d);
  if (!dtype) throw new UsageError(`--dtype must be one of ${DTYPES.join(', ')}`);
  return { ...spec, runtime: { ...spec.runtime, dtype } };
}

/** Local model paths in a spec file are relative to the file's folder; in a link, to the cwd. */
function specDir(arg: string | undefined): string {
  if (!arg || arg.includes('#spec=') || arg.startsWith('spec=')) return process.cwd();
  return path.dirname(path.resolve(arg));
}

/**
 * The memory preflight (preflight.ts): every session of the spec planned together from configs and
 * adapter headers, before anything is downloaded; throws when they cannot fit.
 */
async function checkMemory(
  args: Args,
  spec: ExperimentSpec,
  baseDir: string,
  judge?: ModelSource | null,
): Promise<void> {
  const backend = flag(args, 'backend') === 'wasm' ? 'wasm' : 'node-cpu';
  const hubOpts = cliHubOptions(args.flags);
  await preflightMemory(spec, {
    resolveSource: (s) => resolveNodeSource(s, baseDir, { ...hubOpts, mode: 'ranges' }),
    backend,
    ...(judge ? { judge } : {}),
  });
}

/**
 * The graph cache of a lab command (graph-cache.ts): `--graph-cache DIR`, else `graphs/` in the cache
 * folder; none with `--no-graph-cache` or on `--backend wasm` (onnxruntime-web takes no file path).
 */
function graphCacheOf(args: Args, backend: string): FileGraphStore | null {
  if (args.flags.has('no-graph-cache') || backend !== 'node-cpu') return null;
  const given = args.flags.get('graph-cache');
  if (given === true) throw new UsageError('--graph-cache needs a folder (or use --no-graph-cache)');
  const dir = given !== undefined ? path.resolve(given) : defaultGraphCacheDir();
  const max = args.flags.get('graph-cache-max');
  let maxBytes: number | undefined;
  if (max !== undefined) {
    const gb = typeof max === 'string' && /^\d+(\.\d+)?$/.test(max) ? Number(max) : NaN;
    if (!Number.isFinite(gb))
      throw new UsageError('--graph-cache-max needs a size in GiB, e.g. --graph-cache-max 20');
    maxBytes = gb * 1024 ** 3;
  }
  return new FileGraphStore(dir, {
    log: (line) => process.stderr.write(`  ${line}\n`),
    ...(maxBytes !== undefined ? { maxBytes } : {}),
  });
}

function makeLab(args: Args, baseDir: string): Lab {
  const backend = flag(args, 'backend') ?? 'node-cpu';
  if (backend !== 'node-cpu' && backend !== 'wasm')
    throw new UsageError(`--backend must be node-cpu or wasm`);
  configureOrt({ numThreads: 1 });
  const store = graphCacheOf(args, backend);
  // NOTE: what each resolved source is, for the graph key (graph-cache.ts sourceIdentity)
  const kinds = new WeakMap<FileSource, ModelSource['kind']>();
  return new Lab({
    resolveSource: async (s) => {
      const files = await resolveNodeSource(s, baseDir, { ...cliHubOptions(args.flags), prefetch: true });
      kinds.set(files, s.kind);
      return files;
    },
    ...(store
      ? {
          graphStore: {
            store,
            identify: async (files: FileSource) => {
              const kind = kinds.get(files);
              return kind ? sourceIdentity(kind, files) : null;
            },
          },
        }
      : {}),
    // NOTE: prepacking stays on by default: off, decode is ~2x slower (BENCHMARKS.md, the graph in a file)
    ...(args.flags.has('no-prepack') ? { sessionConfig: { 'session.disable_prepacking': '1' } } : {}),
    backend,
    onProgress: (p) => {
      if (p.loaded === p.total) process.stderr.write(`  ${p.model}: ${p.stage} done\n`);
    },
  });
}

/** The reference Base answer for trial tallies: the first plain condition on the base model. */
function baseAnswer(spec: ExperimentSpec, result: RunResult): string | null {
  const base = baseModelId(spec);
  const c = spec.conditions.find(
    (x) => x.model === base && !x.perturbation && !x.patch && x.loraScale === undefined,
  );
  const r = c && result.conditions.find((x) => x.id === c.id);
  return r && !r.error ? r.text : null;
}

/** The marker words a run's trial tally uses: --markers, else “gamble” on the embedded demo, else none. */
function runMarkers(args: Args, spec: ExperimentSpec): string[] {
  const typed = flag(args, 'markers');
  if (typed !== undefined) return parseMarkers(typed);
  const demo = Object.values(spec.models).every((m) => m.source.kind === 'demo');
  return demo ? parseMarkers(DEMO_MARKERS) : [];
}

/**
 * “trials: 3 of 10 say “gamble”, 7 do not; 2 of 10 give Base’s exact answer” — how the whole answers of
 * every trial fall, not only the shown (best at the first token) one.
 */
export function trialTally(
  trials: readonly TrialResult[],
  markers: readonly string[],
  base: string | null,
): string {
  const n = trials.length;
  const parts: string[] = [];
  if (markers.length) {
    const say = trials.filter((t) => markerIn(t.text, markers) !== null).length;
    parts.push(`${say} of ${n} say ${markers.map((m) => `“${m}”`).join(' or ')}, ${n - say} do not`);
  }
  if (base !== null) {
    const same = trials.filter((t) => t.text.trim() === base.trim()).length;
    parts.push(`${same} of ${n} give Base’s exact answer`);
  }
  return `trials: ${parts.length ? parts.join('; ') : `${n} answers (no marker words, no Base answer to compare)`}`;
}

function printRun(result: RunResult, json: boolean, tally: { markers: string[]; base: string | null }): void {
  if (json) {
    const p = result.prompt;
    const out = {
      spec_version: result.specVersion,
      backend: result.backend,
      segments: p.segments,
      tokens: p.tokens.map((t) => ({ id: t.id, text: t.text, segment: t.segment })),
      conditions: result.conditions.map((c) => ({
        id: c.id,
        label: c.label,
        model: c.model,
        text: c.text,
        token_ids: c.tokenIds,
        metrics: {
          kl_to_base: c.metrics.klToBase ?? null,
          restoration: c.metrics.restoration ?? null,
          reference_margin: c.metrics.referenceMargin ?? null,
          trials_best: c.metrics.trialsBest ?? null,
          trials_avg: c.metrics.trialsAvg ?? null,
        },
        next_token: c.nextToken,
        patch: c.patchSummary ?? null,
        // a random perturbation: every trial, in order (the condition's text is the shown trial's)
        trials:
          c.trials?.map((t) => ({
            index: t.index,
            edited: t.edited,
            replacements: (t.replacements ?? []).map((r) => ({
              position: r.position,
              from: r.from,
              to: r.to,
            })),
            text: t.text,
            token_ids: t.tokenIds ?? null,
            first_token_restoration: t.restoration,
            says_marker: tally.markers.length ? markerIn(t.text, tally.markers) !== null : null,
            same_as_base: tally.base === null ? null : t.text.trim() === tally.base.trim(),
          })) ?? null,
        shown_trial: c.shownTrial ?? null,
        error: c.error ?? null,
      })),
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  const lines: string[] = [`backend: ${result.backend}`, ''];
  for (const c of result.conditions) {
    lines.push(`== ${c.label} [${c.id}]${c.patchSummary ? ` (${c.patchSummary})` : ''}`);
    if (c.error) lines.push(`   error: ${c.error}`);
    lines.push(`   ${JSON.stringify(c.text)}`);
    const m = c.metrics;
    const f = (x: number | null | undefined) => (x === null || x === undefined ? '–' : x.toFixed(4));
    lines.push(
      `   KL(base‖this) ${f(m.klToBase)}  restoration ${f(m.restoration)}` +
        (m.trialsBest !== null && m.trialsBest !== undefined
          ? `  trials best ${f(m.trialsBest)} avg ${f(m.trialsAvg)} (first-token restoration)`
          : ''),
    );
    if (c.trials?.length) lines.push(`   ${trialTally(c.trials, tally.markers, tally.base)}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const [cmd, arg] = args.positional;
  try {
    switch (cmd) {
      case 'run': {
        const spec = labSpecArg(args, arg);
        await checkMemory(args, spec, specDir(arg));
        const lab = makeLab(args, specDir(arg));
        try {
          const json = args.flags.has('json');
          const result = await lab.run(spec, {
            onCondition: (c) => process.stderr.write(`  ✓ ${c.id}\n`),
            // every trial's whole answer: the tally line, --json's trials, and the results file (so
            // `piggyback compare` can check each)
            trialAnswers: true,
          });
          printRun(result, json, { markers: runMarkers(args, spec), base: baseAnswer(spec, result) });
          const out = flag(args, 'out');
          if (out) {
            // NOTE: the lab's results file (as the Share panel's), for `piggyback compare`.
            const origin = { place: 'cli' as const, backend: result.backend, host: os.hostname() };
            fs.writeFileSync(out, resultsFileJson(resultsFileOf(spec, result, origin)));
            process.stderr.write(`  wrote ${path.resolve(out)}\n`);
          }
        } finally {
          await lab.dispose();
        }
        return 0;
      }
      case 'sweep': {
        const spec = labSpecArg(args, arg);
        await checkMemory(args, spec, specDir(arg));
        const component = flag(args, 'component') ?? 'kv';
        if (component !== 'kv' && component !== 'resid')
          throw new UsageError('--component must be resid or kv');
        const perHead = args.flags.has('per-head');
        if (perHead && component !== 'kv') throw new UsageError('--per-head patches K/V: use --component kv');
        const lab = makeLab(args, specDir(arg));
        try {
          const grid = await lab.sweep(spec, {
            component,
            perHead,
            onProgress: (_r, done, total) => process.stderr.write(`\r  sweep ${done}/${total}`),
          });
          process.stderr.write('\n');
          const text =
            JSON.stringify(
              grid,
              (_k, v: unknown) => (typeof v === 'number' && Number.isNaN(v) ? null : v),
              2,
            ) + '\n';
          const out = flag(args, 'out');
          if (out) {
            fs.writeFileSync(out, text);
            process.stderr.write(`  wrote ${path.resolve(out)}\n`);
          } else process.stdout.write(text);
        } finally {
          await lab.dispose();
        }
        return 0;
      }
      case 'drift': {
        const spec = labSpecArg(args, arg);
        await checkMemory(args, spec, specDir(arg));
        const lab = makeLab(args, specDir(arg));
        try {
          process.stdout.write(JSON.stringify(await lab.drift(spec), null, 2) + '\n');
        } finally {
          await lab.dispose();
        }
        return 0;
      }
      case 'lens': {
        const spec = labSpecArg(args, arg);
        const positions = flag(args, 'positions');
        if (positions !== undefined && positions !== 'first' && positions !== 'answer')
          throw new UsageError('--positions must be first or answer');
        const topKArg = flag(args, 'top-k');
        const topK = topKArg === undefined ? undefined : Number(topKArg);
        if (topK !== undefined && !(Number.isInteger(topK) && topK >= 1 && topK <= 50))
          throw new UsageError('--top-k must be an integer from 1 to 50');
        const lensSpec: ExperimentSpec = {
          ...spec,
          lens: { ...spec.lens, ...(positions ? { positions } : {}), ...(topK ? { topK } : {}) },
        };
        const lab = makeLab(args, specDir(arg));
        try {
          const r = await lab.lens(lensSpec);
          process.stdout.write(args.flags.has('json') ? JSON.stringify(r) + '\n' : lensTable(r));
        } finally {
          await lab.dispose();
        }
        return 0;
      }
      case 'attention': {
        const spec = labSpecArg(args, arg);
        const n = flag(args, 'answer-tokens');
        const answerTokens = n === undefined ? undefined : Number(n);
        if (
          answerTokens !== undefined &&
          !(Number.isInteger(answerTokens) && answerTokens >= 1 && answerTokens <= 64)
        )
          throw new UsageError('--answer-tokens must be an integer in 1..64');
        const lab = makeLab(args, specDir(arg));
        try {
          const r = await lab.attention(spec, {
            answerTokens,
            onProgress: (done, total) => process.stderr.write(`\r  attention ${done}/${total}`),
          });
          process.stderr.write('\n');
          process.stdout.write(
            args.flags.has('json') ? JSON.stringify(r, null, 2) + '\n' : formatAttention(r),
          );
        } finally {
          await lab.dispose();
        }
        return 0;
      }
      case 'eval': {
        const spec = labSpecArg(args, arg);
        await checkMemory(args, spec, specDir(arg), judgeSourceArg(spec, args.flags));
        const lab = makeLab(args, specDir(arg));
        try {
          return await evalCommand(lab, spec, args.flags);
        } catch (e) {
          throw e instanceof EvalUsageError ? new UsageError(e.message) : e;
        } finally {
          await lab.dispose();
        }
      }
      case 'inspect': {
        if (!arg) throw new UsageError('missing <model source>');
        const source = parseSourceArg(arg, (p) => fs.existsSync(p));
        const hubOpts = cliHubOptions(args.flags);
        const info = await inspectModel(
          await resolveNodeSource(source, process.cwd(), { ...hubOpts, mode: 'ranges' }),
        );
        process.stdout.write(JSON.stringify(info, null, 2) + '\n');
        return 0;
      }
      case 'cache':
        return await cacheCommand(args.positional.slice(1), args.flags);
      case 'link': {
        const spec = loadSpecArg(arg);
        const r = encodeLink(spec, flag(args, 'base') ?? DEFAULT_LINK_BASE);
        if (!r.ok) throw new Error(r.error.message);
        process.stdout.write(r.url + '\n');
        return 0;
      }
      case 'export': {
        const spec = loadSpecArg(arg);
        const hubOpts = cliHubOptions(args.flags);
        try {
          const dir = specDir(arg);
          return await exportCommand(spec, args.flags, (s) => resolveNodeSource(s, dir, hubOpts), dir);
        } catch (e) {
          throw e instanceof ExportUsageError ? new UsageError(e.message) : e;
        }
      }
      case 'import':
      case 'compare':
        try {
          return cmd === 'import'
            ? importCommand(arg, args.flags)
            : compareCommand(arg, args.positional[2], args.flags);
        } catch (e) {
          throw e instanceof ExportUsageError ? new UsageError(e.message) : e;
        }
      case 'spec': {
        if (!arg) throw new UsageError('missing <share-url>');
        const d = decodeLink(arg);
        if (!d.ok)
          throw new Error(
            `bad share link: ${d.error.message}${d.error.issues ? `\n  ${d.error.issues.join('\n  ')}` : ''}`,
          );
        process.stdout.write(JSON.stringify(d.spec, null, 2) + '\n');
        return 0;
      }
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(USAGE);
        return cmd ? 0 : 2;
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`piggyback: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    const msg = e instanceof EngineError ? `${e.code}: ${e.message}` : errorMessage(e);
    // NOTE: no token in any message, even one a library echoed.
    process.stderr.write(`piggyback: ${redactToken(msg, cliHubOptions(args.flags).token)}\n`);
    return 1;
  }
}

/** The lens as text: per condition and position, per site the tracked tokens' probabilities and the top-1. */
export function lensTable(r: LensResult): string {
  const q = (t: string) => JSON.stringify(t);
  const lines = [
    `logit lens (${r.mode}); tracked: ${r.tracked.map((t) => `${q(t.text)} (${t.role})`).join(', ')}`,
  ];
  for (const c of r.conditions) {
    lines.push('', `${c.label} [${c.id}]${c.note ? ` · ${c.note}` : ''}`);
    if (c.error) {
      lines.push(`  error: ${c.error}`);
      continue;
    }
    for (const p of c.positions) {
      lines.push(`  after ${q(p.label)} (position ${p.position})${p.next ? ` → ${q(p.next.text)}` : ''}`);
      lines.push(`  site  ${r.tracked.map((t) => q(t.text).padStart(10)).join(' ')}  top-1`);
      r.sites.forEach((site, i) => {
        const top = p.top[i][0];
        lines.push(
          `  ${String(site).padStart(4)}  ${p.tracked[i].map((x) => x.toFixed(4).padStart(10)).join(' ')}  ${top ? `${q(top.text)} ${top.prob.toFixed(4)}` : ''}`,
        );
      });
    }
  }
  return lines.join('\n') + '\n';
}
