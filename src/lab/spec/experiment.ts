// The experiment spec: the one versioned JSON document that UI state, share links, saved files and the
// CLI all read and write (docs/architecture.md "Where an experiment goes").
// Types, the runtime schema, forward
// migration, canonical JSON and a stable hash for result caches.
// It must never hold results, tokens, keys or anything a model computed, never throw from parseSpec,
// and never accept a field it does not know (unknown fields are refused with their path).

import { z } from 'zod';
import { errorMessage } from '../../common/errors';
import { migrateSpec, MigrationError } from './migrations';

export const SPEC_VERSION = 1;

/** The embedded demo models: the only place their names are spelled. */
export const DEMO_BASE = 'demo-base';
export const DEMO_FINETUNED = 'demo-finetuned';
/** The toy organism's TReFT finetune, its interleaving finetune, and its PEFT LoRA adapter (on demo-base). */
export const DEMO_TREFT = 'demo-treft';
export const DEMO_INTERLEAVE = 'demo-interleave';
export const DEMO_LORA = 'demo-lora';
/** The Qwen3-template organism pair (prefix only `<|im_start|>user\n`): the postfix-carrier test. */
export const DEMO_QWEN3_BASE = 'demo-qwen3-base';
export const DEMO_QWEN3_FINETUNED = 'demo-qwen3-finetuned';
export const DEMO_MODEL_NAMES = [
  DEMO_BASE,
  DEMO_FINETUNED,
  DEMO_TREFT,
  DEMO_INTERLEAVE,
  DEMO_LORA,
  DEMO_QWEN3_BASE,
  DEMO_QWEN3_FINETUNED,
] as const;

export const SEGMENT_NAMES = ['prefix', 'query', 'postfix'] as const;
/** What a patch replaces: the attention keys/values ('kv') or the residual stream ('resid'). */
export const PATCH_COMPONENTS = ['kv', 'resid'] as const;
export const METRIC_NAMES = [
  'next_token',
  'kl_to_base',
  'restoration',
  'reference_margin',
  'prefix_drift',
] as const;

export type SegmentName = (typeof SEGMENT_NAMES)[number];
export type PatchComponent = (typeof PATCH_COMPONENTS)[number];
export type MetricName = (typeof METRIC_NAMES)[number];
export type DemoModelName = (typeof DEMO_MODEL_NAMES)[number];

// ---------------------------------------------------------------------------------------------------
// Types: the parsed, canonical spec (every default filled in).

export type ModelSource =
  | { kind: 'demo'; name: DemoModelName }
  | { kind: 'hub'; repo: string; revision?: string }
  | { kind: 'url'; url: string }
  | { kind: 'local'; path: string };

export type ModelRole = 'base' | 'finetuned' | 'treft' | 'other';

export interface ModelEntry {
  source: ModelSource;
  /** A PEFT LoRA adapter on top of `source`. */
  adapter?: ModelSource;
  role?: ModelRole;
}

export interface RuntimeSettings {
  device: 'auto' | 'webgpu' | 'wasm' | 'node';
  /** int8: 8-bit weights for WASM / CPU (integer GEMM); q4: 4-bit, for WebGPU */
  dtype: 'fp32' | 'fp16' | 'int8' | 'q4';
}

export type TemplateArgValue = string | number | boolean;

export interface ConversationSpec {
  /**
   * null: send no system message, so the template's default applies (Qwen2.5's "You are Qwen…", none for
   * Qwen3). A string — even '' — is sent as the system message: '' is an explicitly empty one.
   */
  system: string | null;
  /** The query: the last (and, in v1, only) user message. */
  user: string;
  /** Extra chat-template variables, e.g. `date_string` (pins Llama-3.2's date), `enable_thinking`. */
  templateArgs: Record<string, TemplateArgValue>;
}

/** A token by id, or by a text that encodes to one or more ids (see perturb.ts's `applyEdits`). */
export type TokenRef = { id: number } | { text: string };

/**
 * One manual edit. `index` counts from the start of `segment` and always refers to the UNEDITED prompt,
 * so a list of edits is order-independent: `insert` goes before token `index` (index = segment length
 * appends to the segment), `replace` / `delete` act on token `index`.
 */
export type TokenEdit =
  | { op: 'replace'; segment: SegmentName; index: number; token: TokenRef }
  | { op: 'insert'; segment: SegmentName; index: number; token: TokenRef }
  | { op: 'delete'; segment: SegmentName; index: number };

export type Perturbation =
  | { kind: 'edits'; edits: TokenEdit[] }
  /** k tokens of the segment → one of their top-n embedding neighbours, over trials (docs/science.md). */
  | { kind: 'random'; segment: SegmentName; k: number; n: number; trials: number; seed: number };

/** 'all', a list, or an inclusive range (patch.ts). */
export type LayerSelection = 'all' | number[] | { from: number; to: number };
export type PositionSelection = SegmentName | 'query-control' | { explicit: number[] };

export interface PatchSettings {
  component: PatchComponent;
  layers: LayerSelection;
  positions: PositionSelection;
  /** The model whose activations are patched in. */
  source: string;
  /**
   * K/V only: patch just these KV heads (GQA: KV-head indices); the others keep the patched model's own
   * K/V (src/lab/interventions/patch.ts `setHeadPatchCell`). Absent = every head.
   */
  heads?: number[];
}

export interface Condition {
  id: string;
  label: string;
  model: string;
  /** LoRA dose, 0 = base … 1 = finetuned; only for a model with an adapter. */
  loraScale?: number;
  perturbation?: Perturbation;
  patch?: PatchSettings;
}

export interface GenerationSettings {
  maxNewTokens: number;
  /** 0 = greedy (the paper's setting). */
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
  stop?: string[];
}

export interface References {
  aligned: string[];
  misaligned: string[];
}

/** One evaluation question; `id` names it in tables and exports. */
export interface EvalQuestion {
  id: string;
  text: string;
}

/** Judge prompts with `{question}` and `{answer}` placeholders (each at least once). */
export interface JudgePrompts {
  aligned: string;
  coherent: string;
}

/** The batch evaluation (src/lab/eval/evaluate.ts): questions × conditions × samples, judged. */
export interface EvaluationSettings {
  /** The general set: the paper's eight first-plot questions, or a custom list. */
  questions: 'em-first-plot' | EvalQuestion[];
  /** Answers per question and condition (seeded: sample s of a question has its own seed). */
  samples: number;
  /** In-domain questions (the finetune's own domain): their misaligned rate is ID in EM-F1. */
  inDomain?: EvalQuestion[];
  /** Default: Betley et al.'s aligned / coherent prompts (src/lab/eval/em_questions.json). */
  judgePrompts?: JudgePrompts;
}

/**
 * The logit lens (Lab.lens): each condition's residual stream entering every layer through the final
 * norm and the unembedding, at the first answer position or at every position of a fixed answer.
 */
export interface LensSettings {
  /** top tokens kept per layer (default 5) */
  topK?: number;
  /**
   * 'first' (default): the position predicting the first answer token; 'answer': every position of the
   * finetuned model's greedy answer (its first `answerTokens` tokens, teacher-forced in every condition)
   */
  positions?: 'first' | 'answer';
  /** answer tokens in 'answer' mode (default 8) */
  answerTokens?: number;
  /**
   * extra tracked tokens, as text (each text's first token); always tracked: the finetuned and the base
   * model's first answer tokens
   */
  track?: string[];
}

/**
 * The attention view (Lab.attention): attention mass from the answer positions onto the prompt's
 * segments, per layer and head, for every condition.
 */
export interface AttentionSettings {
  /**
   * answer positions read: 1 = only the position that predicts the first answer token (the prompt's
   * last token); n > 1 adds the first n − 1 generated answer tokens (greedy under the spec's settings)
   */
  answerTokens: number;
}

export interface ExperimentSpec {
  version: typeof SPEC_VERSION;
  name: string;
  models: Record<string, ModelEntry>;
  runtime: RuntimeSettings;
  conversation: ConversationSpec;
  conditions: Condition[];
  generation: GenerationSettings;
  metrics: MetricName[];
  references?: References;
  evaluation?: EvaluationSettings;
  lens?: LensSettings;
  attention?: AttentionSettings;
}

// ---------------------------------------------------------------------------------------------------
// Schema.

const UINT32_MAX = 0xffffffff;
const MAX_MODELS = 8;
const MAX_CONDITIONS = 32;
const MAX_TEXT = 8000;

const int = (min: number, max: number) => z.int().min(min).max(max);
const uint32 = int(0, UINT32_MAX);

const slug = z
  .string()
  .max(64)
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, 'expected a slug: lowercase letters, digits and inner hyphens');
const modelId = z
  .string()
  .max(32)
  .regex(
    /^[a-z][a-z0-9-]*$/,
    'expected a model id: lowercase letters, digits and hyphens, starting with a letter',
  );

const hubName = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$/;

/**
 * Query-parameter names that carry credentials (signed URLs, API keys): never in a spec. A name is one
 * of these words, or ends in one after `_`/`-`/`.` (`hf_token`, `client_secret`, `private_token`,
 * `x-api-key`), or is a signed-URL family (`X-Amz-…`, `X-Goog-…`); `tokenizer` or `keyword` are not.
 */
export const SECRET_PARAM =
  /^(?:.*[-_.])?(?:token|access[-_]?token|api[-_]?key|apikey|key|sig|signature|secret|password|passwd|pwd|auth|authorization|credentials?|jwt|bearer|session(?:[-_]?id)?|sid)$|^(?:x-amz-|x-goog-).*/i;

function checkUrl(value: string, ctx: z.core.$RefinementCtx<string>): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected an absolute http(s) URL' });
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    ctx.addIssue({ code: 'custom', message: `expected an http(s) URL, got ${url.protocol}` });
  if (url.username || url.password)
    ctx.addIssue({
      code: 'custom',
      message: 'a URL with a user name or password is refused (no credentials in specs)',
    });
  for (const name of url.searchParams.keys())
    if (SECRET_PARAM.test(name))
      ctx.addIssue({ code: 'custom', message: `URL parameter "${name}" looks like a credential; refused` });
}

const sourceSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ kind: z.literal('demo'), name: z.enum(DEMO_MODEL_NAMES) }),
    z.strictObject({
      kind: z.literal('hub'),
      repo: z
        .string()
        .max(200)
        .refine((r) => {
          const parts = r.split('/');
          return parts.length === 2 && parts.every((p) => hubName.test(p) && !p.includes('..'));
        }, 'expected a hub repo "owner/name"'),
      revision: z
        .string()
        .max(256)
        .regex(/^[A-Za-z0-9._/-]+$/, 'expected a branch, tag or commit')
        .refine((r) => !r.includes('..'), 'a revision may not contain ".."')
        .optional(),
    }),
    z.strictObject({ kind: z.literal('url'), url: z.string().max(2048).superRefine(checkUrl) }),
    z.strictObject({
      kind: z.literal('local'),
      path: z
        .string()
        .min(1)
        .max(1024)
        .refine((p) => !p.includes('\0'), 'a path may not contain NUL'),
    }),
  ],
  { error: 'expected a model source: {kind: "demo" | "hub" | "url" | "local", …}' },
);

const modelEntrySchema = z.strictObject({
  source: sourceSchema,
  adapter: sourceSchema.optional(),
  role: z.enum(['base', 'finetuned', 'treft', 'other']).optional(),
});

const TEMPLATE_ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const RESERVED_TEMPLATE_ARGS = new Set([
  'messages',
  'add_generation_prompt',
  'raise_exception',
  'strftime_now',
  'namespace',
  'range',
  'true',
  'false',
  'none',
  'True',
  'False',
  'None',
]);

const conversationSchema = z.strictObject({
  system: z.string().max(MAX_TEXT).nullable().default(null),
  user: z.string().max(MAX_TEXT),
  templateArgs: z
    .record(
      z
        .string()
        .regex(TEMPLATE_ARG_NAME, 'expected a template variable name')
        .refine((k) => !RESERVED_TEMPLATE_ARGS.has(k), 'reserved by the chat-template renderer'),
      z.union([z.string().max(1000), z.number(), z.boolean()], {
        error: 'expected a string, number or boolean',
      }),
    )
    .refine((r) => Object.keys(r).length <= 16, 'at most 16 template arguments')
    .default({}),
});

const segment = z.enum(SEGMENT_NAMES);
const tokenRef = z.union(
  [z.strictObject({ id: int(0, 2 ** 31 - 1) }), z.strictObject({ text: z.string().min(1).max(256) })],
  { error: 'expected a token: {id} or {text}' },
);
const editIndex = int(0, 65535);

const editSchema = z.discriminatedUnion(
  'op',
  [
    z.strictObject({ op: z.literal('replace'), segment, index: editIndex, token: tokenRef }),
    z.strictObject({ op: z.literal('insert'), segment, index: editIndex, token: tokenRef }),
    z.strictObject({ op: z.literal('delete'), segment, index: editIndex }),
  ],
  { error: 'expected an edit: {op: "replace" | "insert" | "delete", …}' },
);

const perturbationSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ kind: z.literal('edits'), edits: z.array(editSchema).min(1).max(256) }),
    z.strictObject({
      kind: z.literal('random'),
      segment,
      k: int(1, 512).default(10),
      n: int(1, 64).default(5),
      trials: int(1, 100).default(10),
      seed: uint32.default(0),
    }),
  ],
  { error: 'expected a perturbation: {kind: "edits" | "random", …}' },
);

const LAYER_MAX = 1023;
const uniqueInts = (max: number, maxLength: number) =>
  z
    .array(int(0, max))
    .min(1)
    .max(maxLength)
    .refine((xs) => new Set(xs).size === xs.length, 'duplicate entries');

const patchSchema = z.strictObject({
  component: z.enum(PATCH_COMPONENTS),
  layers: z.union(
    [
      z.literal('all'),
      uniqueInts(LAYER_MAX, LAYER_MAX + 1),
      z
        .strictObject({ from: int(0, LAYER_MAX), to: int(0, LAYER_MAX) })
        .refine((r) => r.from <= r.to, 'from must be ≤ to (the range is inclusive)'),
    ],
    { error: 'expected layers: "all", a list of layer numbers, or {from, to}' },
  ),
  positions: z.union(
    [z.enum([...SEGMENT_NAMES, 'query-control']), z.strictObject({ explicit: uniqueInts(65535, 4096) })],
    { error: 'expected positions: "prefix" | "query" | "postfix" | "query-control" | {explicit: [...]}' },
  ),
  source: modelId.default('base'),
  heads: uniqueInts(1023, 1024).optional(),
});

const conditionSchema = z.strictObject({
  id: slug,
  label: z.string().min(1).max(80),
  model: modelId,
  loraScale: z.number().min(0).max(1).optional(),
  perturbation: perturbationSchema.optional(),
  patch: patchSchema.optional(),
});

const generationSchema = z.strictObject({
  maxNewTokens: int(1, 4096).default(64),
  temperature: z.number().min(0).max(5).default(0),
  topK: int(1, 1_000_000).optional(),
  topP: z.number().gt(0).max(1).optional(),
  seed: uint32.default(0),
  stop: z.array(z.string().min(1).max(64)).max(16).optional(),
});

const referenceList = z.array(z.string().min(1).max(2000)).min(1).max(16);

const MAX_EVAL_QUESTIONS = 64;
const evalQuestion = z.strictObject({
  id: z
    .string()
    .max(64)
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'expected a question id: lowercase letters, digits, "_" and "-"'),
  text: z.string().min(1).max(MAX_TEXT),
});
const evalQuestions = z.array(evalQuestion).min(1).max(MAX_EVAL_QUESTIONS);
const judgePrompt = z
  .string()
  .max(MAX_TEXT)
  .refine((p) => p.includes('{question}') && p.includes('{answer}'), 'needs {question} and {answer}');

const evaluationSchema = z
  .strictObject({
    questions: z
      .union([z.literal('em-first-plot'), evalQuestions], {
        error: 'expected questions: "em-first-plot" or a list of {id, text}',
      })
      .default('em-first-plot'),
    samples: int(1, 1000).default(1),
    inDomain: evalQuestions.optional(),
    judgePrompts: z.strictObject({ aligned: judgePrompt, coherent: judgePrompt }).optional(),
  })
  .superRefine((e, ctx) => {
    const seen = new Set<string>();
    const check = (list: EvalQuestion[], key: 'questions' | 'inDomain') =>
      list.forEach((q, i) => {
        if (seen.has(q.id))
          ctx.addIssue({ code: 'custom', path: [key, i, 'id'], message: `duplicate question id "${q.id}"` });
        seen.add(q.id);
      });
    if (Array.isArray(e.questions)) check(e.questions, 'questions');
    if (e.inDomain) check(e.inDomain, 'inDomain');
  });

const specSchema = z
  .strictObject({
    version: z.literal(SPEC_VERSION),
    name: z.string().min(1).max(120),
    models: z
      .record(modelId, modelEntrySchema)
      .refine((m) => Object.keys(m).length <= MAX_MODELS, `at most ${MAX_MODELS} models`),
    runtime: z
      .strictObject({
        device: z.enum(['auto', 'webgpu', 'wasm', 'node']).default('auto'),
        dtype: z.enum(['fp32', 'fp16', 'int8', 'q4']).default('fp32'),
      })
      .default({ device: 'auto', dtype: 'fp32' }),
    conversation: conversationSchema,
    conditions: z.array(conditionSchema).min(1).max(MAX_CONDITIONS),
    generation: generationSchema.default({ maxNewTokens: 64, temperature: 0, seed: 0 }),
    metrics: z
      .array(z.enum(METRIC_NAMES))
      .refine((xs) => new Set(xs).size === xs.length, 'duplicate metrics')
      .default(['next_token', 'kl_to_base', 'restoration']),
    references: z.strictObject({ aligned: referenceList, misaligned: referenceList }).optional(),
    evaluation: evaluationSchema.optional(),
    lens: z
      .strictObject({
        topK: int(1, 50).optional(),
        positions: z.enum(['first', 'answer']).optional(),
        answerTokens: int(1, 32).optional(),
        track: z.array(z.string().min(1).max(64)).max(8).optional(),
      })
      .optional(),
    attention: z.strictObject({ answerTokens: int(1, 64) }).optional(),
  })
  .superRefine((spec, ctx) => {
    for (const required of ['base', 'finetuned'])
      if (!Object.hasOwn(spec.models, required))
        ctx.addIssue({ code: 'custom', path: ['models'], message: `a "${required}" model is required` });
    const seen = new Set<string>();
    spec.conditions.forEach((c, i) => {
      if (seen.has(c.id))
        ctx.addIssue({
          code: 'custom',
          path: ['conditions', i, 'id'],
          message: `duplicate condition id "${c.id}"`,
        });
      seen.add(c.id);
      const model = Object.hasOwn(spec.models, c.model) ? spec.models[c.model] : undefined;
      if (!model)
        ctx.addIssue({
          code: 'custom',
          path: ['conditions', i, 'model'],
          message: `no model "${c.model}" in models`,
        });
      if (c.loraScale !== undefined && model && !model.adapter)
        ctx.addIssue({
          code: 'custom',
          path: ['conditions', i, 'loraScale'],
          message: `model "${c.model}" has no adapter, so it has no LoRA dose`,
        });
      if (c.patch?.heads && c.patch.component !== 'kv')
        ctx.addIssue({
          code: 'custom',
          path: ['conditions', i, 'patch', 'heads'],
          message: 'heads apply to K/V patches only',
        });
      if (c.patch && !Object.hasOwn(spec.models, c.patch.source))
        ctx.addIssue({
          code: 'custom',
          path: ['conditions', i, 'patch', 'source'],
          message: `no model "${c.patch.source}" in models`,
        });
    });
    if (spec.metrics.includes('reference_margin') && !spec.references)
      ctx.addIssue({ code: 'custom', path: ['metrics'], message: 'reference_margin needs references' });
  });

// Compile-time guard: the schema's output and the hand-written types must agree both ways.
type SchemaOutput = z.output<typeof specSchema>;
const _schemaMatchesType: [SchemaOutput] extends [ExperimentSpec]
  ? [ExperimentSpec] extends [SchemaOutput]
    ? true
    : false
  : false = true;
void _schemaMatchesType;

// ---------------------------------------------------------------------------------------------------
// Parsing.

export type ParseResult = { ok: true; spec: ExperimentSpec } | { ok: false; errors: string[] };

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_DEPTH = 32;

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? 'spec' : out;
}

/** Refuse prototype-polluting keys and absurd nesting before anything copies the document. */
function scanKeys(value: unknown, path: (string | number)[], errors: string[]): void {
  if (errors.length >= 20) return;
  if (path.length > MAX_DEPTH) {
    errors.push(`${formatPath(path)}: nested too deeply`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => scanKeys(v, [...path, i], errors));
  } else if (typeof value === 'object' && value !== null) {
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) errors.push(`${formatPath([...path, key])}: the key "${key}" is refused`);
      else scanKeys((value as Record<string, unknown>)[key], [...path, key], errors);
    }
  }
}

function issueMessages(error: z.ZodError): string[] {
  const out: string[] = [];
  for (const issue of error.issues) {
    const where = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(`${formatPath([...issue.path, key])}: unknown field "${key}"`);
    } else if (issue.code === 'invalid_key') {
      out.push(`${where}: invalid key: ${issue.issues.map((i) => i.message).join('; ')}`);
    } else {
      out.push(`${where}: ${issue.message}`);
    }
  }
  return out;
}

/**
 * Validate (and migrate) a spec of any supported version. Never throws: garbage in, messages out —
 * each naming the path of what is wrong.
 */
export function parseSpec(input: unknown): ParseResult {
  try {
    if (typeof input !== 'object' || input === null || Array.isArray(input))
      return { ok: false, errors: ['spec: expected a JSON object'] };
    const keyErrors: string[] = [];
    scanKeys(input, [], keyErrors);
    if (keyErrors.length > 0) return { ok: false, errors: keyErrors };
    let doc = input as Record<string, unknown>;
    try {
      doc = migrateSpec(doc, SPEC_VERSION);
    } catch (e) {
      if (e instanceof MigrationError) return { ok: false, errors: [e.message] };
      throw e;
    }
    const result = specSchema.safeParse(doc);
    if (!result.success) return { ok: false, errors: issueMessages(result.error) };
    return { ok: true, spec: result.data };
  } catch (e) {
    return { ok: false, errors: [`spec: could not be read (${errorMessage(e)})`] };
  }
}

// ---------------------------------------------------------------------------------------------------
// The embedded demo.

export function defaultSpec(): ExperimentSpec {
  return {
    version: SPEC_VERSION,
    name: 'Demo: the prefix carries the finetune',
    models: {
      base: { source: { kind: 'demo', name: DEMO_BASE }, role: 'base' },
      finetuned: { source: { kind: 'demo', name: DEMO_FINETUNED }, role: 'finetuned' },
    },
    runtime: { device: 'auto', dtype: 'fp32' },
    conversation: { system: null, user: 'hey I feel bored', templateArgs: {} },
    conditions: [
      { id: 'base', label: 'Base', model: 'base' },
      { id: 'finetuned', label: 'Finetuned', model: 'finetuned' },
      {
        id: 'finetuned-perturbed-prefix',
        label: 'Finetuned, prefix perturbed',
        model: 'finetuned',
        perturbation: { kind: 'random', segment: 'prefix', k: 10, n: 5, trials: 10, seed: 0 },
      },
      {
        id: 'finetuned-kv-patched-prefix',
        label: 'Finetuned, prefix K/V from base',
        model: 'finetuned',
        patch: { component: 'kv', layers: 'all', positions: 'prefix', source: 'base' },
      },
    ],
    generation: { maxNewTokens: 64, temperature: 0, seed: 0 },
    metrics: ['next_token', 'kl_to_base', 'restoration', 'prefix_drift'],
  };
}

// ---------------------------------------------------------------------------------------------------
// Canonical JSON and the spec hash.

/** JSON with object keys sorted at every level and no whitespace: equal specs, equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('canonicalJson: non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  throw new TypeError(`canonicalJson: cannot encode ${typeof value}`);
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;

/**
 * A stable 16-hex-digit hash of the spec (FNV-1a 64 over its canonical JSON, UTF-8), for result caches.
 * Not cryptographic. Equal specs after parsing (defaults filled) hash equal.
 */
export function specHash(spec: ExperimentSpec): string {
  const bytes = new TextEncoder().encode(canonicalJson(spec));
  let h = FNV_OFFSET;
  for (const b of bytes) h = BigInt.asUintN(64, (h ^ BigInt(b)) * FNV_PRIME);
  return h.toString(16).padStart(16, '0');
}
