// Chat templates: render a Hugging Face chat template exactly as transformers does, and split the
// rendered prompt into prefix / query / postfix tokens with the paper's marker method (render once with
// a marker in place of the user's words, then map the marker's character span onto the real tokens).
// Pure: it must never read a clock except through the injectable `now`, fetch, or touch ORT or the DOM.
// A chat template is untrusted code from a model repo: it must never render without the budget
// (TEMPLATE_LIMITS: steps, characters, list sizes, nesting), so a template that loops for ever or
// builds gigabytes fails with a TemplateError naming it instead of hanging or killing the worker.

import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { errorMessage } from '../../common/errors';
import type { SegmentName } from '../spec/experiment';
import type { PromptToken } from '../spec/results';
import type { LabTokenizer } from './tokenizer';

/** A value a template can see: JSON. */
export type TemplateValue =
  string | number | boolean | null | readonly TemplateValue[] | { readonly [key: string]: TemplateValue };

export interface ChatMessage {
  role: string;
  content: string;
}

/** Half-open `[start, end)`. */
export type Span = [number, number];

/** Raised for template syntax errors, `raise_exception(...)` calls and prompts that cannot be split. */
export class TemplateError extends Error {
  /**
   * `raise`: the template called raise_exception; `syntax`/`render`: Jinja failed; `split`: see message;
   * `budget`: rendering went past TEMPLATE_LIMITS (a loop too long, a value too large).
   */
  readonly kind: 'raise' | 'syntax' | 'render' | 'split' | 'budget';
  constructor(kind: TemplateError['kind'], message: string) {
    super(message);
    this.name = 'TemplateError';
    this.kind = kind;
  }
}

export interface RenderOptions {
  messages: readonly ChatMessage[];
  /** Append the assistant header (transformers `add_generation_prompt`). Default true. */
  addGenerationPrompt?: boolean;
  /**
   * Special-token strings the template may reference (`bos_token`, `eos_token`, …). Null/absent ones are
   * left undefined, as transformers only passes the tokens a tokenizer has.
   */
  specialTokens?: Readonly<Record<string, string | null | undefined>>;
  /** Extra template variables: `date_string`, `tools`, `enable_thinking`, `documents`… */
  templateArgs?: Readonly<Record<string, TemplateValue>>;
  /** The clock behind `strftime_now` (local time, as Python's `datetime.now()`). Default: the real one. */
  now?: () => Date;
  /** What errors call the template, e.g. `org/model/tokenizer_config.json`. */
  source?: string;
}

export interface Rendered {
  text: string;
  /**
   * The date the prompt carries, for the UI: the `date_string` argument if given, else what the
   * template's last `strftime_now` call returned, else null (a template with no date, or a hard-coded one).
   */
  dateString: string | null;
  strftimeCalls: { format: string; value: string }[];
}

// NOTE: transformers compiles with trim_blocks + lstrip_blocks + loopcontrols; @huggingface/jinja's
// Template does the same preprocessing (and supports break/continue), which scripts/check-templates.py
// verifies against Python's jinja2 on the real templates.
const compiled = new Map<string, Template>();
const MAX_COMPILED = 16;

function compile(source: string, label: string): Template {
  let t = compiled.get(source);
  if (t) return t;
  if (source.length > TEMPLATE_LIMITS.sourceChars) {
    throw new TemplateError(
      'budget',
      `${label}: the source has ${source.length} characters, more than ${TEMPLATE_LIMITS.sourceChars} — not a chat template`,
    );
  }
  try {
    t = new Template(source);
  } catch (e) {
    throw new TemplateError('syntax', `${label} does not parse: ${errorMessage(e)}`);
  }
  if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value as string);
  compiled.set(source, t);
  return t;
}

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Python's `date.strftime` in the C locale, for the directives chat templates use. */
export function strftime(date: Date, format: string): string {
  const pad = (n: number, width = 2, fill = '0') => String(n).padStart(width, fill);
  const hours12 = date.getHours() % 12 === 0 ? 12 : date.getHours() % 12;
  const startOfYear = new Date(date.getFullYear(), 0, 1);
  const dayOfYear =
    Math.round(
      (new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime() - startOfYear.getTime()) /
        86_400_000,
    ) + 1;
  return format.replace(/%([a-zA-Z%])/g, (whole, d: string) => {
    switch (d) {
      case 'Y':
        return String(date.getFullYear());
      case 'y':
        return pad(date.getFullYear() % 100);
      case 'm':
        return pad(date.getMonth() + 1);
      case 'd':
        return pad(date.getDate());
      case 'e':
        return pad(date.getDate(), 2, ' ');
      case 'j':
        return pad(dayOfYear, 3);
      case 'b':
      case 'h':
        return MONTHS[date.getMonth()].slice(0, 3);
      case 'B':
        return MONTHS[date.getMonth()];
      case 'a':
        return DAYS[date.getDay()].slice(0, 3);
      case 'A':
        return DAYS[date.getDay()];
      case 'H':
        return pad(date.getHours());
      case 'I':
        return pad(hours12);
      case 'M':
        return pad(date.getMinutes());
      case 'S':
        return pad(date.getSeconds());
      case 'p':
        return date.getHours() < 12 ? 'AM' : 'PM';
      case '%':
        return '%';
      default:
        return whole;
    }
  });
}

/**
 * What one render may use. Real chat templates need a few thousand steps and tens of thousands of
 * characters for a long conversation (the six in templates/ take 2-6k steps for 100 messages), so each
 * bound is far above them and far below what would hang a tab or exhaust its memory.
 */
export const TEMPLATE_LIMITS = {
  /** node evaluations (every expression, statement and loop iteration counts) */
  steps: 100_000,
  /** characters of any one string, of any value's rendered size, and of the text emitted */
  chars: 2_000_000,
  /** items of any one list, `range()` included */
  items: 100_000,
  /** nested evaluations (recursive macros) */
  depth: 256,
  /** an `indent`/`tojson` width */
  width: 1024,
  /** characters of template source */
  sourceChars: 1_000_000,
  /** items visited while measuring values, over the whole render */
  measure: 20_000_000,
} as const;

/** Thrown inside the interpreter when a budget runs out; renderChatTemplate names the template. */
class BudgetExceeded extends Error {}

/** Python's `range`, which Jinja templates call; refuses more than TEMPLATE_LIMITS.items numbers. */
function range(start: unknown, stop?: unknown, step: unknown = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (![start, stop, step].every((x) => Number.isSafeInteger(x)))
    throw new Error('range() arguments must be integers');
  const [a, b, d] = [start, stop, step] as number[];
  if (d === 0) throw new Error('range() arg 3 must not be zero');
  const count = Math.max(0, Math.ceil((b - a) / d));
  if (count > TEMPLATE_LIMITS.items) {
    throw new BudgetExceeded(
      `range(${[a, b, d].join(', ')}) has ${count} items, more than ${TEMPLATE_LIMITS.items} — the template loops too long`,
    );
  }
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(a + i * d);
  return out;
}

type Node = NonNullable<Parameters<Interpreter['evaluate']>[0]>;
type Value = ReturnType<Interpreter['evaluate']>;
type Scope = Parameters<Interpreter['evaluate']>[1];

/** A node that evaluates to a value computed already (how width arguments are checked before use). */
const VALUE_NODE = 'PiggybackValue';

/** Nodes whose value is emitted as text: the expression statements of every block (`{{ … }}`). */
const leavesOf = new WeakMap<object, ReadonlySet<object>>();
const BLOCK_KEYS = ['body', 'alternate', 'defaultBlock'];
const CONTROL = new Set([
  'For',
  'If',
  'Set',
  'Macro',
  'CallStatement',
  'FilterStatement',
  'Break',
  'Continue',
  'Comment',
]);

function outputLeaves(program: object): ReadonlySet<object> {
  let leaves = leavesOf.get(program);
  if (leaves) return leaves;
  const found = new Set<object>();
  const seen = new Set<object>();
  const walk = (n: unknown): void => {
    if (typeof n !== 'object' || n === null || seen.has(n)) return;
    seen.add(n);
    if (Array.isArray(n)) {
      n.forEach(walk);
      return;
    }
    const rec = n as Record<string, unknown>;
    for (const key of BLOCK_KEYS) {
      const block = rec[key];
      if (!Array.isArray(block)) continue;
      for (const st of block) {
        const type = (st as { type?: unknown } | null)?.type;
        if (typeof type === 'string' && !CONTROL.has(type)) found.add(st as object);
      }
    }
    for (const v of Object.values(rec)) walk(v);
  };
  walk(program);
  leaves = found;
  leavesOf.set(program, leaves);
  return leaves;
}

/**
 * The library's interpreter with a budget: every evaluation goes through `evaluate` (the library
 * recurses through it), so counting there bounds loop iterations, recursion and the size of every
 * value a template builds, before a huge one is used.
 */
class BudgetedInterpreter extends Interpreter {
  private steps = 0;
  private depth = 0;
  private emitted = 0;
  /** rendered-size work spent measuring values (bounded too, so measuring cannot be the hang) */
  private measured = 0;
  /** rendered sizes of lists and mappings that hold no namespace (those never change once built) */
  private readonly sizes = new WeakMap<object, number>();
  private readonly visiting = new Set<object>();

  constructor(
    env: Environment,
    private readonly leaves: ReadonlySet<object>,
  ) {
    super(env);
  }

  override evaluate(statement: Node | undefined, environment: Scope): Value {
    if (statement && (statement as { type: string }).type === VALUE_NODE)
      return (statement as unknown as { value: Value }).value;
    if (++this.steps > TEMPLATE_LIMITS.steps)
      throw new BudgetExceeded(
        `rendering exceeded ${TEMPLATE_LIMITS.steps} steps — the template loops too long`,
      );
    if (++this.depth > TEMPLATE_LIMITS.depth)
      throw new BudgetExceeded(
        `rendering nests deeper than ${TEMPLATE_LIMITS.depth} evaluations — the template recurses too deep`,
      );
    try {
      const node = statement ? this.checkWidths(statement, environment) : statement;
      const value = super.evaluate(node, environment);
      const size = this.sizeOf(value, TEMPLATE_LIMITS.chars);
      if (size > TEMPLATE_LIMITS.chars)
        throw new BudgetExceeded(
          `a value grew past ${TEMPLATE_LIMITS.chars} characters — the template builds too much text`,
        );
      if (statement && this.leaves.has(statement)) {
        this.emitted += size;
        if (this.emitted > TEMPLATE_LIMITS.chars)
          throw new BudgetExceeded(
            `rendering exceeded ${TEMPLATE_LIMITS.chars} characters — the template loops too long`,
          );
      }
      return value;
    } finally {
      this.depth--;
    }
  }

  /** `indent(w)` / `tojson(indent=w)`: the width is evaluated first and refused when absurd. */
  private checkWidths(node: Node, environment: Scope): Node {
    const n = node as unknown as {
      type: string;
      filter?: { type: string; callee?: { type: string; value?: unknown }; args?: unknown[] };
    };
    if (n.type !== 'FilterExpression' && n.type !== 'FilterStatement') return node;
    const f = n.filter;
    if (!f || f.type !== 'CallExpression' || f.callee?.type !== 'Identifier') return node;
    if (f.callee.value !== 'indent' && f.callee.value !== 'tojson') return node;
    const wrap = (v: Value) => ({ type: VALUE_NODE, value: v });
    const check = (v: Value): Value => {
      const w = (v as { value: unknown }).value;
      if (typeof w === 'number' && w > TEMPLATE_LIMITS.width)
        throw new BudgetExceeded(
          `${String(f.callee?.value)} width ${w} is more than ${TEMPLATE_LIMITS.width}`,
        );
      return v;
    };
    const args = (f.args ?? []).map((a) => {
      const arg = a as { type: string; value?: Node };
      if (arg.type === 'KeywordArgumentExpression' && arg.value)
        return { ...arg, value: wrap(check(this.evaluate(arg.value, environment))) };
      if (arg.type === 'SpreadExpression' || arg.type === 'KeywordSpreadExpression') return arg;
      return wrap(check(this.evaluate(arg as unknown as Node, environment)));
    });
    return { ...n, filter: { ...f, args } } as unknown as Node;
  }

  /**
   * A value's rendered size (characters of its strings plus one per item and key, a shared item counted
   * each time it appears, as tojson prints it), measured up to `cap`. Lists and mappings never change
   * once built, so their sizes are remembered; a namespace can (`set ns.x = …`), so values holding one
   * are measured afresh, sharing work only within one measurement.
   */
  private sizeOf(value: Value, cap: number, nest = 0, local = new Map<object, number>()): number {
    const v = (value as { value?: unknown }).value;
    if (typeof v === 'string') return v.length;
    if (!Array.isArray(v) && !(v instanceof Map)) return 1;
    const known = this.sizes.get(v) ?? local.get(v);
    if (known !== undefined) return known;
    if (nest > TEMPLATE_LIMITS.depth)
      throw new BudgetExceeded(`a value nests deeper than ${TEMPLATE_LIMITS.depth} levels`);
    if (this.visiting.has(v)) throw new BudgetExceeded('a value contains itself (a namespace cycle)');
    const count = Array.isArray(v) ? v.length : v.size;
    if (count > TEMPLATE_LIMITS.items)
      throw new BudgetExceeded(
        `a value grew past ${TEMPLATE_LIMITS.items} items — the template builds too much`,
      );
    this.visiting.add(v);
    let total = 1;
    let mutable = (value as { type?: unknown }).type === 'NamespaceValue';
    try {
      if (v instanceof Map) for (const k of v.keys()) total += k.length;
      for (const item of Array.isArray(v) ? (v as Value[]) : (v.values() as Iterable<Value>)) {
        if (total > cap) break;
        if (++this.measured > TEMPLATE_LIMITS.measure)
          throw new BudgetExceeded('the template reads values too large to measure — it builds too much');
        total += this.sizeOf(item, cap - total, nest + 1, local);
        const inner = (item as { value?: unknown }).value;
        if ((Array.isArray(inner) || inner instanceof Map) && !this.sizes.has(inner)) mutable = true;
      }
    } finally {
      this.visiting.delete(v);
    }
    if (total <= cap) (mutable ? local : this.sizes).set(v, total);
    return total;
  }
}

// NOTE: the same globals as @huggingface/jinja's Template.render, which we cannot use because its
// environment refuses to redeclare raise_exception / strftime_now (we need our own: typed errors, a clock).
const BUILTINS: Readonly<Record<string, unknown>> = {
  false: false,
  true: true,
  none: null,
  False: false,
  True: true,
  None: null,
  range,
};

const RESERVED_ARGS = new Set([
  ...Object.keys(BUILTINS),
  'namespace',
  'messages',
  'add_generation_prompt',
  'raise_exception',
  'strftime_now',
]);

/** Render a chat template the way transformers' `apply_chat_template(..., tokenize=False)` does. */
export function renderChatTemplate(template: string, options: RenderOptions): Rendered {
  const label = options.source ? `chat template of ${options.source}` : 'chat template';
  const t = compile(template, label);
  const now = options.now ?? (() => new Date());
  const strftimeCalls: Rendered['strftimeCalls'] = [];
  const vars: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options.specialTokens ?? {})) if (typeof v === 'string') vars[k] = v;
  // NOTE: transformers always passes `tools` and `documents` (None when absent), so `tools is defined`.
  vars.tools = null;
  vars.documents = null;
  for (const [k, v] of Object.entries(options.templateArgs ?? {})) {
    if (RESERVED_ARGS.has(k)) throw new TemplateError('render', `template argument "${k}" is reserved`);
    vars[k] = v;
  }
  vars.messages = options.messages.map((m) => ({ ...m }));
  vars.add_generation_prompt = options.addGenerationPrompt ?? true;
  vars.raise_exception = (message: unknown) => {
    throw new TemplateError('raise', String(message));
  };
  vars.strftime_now = (format: unknown) => {
    const value = strftime(now(), String(format));
    strftimeCalls.push({ format: String(format), value });
    return value;
  };
  let text: string;
  try {
    const env = new Environment();
    for (const [k, v] of Object.entries(BUILTINS)) env.set(k, v);
    for (const [k, v] of Object.entries(vars)) env.set(k, v);
    const result = new BudgetedInterpreter(env, outputLeaves(t.parsed)).run(t.parsed).value;
    if (typeof result !== 'string') throw new Error('the template did not produce text');
    text = result;
  } catch (e) {
    if (e instanceof TemplateError) throw e;
    if (e instanceof BudgetExceeded) throw new TemplateError('budget', `${label}: ${e.message}`);
    // NOTE: V8's own limits (a string past ~2^29 characters, the call stack) are RangeErrors; they
    // are caught here too, so nothing a template does escapes as anything but a TemplateError.
    throw new TemplateError('render', `${label} failed: ${errorMessage(e)}`);
  }
  const dateArg = options.templateArgs?.date_string;
  const dateString = typeof dateArg === 'string' ? dateArg : (strftimeCalls.at(-1)?.value ?? null);
  return { text, dateString, strftimeCalls };
}

/** A single- or multi-turn chat whose last user message is the query. */
export interface Conversation {
  /** null/absent: no system message (the template's default applies); a string, even '', is sent as is. */
  system?: string | null;
  /** Earlier turns (user/assistant…), rendered before the query and counted as prefix. */
  history?: readonly ChatMessage[];
  /** The query: the last user message. */
  user: string;
}

export interface SplitOptions extends Omit<RenderOptions, 'messages'> {
  conversation: Conversation;
}

export interface CharSplit {
  text: string;
  /** Character spans; they tile `text`. */
  chars: Record<SegmentName, Span>;
  dateString: string | null;
  /**
   * The template read the clock (strftime_now): the prompt changes from day to day unless `date_string`
   * pins it — worth showing, and worth pinning before caching results.
   */
  dateFromClock: boolean;
  /** The marker the template was rendered with in place of the query. */
  marker: string;
}

export function conversationMessages(conversation: Conversation, user = conversation.user): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (conversation.system !== null && conversation.system !== undefined)
    messages.push({ role: 'system', content: conversation.system });
  for (const m of conversation.history ?? []) messages.push({ role: m.role, content: m.content });
  messages.push({ role: 'user', content: user });
  return messages;
}

function pickMarker(template: string, options: SplitOptions): string {
  const haystack = [
    template,
    JSON.stringify(options.conversation),
    JSON.stringify(options.templateArgs ?? {}),
  ].join('\n');
  for (let i = 0; ; i++) {
    const marker = `PIGGYBACKQUERYMARKER${i === 0 ? '' : i}`;
    if (!haystack.includes(marker)) return marker;
  }
}

/**
 * Split a rendered chat into prefix / query / postfix characters. The prefix is everything before the
 * last user message's content (system block, earlier turns, the user header); the postfix everything
 * after it (end-of-turn, assistant header, an empty think block…).
 */
export function splitChat(template: string, options: SplitOptions): CharSplit {
  // One clock reading for both renders, so a split at midnight cannot disagree with itself.
  const instant = (options.now ?? (() => new Date()))();
  const fixed = { ...options, now: () => new Date(instant.getTime()) };
  const marker = pickMarker(template, options);
  const withMarker = renderChatTemplate(template, {
    ...fixed,
    messages: conversationMessages(options.conversation, marker),
  });
  const at = withMarker.text.indexOf(marker);
  if (at < 0)
    throw new TemplateError('split', 'the template does not copy the user message into the prompt verbatim');
  if (withMarker.text.indexOf(marker, at + 1) >= 0)
    throw new TemplateError('split', 'the template copies the user message into the prompt more than once');
  const before = withMarker.text.slice(0, at);
  const after = withMarker.text.slice(at + marker.length);
  const real = renderChatTemplate(template, {
    ...fixed,
    messages: conversationMessages(options.conversation),
  });
  const text = real.text;
  if (!text.startsWith(before) || !text.endsWith(after) || before.length + after.length > text.length)
    throw new TemplateError('split', 'the template renders its prefix or postfix differently for this query');
  const qEnd = text.length - after.length;
  return {
    text,
    chars: { prefix: [0, before.length], query: [before.length, qEnd], postfix: [qEnd, text.length] },
    dateString: real.dateString,
    dateFromClock: real.strftimeCalls.length > 0,
    marker,
  };
}

/** A token of a split prompt: a `PromptToken` that knows whether it is special and where its text is. */
export interface SplitToken extends PromptToken {
  /** An added/control token (`<|im_start|>`, `<bos>`, Qwen3's `<think>`): one token, shown verbatim. */
  special: boolean;
  /** Character span in `SplitPrompt.text`; empty for tokens the tokenizer added (a BOS). */
  start: number;
  end: number;
}

export interface SplitPrompt {
  text: string;
  tokens: SplitToken[];
  /** Half-open token index ranges; they tile `tokens`. */
  segments: Record<SegmentName, Span>;
  /** Half-open character ranges in `text`. */
  chars: Record<SegmentName, Span>;
  dateString: string | null;
  dateFromClock: boolean;
  bos: {
    /** The rendered text starts with the BOS string (Llama, Gemma templates write it themselves). */
    templateEmits: boolean;
    /** The tokenizer's post-processor adds BOS when special tokens are added. */
    tokenizerAdds: boolean;
    /** This encoding added special tokens (so BOS twice if the template emits it too). */
    added: boolean;
  };
  alignment: 'bytes' | 'normalized';
  /** Things worth showing a researcher: straddling tokens, a doubled BOS. */
  warnings: string[];
}

export interface BuildPromptOptions extends SplitOptions {
  /** Default: the tokenizer's own chat template. */
  template?: string;
  /**
   * Let the tokenizer add its special tokens to the rendered text. Default false, as transformers'
   * apply_chat_template: the template writes BOS itself where the model wants one.
   */
  addSpecialTokens?: boolean;
}

/** Render, tokenize and split a chat: the prompt every condition of an experiment starts from. */
export function buildPrompt(tokenizer: LabTokenizer, options: BuildPromptOptions): SplitPrompt {
  const template = options.template ?? tokenizer.chatTemplate;
  if (template === null)
    throw new TemplateError('split', 'the tokenizer has no chat template and none was given');
  const specialTokens = {
    bos_token: tokenizer.bosToken,
    eos_token: tokenizer.eosToken,
    pad_token: tokenizer.padToken,
    unk_token: tokenizer.unkToken,
    ...options.specialTokens,
  };
  const source =
    options.source ?? (options.template === undefined ? tokenizer.chatTemplateSource : undefined);
  const split = splitChat(template, { ...options, specialTokens, source });
  const addSpecialTokens = options.addSpecialTokens ?? false;
  const enc = tokenizer.encodeWithOffsets(split.text, { addSpecialTokens });
  const [, prefixEnd] = split.chars.prefix;
  const [postfixStart] = split.chars.postfix;
  const warnings: string[] = [];
  const tokens: SplitToken[] = enc.ids.map((id, i) => {
    const [start, end] = enc.offsets[i];
    // NOTE: a token straddling a boundary holds query text, so it is query: the prefix and postfix are
    // exactly the tokens that are the same for every query (what a base-model prefix cache is keyed on).
    const segment: SegmentName = end <= prefixEnd ? 'prefix' : start >= postfixStart ? 'postfix' : 'query';
    const text = tokenizer.idToText(id);
    if (segment === 'query' && (start < prefixEnd || end > postfixStart))
      warnings.push(
        `token ${i} ${JSON.stringify(text)} straddles the query boundary and is counted as query`,
      );
    return { id, text, segment, special: tokenizer.isAdded(id), start, end };
  });
  const count = (s: SegmentName) => tokens.filter((t) => t.segment === s).length;
  const nPrefix = count('prefix');
  const nQuery = count('query');
  const bosToken = options.specialTokens?.bos_token ?? tokenizer.bosToken;
  const bos = {
    templateEmits: bosToken !== null && bosToken !== undefined && split.text.startsWith(bosToken),
    tokenizerAdds: tokenizer.addsBos,
    added: addSpecialTokens && tokenizer.addsBos,
  };
  if (bos.templateEmits && bos.added)
    warnings.push('BOS appears twice: the template writes it and the tokenizer adds it');
  return {
    text: split.text,
    tokens,
    segments: {
      prefix: [0, nPrefix],
      query: [nPrefix, nPrefix + nQuery],
      postfix: [nPrefix + nQuery, tokens.length],
    },
    chars: split.chars,
    dateString: split.dateString,
    dateFromClock: split.dateFromClock,
    bos,
    alignment: enc.alignment,
    warnings,
  };
}
