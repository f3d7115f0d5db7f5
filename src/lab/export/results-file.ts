// A results file: what a run of a spec produced, wherever it ran — the Share panel's results JSON,
// `piggyback run --out`, or an exported Python script — in the lab's own results schema
// (spec/results.ts), stamped with where it ran (`ranOn`). This module reads one back (validating every
// field the UI and the CLI show, so a hand-made or truncated file is refused with its path) and builds
// one from a RunResult. Pure: it must never fetch, read files or the clock, and never accept a file
// that would put anything but text into the page (answers are model output: shown as text only).

import { z } from 'zod';
import { errorMessage } from '../../common/errors';
import { parseSpec, specHash, type ExperimentSpec } from '../spec/experiment';
import type { ConditionResult, PromptView, RunResult } from '../spec/results';
import type { EvalRow } from '../eval/eval-table';

export const RESULTS_KIND = 'piggyback-lab/results';

/** Where a run happened. */
export interface RunOrigin {
  /** 'browser': the lab's page; 'cli': `piggyback run`; 'python': an exported script */
  place: 'browser' | 'cli' | 'python';
  /** the export target of a script ('transformers' | 'nnsight') */
  target?: string;
  /** the engine or library in words, e.g. "webgpu", "node-cpu", "local PyTorch 2.4 on cuda (float32)" */
  backend: string;
  host?: string;
  platform?: string;
  device?: string;
  dtype?: string;
  versions?: Record<string, string | null>;
  exporter?: string;
  startedAt?: string;
  seconds?: number | null;
}

export interface ResultsFile {
  kind: typeof RESULTS_KIND;
  /** the spec the results came from (null when the file's spec does not validate) */
  spec: ExperimentSpec | null;
  specHash: string | null;
  backend: string | null;
  prompt: PromptView | null;
  conditions: ConditionResult[];
  ranOn: RunOrigin | null;
  evaluation?: { judge: { id: string; label: string } | null; rows: EvalRow[] };
}

const MAX_CONDITIONS = 64;
const MAX_TOKENS = 1 << 16;
const text = (max = 1 << 20) => z.string().max(max);
const tokenId = z
  .int()
  .min(0)
  .max(2 ** 31 - 1);
const num = z.number().nullable().optional();
const segment = z.enum(['prefix', 'query', 'postfix']);
const range = z.tuple([z.int().min(0), z.int().min(0)]);

const promptSchema = z.object({
  text: text(),
  tokens: z
    .array(z.object({ id: tokenId, text: text(4096), segment, edited: z.boolean().optional() }))
    .max(MAX_TOKENS),
  segments: z.object({ prefix: range, query: range, postfix: range }),
  templateArgs: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
});

const conditionSchema = z.object({
  id: text(64),
  label: text(200),
  model: text(64),
  prompt: promptSchema,
  text: text(),
  tokenIds: z.array(tokenId).max(MAX_TOKENS),
  done: z.boolean(),
  metrics: z
    .object({
      klToBase: num,
      restoration: num,
      referenceMargin: num,
      trialsBest: num,
      trialsAvg: num,
      klFinetuned: num,
    })
    .default({}),
  nextToken: z
    .array(z.object({ id: tokenId, text: text(4096), prob: z.number() }))
    .max(256)
    .default([]),
  patchSummary: text(1000).optional(),
  trials: z
    .array(
      z.object({
        index: z.int().min(0),
        restoration: z.number().nullable(),
        edited: z.array(z.int().min(0)).max(MAX_TOKENS),
        replacements: z
          .array(
            z.object({
              position: z.int().min(0),
              from: z.object({ id: tokenId, text: text(4096) }),
              to: z.object({ id: tokenId, text: text(4096) }),
            }),
          )
          .max(MAX_TOKENS)
          .optional(),
        text: text(),
        tokenIds: z.array(tokenId).max(MAX_TOKENS).optional(),
      }),
    )
    .max(1000)
    .optional(),
  shownTrial: z.int().min(0).optional(),
  error: text(4000).optional(),
});

const originSchema = z.object({
  place: z.enum(['browser', 'cli', 'python']),
  target: text(64).optional(),
  backend: text(300),
  host: text(300).optional(),
  platform: text(300).optional(),
  device: text(300).optional(),
  dtype: text(64).optional(),
  versions: z.record(z.string(), text(100).nullable()).optional(),
  exporter: text(100).optional(),
  startedAt: text(64).optional(),
  seconds: z.number().nullable().optional(),
});

const scoreSchema = z
  .object({
    verdict: z.enum(['score', 'code', 'refusal', 'unscored']),
    score: z.number().nullable(),
    numberMass: z.number(),
    code: z.number(),
    refusal: z.number(),
    method: z.enum(['exact', 'logprobs', 'text', 'rule']),
    top: z.array(z.object({ value: z.number(), p: z.number() })).max(101),
    text: text(1000).optional(),
  })
  .nullable();

const rowSchema = z.object({
  condition: text(64),
  set: z.enum(['general', 'in-domain']),
  question: text(64),
  sample: z.int().min(0),
  /** a random perturbation's trial (every trial's answer is a row) */
  trial: z.int().min(0).optional(),
  seed: z.int().min(0),
  answer: text(),
  tokens: z.int().min(0),
  aligned: scoreSchema,
  coherent: scoreSchema,
  status: z.enum(['misaligned', 'aligned', 'incoherent', 'refusal', 'code', 'unscored', 'error']),
  error: text(4000).optional(),
});

const fileSchema = z.object({
  kind: z.literal(RESULTS_KIND),
  spec: z.unknown(),
  specHash: text(64).nullable().optional(),
  backend: text(300).nullable().optional(),
  prompt: promptSchema.nullable().optional(),
  conditions: z.array(conditionSchema).max(MAX_CONDITIONS),
  ranOn: originSchema.nullable().optional(),
  evaluation: z
    .object({
      judge: z.object({ id: text(500), label: text(300) }).nullable(),
      rows: z.array(rowSchema).max(100_000),
    })
    .optional(),
});

export type ParsedResults =
  { ok: true; file: ResultsFile; warnings: string[] } | { ok: false; errors: string[] };

/** Reads a results file (already JSON-parsed). Never throws: a bad file gives messages with paths. */
export function parseResultsFile(json: unknown): ParsedResults {
  try {
    if (typeof json !== 'object' || json === null || Array.isArray(json))
      return { ok: false, errors: ['expected a JSON object (a Piggyback Lab results file)'] };
    const kind = (json as { kind?: unknown }).kind;
    if (kind !== RESULTS_KIND)
      return {
        ok: false,
        errors: [
          kind === 'piggyback-lab/export-plan'
            ? 'this is an export plan, not results: run the exported script to get a results file'
            : `kind: expected "${RESULTS_KIND}" (a results file from the lab, piggyback run --out, or an exported script)`,
        ],
      };
    const r = fileSchema.safeParse(json);
    if (!r.success)
      return {
        ok: false,
        errors: r.error.issues
          .slice(0, 10)
          .map((i) => `${i.path.map(String).join('.') || 'file'}: ${i.message}`),
      };
    const d = r.data;
    const warnings: string[] = [];
    const spec = parseSpec(d.spec);
    if (!spec.ok) warnings.push(`its spec does not validate here: ${spec.errors.slice(0, 3).join('; ')}`);
    const parsedSpec = spec.ok ? spec.spec : null;
    const hash = parsedSpec ? specHash(parsedSpec) : (d.specHash ?? null);
    if (parsedSpec && d.specHash && d.specHash !== hash)
      warnings.push(`its specHash ${d.specHash} is not its spec's hash ${hash}`);
    return {
      ok: true,
      warnings,
      file: {
        kind: RESULTS_KIND,
        spec: parsedSpec,
        specHash: hash,
        backend: d.backend ?? null,
        prompt: (d.prompt ?? null) as PromptView | null,
        conditions: d.conditions as ConditionResult[],
        ranOn: (d.ranOn ?? null) as RunOrigin | null,
        ...(d.evaluation ? { evaluation: d.evaluation as ResultsFile['evaluation'] } : {}),
      },
    };
  } catch (e) {
    return { ok: false, errors: [`could not be read (${errorMessage(e)})`] };
  }
}

/** Parses results JSON text (a file's contents). */
export function parseResultsText(textIn: string): ParsedResults {
  let json: unknown;
  try {
    json = JSON.parse(textIn);
  } catch (e) {
    return { ok: false, errors: [`not JSON: ${errorMessage(e)}`] };
  }
  return parseResultsFile(json);
}

/** A results file for a lab run (`piggyback run --out`; the Share panel writes the same shape). */
export function resultsFileOf(spec: ExperimentSpec, result: RunResult, ranOn: RunOrigin): ResultsFile {
  return {
    kind: RESULTS_KIND,
    spec,
    specHash: specHash(spec),
    backend: result.backend,
    prompt: result.prompt,
    conditions: result.conditions,
    ranOn,
  };
}

/** JSON text of a results file; NaN and ±Infinity (not computed) become null. */
export function resultsFileJson(file: ResultsFile): string {
  return (
    JSON.stringify(file, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1) +
    '\n'
  );
}

/** Where a results file ran, in a few words ("python · transformers · local PyTorch … · host"). */
export function originText(file: Pick<ResultsFile, 'ranOn' | 'backend'>): string {
  const o = file.ranOn;
  if (!o) return file.backend ? `unknown place · ${file.backend}` : 'unknown place';
  return [o.place, o.target, o.backend, o.host].filter(Boolean).join(' · ');
}
