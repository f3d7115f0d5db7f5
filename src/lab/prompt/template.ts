// Chat templates: render a Hugging Face chat template exactly as transformers does, and split the
// rendered prompt into prefix / query / postfix tokens with the paper's marker method (render once with
// a marker in place of the user's words, then map the marker's character span onto the real tokens).
// Pure: it must never read a clock except through the injectable `now`, fetch, or touch ORT or the DOM.

import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { errorMessage } from '../../common/errors';
import type { LabTokenizer } from './tokenizer';

/** A value a template can see: JSON. */
export type TemplateValue =
  string | number | boolean | null | readonly TemplateValue[] | { readonly [key: string]: TemplateValue };

export interface ChatMessage {
  role: string;
  content: string;
}

export type Segment = 'prefix' | 'query' | 'postfix';
export const SEGMENTS: readonly Segment[] = ['prefix', 'query', 'postfix'];

/** Half-open `[start, end)`. */
export type Span = [number, number];

/** Raised for template syntax errors, `raise_exception(...)` calls and prompts that cannot be split. */
export class TemplateError extends Error {
  /** `raise`: the template called raise_exception; `syntax`/`render`: Jinja failed; `split`: see message. */
  readonly kind: 'raise' | 'syntax' | 'render' | 'split';
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

function compile(source: string): Template {
  let t = compiled.get(source);
  if (t) return t;
  try {
    t = new Template(source);
  } catch (e) {
    throw new TemplateError('syntax', `chat template does not parse: ${errorMessage(e)}`);
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

/** Python's `range`, which Jinja templates call. */
function range(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() arg 3 must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
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
  const t = compile(template);
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
    const result = new Interpreter(env).run(t.parsed).value;
    if (typeof result !== 'string') throw new Error('the template did not produce text');
    text = result;
  } catch (e) {
    if (e instanceof TemplateError) throw e;
    throw new TemplateError('render', `chat template failed: ${errorMessage(e)}`);
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
  chars: Record<Segment, Span>;
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

export interface PromptToken {
  id: number;
  /** Display text (special tokens verbatim). */
  text: string;
  segment: Segment;
  /** An added/control token (`<|im_start|>`, `<bos>`, Qwen3's `<think>`): one token, shown verbatim. */
  special: boolean;
  /** Character span in `SplitPrompt.text`; empty for tokens the tokenizer added (a BOS). */
  start: number;
  end: number;
}

export interface SplitPrompt {
  text: string;
  tokens: PromptToken[];
  /** Half-open token index ranges; they tile `tokens`. */
  segments: Record<Segment, Span>;
  /** Half-open character ranges in `text`. */
  chars: Record<Segment, Span>;
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
  const split = splitChat(template, { ...options, specialTokens });
  const addSpecialTokens = options.addSpecialTokens ?? false;
  const enc = tokenizer.encodeWithOffsets(split.text, { addSpecialTokens });
  const [, prefixEnd] = split.chars.prefix;
  const [postfixStart] = split.chars.postfix;
  const warnings: string[] = [];
  const tokens: PromptToken[] = enc.ids.map((id, i) => {
    const [start, end] = enc.offsets[i];
    // NOTE: a token straddling a boundary holds query text, so it is query: the prefix and postfix are
    // exactly the tokens that are the same for every query (what a base-model prefix cache is keyed on).
    const segment: Segment = end <= prefixEnd ? 'prefix' : start >= postfixStart ? 'postfix' : 'query';
    const text = tokenizer.idToText(id);
    if (segment === 'query' && (start < prefixEnd || end > postfixStart))
      warnings.push(
        `token ${i} ${JSON.stringify(text)} straddles the query boundary and is counted as query`,
      );
    return { id, text, segment, special: tokenizer.isAdded(id), start, end };
  });
  const count = (s: Segment) => tokens.filter((t) => t.segment === s).length;
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
