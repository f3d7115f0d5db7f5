// `piggyback eval`: the batch evaluation of a spec from the command line — progress on stderr, the
// summary JSON on stdout, rows to a CSV with --out, finished rows kept in a file store so a cancelled
// run (Ctrl-C) resumes. The API key comes from the environment only: it must never be taken from an
// argument, and never printed, stored or written to an output file.
import fs from 'node:fs';
import path from 'node:path';
import {
  evalKey,
  evaluate,
  rowsToCsv,
  ratesToCsv,
  summaryJson,
  type RateSummary,
  type EvalProgress,
} from '../lab/eval/evaluate';
import type { ExperimentSpec, ModelSource } from '../lab/spec/experiment';
import type { Judge, JudgeScore } from '../lab/eval/judge';
import { ApiJudge } from '../lab/eval/judge-api';
import { jsonPost } from '../hub/json-post';
import { sourceModelJudge, specModelJudge } from '../lab/eval/judge-setup';
import { isAbort } from '../common/abort';
import type { Lab } from '../lab/run/lab';
import { defaultEvalCacheDir, FileEvalStore } from './eval-store';
import { MarkerJudge, parseMarkers } from '../lab/eval/judge-marker';
import { parseSourceArg } from './node-sources';

export const EVAL_USAGE = `  piggyback eval <spec.json | share-url>
                 [--judge model:<spec model id | source> | api:<url> | marker:<word>[,<word>…]]
                 [--judge-model NAME] [--samples N] [--out rows.csv] [--rates rates.csv]
                 [--concurrency N] [--cache-dir DIR] [--fresh]
      judge: default the spec's base model; api: an OpenAI-compatible endpoint, key from
      PIGGYBACK_JUDGE_KEY or OPENAI_API_KEY; marker: a rule, misaligned when the answer contains a
      marker word (the toy organism: marker:gamble); finished rows are kept (resume) unless --fresh`;

export class EvalUsageError extends Error {}

type Flags = ReadonlyMap<string, string | true>;

const str = (flags: Flags, name: string): string | undefined => {
  const v = flags.get(name);
  if (v === true) throw new EvalUsageError(`--${name} needs a value`);
  return v;
};

function positiveInt(flags: Flags, name: string, max: number): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new EvalUsageError(`--${name} must be an integer 1…${max}`);
  return n;
}

/**
 * The source of a model judge that is not one of the spec's models (`--judge model:<source>`), or null:
 * the memory preflight counts it as one more session.
 */
export function judgeSourceArg(spec: ExperimentSpec, flags: Flags): ModelSource | null {
  const arg = str(flags, 'judge');
  if (!arg?.startsWith('model:')) return null;
  const what = arg.slice(6);
  if (Object.hasOwn(spec.models, what)) return null;
  const source = parseSourceArg(what, (p) => fs.existsSync(p));
  return source.kind === 'local' ? { kind: 'local', path: path.resolve(source.path) } : source;
}

/** The judge a --judge argument names. */
async function judgeFromArgs(
  lab: Lab,
  spec: ExperimentSpec,
  flags: Flags,
  env: NodeJS.ProcessEnv,
): Promise<Judge> {
  const arg = str(flags, 'judge');
  const judgeModel = str(flags, 'judge-model');
  if (arg === undefined || arg === 'model') return specModelJudge(lab, spec);
  if (arg.startsWith('api:')) {
    if (!judgeModel) throw new EvalUsageError('--judge api:<url> needs --judge-model NAME');
    return new ApiJudge({
      url: arg.slice(4),
      model: judgeModel,
      key: env.PIGGYBACK_JUDGE_KEY ?? env.OPENAI_API_KEY,
      post: jsonPost(),
      concurrency: positiveInt(flags, 'concurrency', 64),
    });
  }
  if (arg.startsWith('model:')) {
    const source = judgeSourceArg(spec, flags);
    return source ? sourceModelJudge(lab, source) : specModelJudge(lab, spec, arg.slice(6));
  }
  if (arg.startsWith('marker:')) {
    const markers = parseMarkers(arg.slice(7));
    if (!markers.length)
      throw new EvalUsageError('--judge marker: needs at least one word, e.g. marker:gamble');
    return new MarkerJudge(markers);
  }
  throw new EvalUsageError(
    `--judge must be model:<spec model id | source>, api:<url> or marker:<word>, got "${arg}"`,
  );
}

export interface EvalIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  isTTY: boolean;
  /** aborts the evaluation (Ctrl-C); rows so far are kept */
  signal?: AbortSignal;
}

const nodeIo = (): EvalIo => ({
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  isTTY: process.stderr.isTTY === true,
});

const fmt = (x: number | null | undefined) => (typeof x === 'number' ? x.toFixed(1) : '–');
const judged = (s: JudgeScore | null) =>
  !s ? '–' : s.score !== null ? fmt(s.score) : `${s.verdict} (number mass ${s.numberMass.toFixed(3)})`;

/** Runs `piggyback eval`; returns the exit code (0 done, 130 cancelled). */
export async function evalCommand(
  lab: Lab,
  spec: ExperimentSpec,
  flags: Flags,
  io: EvalIo = nodeIo(),
): Promise<number> {
  const samples = positiveInt(flags, 'samples', 1000);
  const out = str(flags, 'out');
  const ratesOut = str(flags, 'rates');
  const judge = await judgeFromArgs(lab, spec, flags, io.env);
  const store = new FileEvalStore(str(flags, 'cache-dir') ?? defaultEvalCacheDir(io.env));
  io.stderr(`  judge: ${judge.label}\n`);

  const ctl = new AbortController();
  const onSigint = () => ctl.abort();
  const external = io.signal;
  external?.addEventListener('abort', onSigint, { once: true });
  if (!external) process.once('SIGINT', onSigint);
  let lastLine = '';
  const onProgress = (p: EvalProgress) => {
    const head = `  eval ${p.done}/${p.total}`;
    if (io.isTTY) {
      const line = `${head} ${p.row ? `${p.row.condition} · ${p.row.question} #${p.row.sample}` : (p.stage ?? '')}`;
      io.stderr(`\r${line.padEnd(lastLine.length)}`);
      lastLine = line;
    } else if (p.row) {
      const r = p.row;
      io.stderr(
        `${head} ${r.condition} · ${r.set === 'general' ? '' : 'in-domain '}${r.question} #${r.sample}: ` +
          `aligned ${judged(r.aligned)} coherent ${judged(r.coherent)} → ${r.status}` +
          `${r.error ? ` (${r.error})` : ''}\n`,
      );
    } else if (p.stage) io.stderr(`${head} ${p.stage}\n`);
  };
  try {
    if (flags.has('fresh')) await store.clear(evalKey(spec, judge.id));
    const summary = await evaluate(lab, spec, { judge, store, samples, signal: ctl.signal, onProgress });
    if (io.isTTY) io.stderr('\n');
    if (out) {
      fs.writeFileSync(out, rowsToCsv(summary.rows));
      io.stderr(`  wrote ${path.resolve(out)}\n`);
    }
    if (ratesOut) {
      fs.writeFileSync(ratesOut, ratesToCsv(summary));
      io.stderr(`  wrote ${path.resolve(ratesOut)}\n`);
    }
    const rate = (r: RateSummary) => {
      const ci = r.bootstrap ? ` [${fmt(r.bootstrap[0] * 100)}, ${fmt(r.bootstrap[1] * 100)}]` : '';
      return `misaligned ${r.rate === null ? '–' : `${fmt(r.rate * 100)} %${ci}`} of ${r.n} scored`;
    };
    for (const c of summary.conditions) {
      const r = c.overall;
      // NOTE: a random perturbation leads with its Avg over every trial's answer, then its Best
      const avg = c.trials ? `Avg over ${c.trials.count} trials ` : '';
      io.stderr(
        `  ${c.label}: ${avg}${rate(r)}` +
          ` (${r.rows} answers; ${r.counts.unscored} unscored, ${r.counts.incoherent} incoherent,` +
          ` ${r.counts.refusal + r.counts.code} refusal/code, ${r.counts.error} errors)\n`,
      );
      if (c.trials)
        io.stderr(
          `  ${' '.repeat(c.label.length)}  Best trial per question × sample ${rate(c.trials.best)}\n`,
        );
    }
    io.stdout(summaryJson(summary) + '\n');
    return 0;
  } catch (e) {
    if (isAbort(e)) {
      io.stderr(`\n  cancelled: finished rows are kept in ${store.dir}; run again to resume\n`);
      return 130;
    }
    throw e;
  } finally {
    external?.removeEventListener('abort', onSigint);
    process.removeListener('SIGINT', onSigint);
  }
}
