// A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) for the lab: ids, display text per
// token, special tokens, and character offsets of every token in the text it came from (which the
// template split needs). Wraps @huggingface/tokenizers; it must never fetch files, touch ORT or the DOM,
// and never add special tokens unless the caller asks (chat templates emit their own, as in transformers).
// tokenizer.json is untrusted: its model section (type, vocab, merges) and added tokens are checked
// before the library sees them, and every failure is an EngineError ('bad_tokenizer') naming the file.

import { Tokenizer } from '@huggingface/tokenizers';
import { isObject, type JsonObject } from '../../common/json';
import { errorMessage } from '../../common/errors';
import { CONFIG_LIMITS } from '../../engine/config';
import { EngineError } from '../../engine/errors';

/** A special (or added) token as the vocabulary holds it. */
export interface SpecialToken {
  id: number;
  text: string;
  /** `special: true` in tokenizer.json (false for plain added tokens such as `<think>` in some vocabs). */
  special: boolean;
}

export interface EncodeOptions {
  /** Let the tokenizer's post-processor add BOS/EOS (HF `add_special_tokens`). Default false. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

/** Ids with the half-open UTF-16 character span each token covers in the encoded text. */
export interface EncodedWithOffsets {
  ids: number[];
  /** `[start, end)` per token; tokens absent from the text (an added BOS) are empty spans. */
  offsets: [number, number][];
  /**
   * 'bytes': offsets from the exact byte alignment of every token with the text.
   * 'normalized': the tokenizer's normaliser changed the text (NFC, lowercasing…), so the tokens spell a
   * different string; offsets are exact in the common head and tail of the two strings (the template
   * text around a query) and interpolated inside the changed stretch.
   */
  alignment: 'bytes' | 'normalized';
}

export interface LoadOptions {
  /** A chat template from a separate `chat_template.jinja` (newer repos); wins over the config's. */
  chatTemplate?: string;
  /** The folder the files came from (a path, URL or repo), for messages: `<source>/tokenizer.json`. */
  source?: string;
}

/** Most vocabulary entries or merges a tokenizer.json may hold (the config's vocab_size bound). */
export const MAX_TOKENIZER_ENTRIES = CONFIG_LIMITS.vocab_size;

const MODEL_TYPES = ['BPE', 'Unigram', 'WordPiece'] as const;

function badTokenizer(file: string, field: string, why: string): EngineError {
  return new EngineError('bad_tokenizer', `${file}: ${field} ${why}`, { file, field });
}

const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** `model.vocab` as an object of token → id, every id a non-negative integer below the bound. */
function checkVocabObject(vocab: unknown, file: string): void {
  if (!isObject(vocab))
    throw badTokenizer(file, 'model.vocab', `must be an object of token → id (got ${kind(vocab)})`);
  const entries = Object.entries(vocab);
  if (entries.length === 0) throw badTokenizer(file, 'model.vocab', 'is empty');
  if (entries.length > MAX_TOKENIZER_ENTRIES)
    throw badTokenizer(
      file,
      'model.vocab',
      `has ${entries.length} entries, more than ${MAX_TOKENIZER_ENTRIES}`,
    );
  for (const [token, id] of entries) {
    if (!isId(id) || id >= MAX_TOKENIZER_ENTRIES)
      throw badTokenizer(
        file,
        `model.vocab[${JSON.stringify(token)}]`,
        `must be a token id below ${MAX_TOKENIZER_ENTRIES} (got ${JSON.stringify(id)})`,
      );
  }
}

function kind(v: unknown): string {
  return v === null
    ? 'null'
    : Array.isArray(v)
      ? 'an array'
      : typeof v === 'object'
        ? 'an object'
        : `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * Whether a regex can backtrack exponentially: a quantified group whose body holds an unbounded
 * quantifier, as in `(a+)+` or `(\s*x)*`. The library runs tokenizer.json's regexes with JS RegExp
 * on every prompt, so such a pattern could hang encoding; the pre-tokenizer patterns of real
 * tokenizers (GPT-2, Llama 3, Qwen) have none.
 */
export function nestedQuantifier(regex: string): boolean {
  const stack: boolean[] = [];
  let inner = false;
  for (let i = 0; i < regex.length; i++) {
    const c = regex[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '[') {
      for (i++; i < regex.length && regex[i] !== ']'; i++) if (regex[i] === '\\') i++;
      continue;
    }
    if (c === '(') {
      stack.push(inner);
      inner = false;
    } else if (c === ')') {
      const bodyQuantified: boolean = inner;
      inner = stack.pop() ?? false;
      const next = regex.slice(i + 1);
      const repeated = /^(?:[*+]|\{\d*,\d*\})/.test(next) && !/^\{\d*,[01]\}/.test(next);
      if (bodyQuantified && repeated) return true;
      inner ||= bodyQuantified || repeated;
    } else if (c === '*' || c === '+' || (c === '{' && /^\{\d*,\d*\}/.test(regex.slice(i)))) {
      inner = true;
    }
  }
  return false;
}

/** Split / Replace components carry a pattern the library compiles: present, well-formed, linear. */
function checkComponents(node: unknown, field: string, file: string): void {
  if (Array.isArray(node)) {
    node.forEach((n, i) => checkComponents(n, `${field}[${i}]`, file));
    return;
  }
  if (!isObject(node)) return;
  if (node.type === 'Split' || node.type === 'Replace') {
    const p = node.pattern;
    const ok = isObject(p) && (typeof p.String === 'string' || typeof p.Regex === 'string');
    if (!ok)
      throw badTokenizer(file, `${field}.pattern`, `must be {"String": …} or {"Regex": …} (got ${kind(p)})`);
    if (typeof p.Regex === 'string') {
      // NOTE: not compiled here: the library rewrites forms JS lacks (`(?i:…)`) and reports its own failures.
      if (nestedQuantifier(p.Regex))
        throw badTokenizer(
          file,
          `${field}.pattern.Regex`,
          `${JSON.stringify(p.Regex)} repeats a quantified group, which can take exponential time on a prompt`,
        );
    }
  }
  for (const key of ['pretokenizers', 'normalizers', 'decoders', 'processors'])
    if (node[key] !== undefined) checkComponents(node[key], `${field}.${key}`, file);
}

/** The model section the library builds from; anything it would misread is refused here. */
function checkModel(json: JsonObject, file: string): void {
  const model = json.model;
  if (!isObject(model)) throw badTokenizer(file, 'model', `must be an object (got ${kind(model)})`);
  let type = model.type;
  if (type === undefined) {
    // NOTE: files from old `tokenizers` versions omit the type; infer it as the library does.
    type = Array.isArray(model.vocab) ? 'Unigram' : model.merges !== undefined ? 'BPE' : 'WordPiece';
  }
  if (typeof type !== 'string' || !(MODEL_TYPES as readonly string[]).includes(type))
    throw badTokenizer(
      file,
      'model.type',
      `must be one of ${MODEL_TYPES.join(', ')} (got ${JSON.stringify(type)})`,
    );
  if (model.unk_token !== undefined && model.unk_token !== null && typeof model.unk_token !== 'string')
    throw badTokenizer(file, 'model.unk_token', `must be a string or null (got ${kind(model.unk_token)})`);
  if (
    model.byte_fallback !== undefined &&
    model.byte_fallback !== null &&
    typeof model.byte_fallback !== 'boolean'
  )
    throw badTokenizer(file, 'model.byte_fallback', `must be a boolean (got ${kind(model.byte_fallback)})`);
  switch (type) {
    case 'BPE': {
      checkVocabObject(model.vocab, file);
      const merges = model.merges;
      if (!Array.isArray(merges))
        throw badTokenizer(file, 'model.merges', `must be a list (got ${kind(merges)})`);
      if (merges.length > MAX_TOKENIZER_ENTRIES)
        throw badTokenizer(
          file,
          'model.merges',
          `has ${merges.length} entries, more than ${MAX_TOKENIZER_ENTRIES}`,
        );
      // Both forms the library reads, but one form per file: it picks the form from the first merge.
      const pairs = Array.isArray(merges[0]);
      merges.forEach((m, i) => {
        const ok = pairs
          ? Array.isArray(m) && m.length === 2 && m.every((p) => typeof p === 'string')
          : typeof m === 'string' && m.includes(' ');
        if (!ok)
          throw badTokenizer(
            file,
            `model.merges[${i}]`,
            `must be ${pairs ? 'a pair of strings, as merges[0]' : '"left right", as merges[0]'} (got ${kind(m)})`,
          );
      });
      break;
    }
    case 'WordPiece':
      checkVocabObject(model.vocab, file);
      if (typeof model.unk_token !== 'string')
        throw badTokenizer(file, 'model.unk_token', 'is required for WordPiece');
      break;
    case 'Unigram': {
      const vocab = model.vocab;
      if (!Array.isArray(vocab))
        throw badTokenizer(file, 'model.vocab', `must be a list of [piece, score] (got ${kind(vocab)})`);
      if (vocab.length === 0) throw badTokenizer(file, 'model.vocab', 'is empty');
      if (vocab.length > MAX_TOKENIZER_ENTRIES)
        throw badTokenizer(
          file,
          'model.vocab',
          `has ${vocab.length} entries, more than ${MAX_TOKENIZER_ENTRIES}`,
        );
      vocab.forEach((e, i) => {
        if (
          !Array.isArray(e) ||
          e.length !== 2 ||
          typeof e[0] !== 'string' ||
          typeof e[1] !== 'number' ||
          !Number.isFinite(e[1])
        )
          throw badTokenizer(file, `model.vocab[${i}]`, `must be [piece, score] (got ${kind(e)})`);
      });
      const unk = model.unk_id;
      if (unk !== undefined && unk !== null && !(isId(unk) && unk < vocab.length))
        throw badTokenizer(
          file,
          'model.unk_id',
          `must be an index into model.vocab or null (got ${JSON.stringify(unk)})`,
        );
      break;
    }
  }
  for (const key of ['normalizer', 'pre_tokenizer', 'decoder', 'post_processor'])
    checkComponents(json[key], key, file);
  const added = json.added_tokens;
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added))
      throw badTokenizer(file, 'added_tokens', `must be a list (got ${kind(added)})`);
    added.forEach((t, i) => {
      if (
        !isObject(t) ||
        !isId(t.id) ||
        t.id >= MAX_TOKENIZER_ENTRIES ||
        typeof t.content !== 'string' ||
        t.content === ''
      )
        throw badTokenizer(
          file,
          `added_tokens[${i}]`,
          'must be {id, content} with a token id and non-empty text',
        );
    });
  }
}

/** tokenizer_config values are either a string or an AddedToken-like `{content: string}`. */
function tokenString(x: unknown): string | null {
  if (typeof x === 'string') return x;
  if (isObject(x) && typeof x.content === 'string') return x.content;
  return null;
}

/** Does any node of a (possibly nested `Sequence`) component config have this `type`? */
function hasComponent(config: unknown, type: string): boolean {
  if (!isObject(config)) return false;
  if (config.type === type) return true;
  for (const key of ['decoders', 'pretokenizers', 'normalizers', 'processors']) {
    const children = config[key];
    if (Array.isArray(children) && children.some((c) => hasComponent(c, type))) return true;
  }
  return false;
}

/** GPT-2's bytes_to_unicode, inverted: the printable stand-in character → the byte it encodes. */
function byteLevelDecoder(): Map<string, number> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const map = new Map<string, number>();
  bs.forEach((b, i) => map.set(String.fromCodePoint(cs[i]), b));
  return map;
}

let byteLevelMap: Map<string, number> | null = null;

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function startsWithAt(haystack: Uint8Array, needle: Uint8Array, at: number): boolean {
  if (at + needle.length > haystack.length) return false;
  for (let i = 0; i < needle.length; i++) if (haystack[at + i] !== needle[i]) return false;
  return true;
}

/** Bytes as text; bytes that are not part of a complete UTF-8 sequence are shown as `<0xNN>`. */
export function bytesToDisplay(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    let out = '';
    let i = 0;
    while (i < bytes.length) {
      const b = bytes[i];
      const len =
        b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
      if (len > 0 && i + len <= bytes.length) {
        try {
          out += strictUtf8.decode(bytes.subarray(i, i + len));
          i += len;
          continue;
        } catch {
          // fall through: show the lead byte as hex and resync on the next byte
        }
      }
      out += `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
      i++;
    }
    return out;
  }
}

type PieceMode = 'byte-level' | 'sentencepiece' | 'opaque';

export class LabTokenizer {
  /** Largest id + 1 (the smallest embedding table that can hold every id; holes count). */
  readonly vocabSize: number;
  /** Every added token (special or not), by id. */
  readonly specialTokens: readonly SpecialToken[];
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly unkToken: string | null;
  /** The chat template from tokenizer_config.json (a named `default` one if it holds a list), if any. */
  readonly chatTemplate: string | null;
  /** Ids the post-processor puts before / after the text when special tokens are added (BOS, EOS…). */
  readonly addedPrefixIds: readonly number[];
  readonly addedSuffixIds: readonly number[];
  /** `<source>/tokenizer.json`: what errors name. */
  readonly file: string;
  /** Where `chatTemplate` came from (`<source>/tokenizer_config.json` or `chat_template.jinja`), for messages. */
  readonly chatTemplateSource: string;

  private readonly tok: Tokenizer;
  private readonly added = new Map<number, SpecialToken>();
  private readonly mode: PieceMode;
  private readonly byteFallback: boolean;
  private readonly pieceBytesCache = new Map<number, Uint8Array>();

  constructor(tokenizerJson: unknown, tokenizerConfig: unknown, options: LoadOptions = {}) {
    const where = options.source ? `${options.source}/` : '';
    this.file = `${where}tokenizer.json`;
    const configFile = `${where}tokenizer_config.json`;
    if (!isObject(tokenizerJson))
      throw badTokenizer(this.file, 'the file', `must be a JSON object (got ${kind(tokenizerJson)})`);
    if (!isObject(tokenizerConfig))
      throw badTokenizer(configFile, 'the file', `must be a JSON object (got ${kind(tokenizerConfig)})`);
    checkModel(tokenizerJson, this.file);
    // NOTE: the library requires these keys to exist (null is fine); older files omit some.
    const json: JsonObject = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null };
    Object.assign(json, tokenizerJson);
    this.tok = this.guard('does not load', () => new Tokenizer(json, tokenizerConfig));
    this.chatTemplateSource = options.chatTemplate !== undefined ? `${where}chat_template.jinja` : configFile;

    const addedTokens = Array.isArray(json.added_tokens) ? json.added_tokens : [];
    for (const t of addedTokens) {
      if (isObject(t) && typeof t.id === 'number' && typeof t.content === 'string') {
        this.added.set(t.id, { id: t.id, text: t.content, special: t.special === true });
      }
    }
    this.specialTokens = [...this.added.values()].sort((a, b) => a.id - b.id);
    let maxId = -1;
    for (const id of this.tok.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    this.bosToken = tokenString(tokenizerConfig.bos_token);
    this.eosToken = tokenString(tokenizerConfig.eos_token);
    this.padToken = tokenString(tokenizerConfig.pad_token);
    this.unkToken = tokenString(tokenizerConfig.unk_token);
    this.chatTemplate = options.chatTemplate ?? pickChatTemplate(tokenizerConfig.chat_template);

    this.mode = hasComponent(json.decoder, 'ByteLevel')
      ? 'byte-level'
      : hasComponent(json.decoder, 'Metaspace') ||
          hasComponent(json.decoder, 'Replace') ||
          hasComponent(json.decoder, 'ByteFallback')
        ? 'sentencepiece'
        : 'opaque';
    this.byteFallback = isObject(json.model) && json.model.byte_fallback === true;

    // NOTE: whatever slipped past the checks, a tokenizer that turns plain text into nothing (a
    // normaliser or pre-tokenizer that drops everything) would make every prompt empty.
    if (this.encode('hello world').length === 0)
      throw badTokenizer(this.file, 'the file', 'encodes "hello world" to no tokens at all');
    // What does the post-processor wrap text in? Compare a probe with and without special tokens.
    const probe = 'a';
    const plain = this.encode(probe);
    const wrapped = this.encode(probe, { addSpecialTokens: true });
    const at = indexOfSubarray(wrapped, plain);
    this.addedPrefixIds = at >= 0 ? wrapped.slice(0, at) : [];
    this.addedSuffixIds = at >= 0 ? wrapped.slice(at + plain.length) : [];
  }

  /** Whether `encode(text, {addSpecialTokens: true})` starts with the BOS token. */
  get addsBos(): boolean {
    const bos = this.bosToken === null ? undefined : this.tokenToId(this.bosToken);
    return bos !== undefined && this.addedPrefixIds.includes(bos);
  }

  /** Runs a library call; its failure (a component it cannot build or run) names the file. */
  private guard<T>(what: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof EngineError) throw e;
      throw new EngineError('bad_tokenizer', `${this.file}: ${what}: ${errorMessage(e)}`, {
        file: this.file,
      });
    }
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.guard(
      'encoding failed',
      () => this.tok.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids,
    );
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    // NOTE: the library throws on an empty list; an empty sequence decodes to ''.
    if (ids.length === 0) return '';
    return this.guard('decoding failed', () =>
      this.tok.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false }),
    );
  }

  tokenToId(text: string): number | undefined {
    return this.tok.token_to_id(text);
  }

  /** The vocabulary entry (e.g. `Ġhey`), not display text; undefined outside the vocabulary. */
  idToPiece(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /** `special: true` in tokenizer.json (BOS, `<|im_start|>`…). */
  isSpecial(id: number): boolean {
    return this.added.get(id)?.special === true;
  }

  /** Any added token: the special ones plus control tokens such as Qwen3's `<think>` (not special). */
  isAdded(id: number): boolean {
    return this.added.has(id);
  }

  /**
   * What a person should see for one token: special/added tokens verbatim, byte-level pieces decoded
   * (`Ġhey` → ` hey`), bytes that are only part of a character as `<0xNN>`.
   */
  idToText(id: number): string {
    const added = this.added.get(id);
    if (added) return added.text;
    if (this.idToPiece(id) === undefined) return `<unk:${id}>`;
    if (this.mode === 'opaque') return this.decode([id]);
    return bytesToDisplay(this.pieceBytes(id));
  }

  /**
   * Encode and report each token's character span in `text`. Offsets are what the template split maps
   * character boundaries through; see `EncodedWithOffsets.alignment`.
   */
  encodeWithOffsets(text: string, options: EncodeOptions = {}): EncodedWithOffsets {
    const ids = this.encode(text, options);
    const exact = this.mode === 'opaque' ? null : this.alignBytes(text, ids);
    if (exact) return { ids, offsets: exact, alignment: 'bytes' };
    // What the tokens spell, and the offsets in that string; then map those onto `text`.
    const spelled =
      this.mode === 'opaque'
        ? this.tok.decode(ids.length ? ids : [0], { clean_up_tokenization_spaces: false })
        : bytesToDisplayLossy(concatBytes(ids.map((id) => this.pieceBytes(id))));
    const inSpelled =
      (this.mode === 'opaque' ? null : this.alignBytes(spelled, ids)) ?? this.alignByDecoding(spelled, ids);
    const map = headTailMap(spelled, text);
    return { ids, offsets: inSpelled.map(([a, b]) => [map(a), map(b)]), alignment: 'normalized' };
  }

  /** The exact bytes a token stands for (added tokens: their text). */
  private pieceBytes(id: number): Uint8Array {
    const cached = this.pieceBytesCache.get(id);
    if (cached) return cached;
    let bytes: Uint8Array;
    const added = this.added.get(id);
    const piece = this.idToPiece(id) ?? '';
    if (added) {
      bytes = utf8.encode(added.text);
    } else if (this.mode === 'byte-level') {
      byteLevelMap ??= byteLevelDecoder();
      const out: number[] = [];
      for (const ch of piece) {
        const b = byteLevelMap.get(ch);
        if (b !== undefined) out.push(b);
        else out.push(...utf8.encode(ch));
      }
      bytes = Uint8Array.from(out);
    } else {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
      bytes =
        m && this.byteFallback ? Uint8Array.of(parseInt(m[1], 16)) : utf8.encode(piece.replaceAll('▁', ' '));
    }
    this.pieceBytesCache.set(id, bytes);
    return bytes;
  }

  /** Walk the tokens' bytes along the text's bytes; null when they don't line up (normalisers). */
  private alignBytes(text: string, ids: readonly number[]): [number, number][] | null {
    const textBytes = utf8.encode(text);
    const { floor, ceil } = byteToCharMaps(text, textBytes.length);
    const spans: [number, number][] = [];
    let cursor = 0;
    for (const id of ids) {
      const bytes = this.pieceBytes(id);
      const start = cursor;
      let end: number;
      if (startsWithAt(textBytes, bytes, cursor)) {
        end = cursor + bytes.length;
      } else if (bytes[0] === 0x20 && startsWithAt(textBytes, bytes.subarray(1), cursor)) {
        // NOTE: sentencepiece-style tokenizers prepend a dummy space the text never had.
        end = cursor + bytes.length - 1;
      } else if (this.added.has(id)) {
        // An added token the text does not contain here (a BOS/EOS from the post-processor).
        end = cursor;
      } else {
        return null;
      }
      spans.push([floor[start], ceil[end]]);
      cursor = end;
    }
    return cursor === textBytes.length ? spans : null;
  }

  /** Offsets from decoding growing prefixes of the ids (quadratic; prompts are short). */
  private alignByDecoding(text: string, ids: readonly number[]): [number, number][] {
    const spans: [number, number][] = [];
    let prev = 0;
    for (let i = 0; i < ids.length; i++) {
      const decoded = this.tok.decode(ids.slice(0, i + 1), { clean_up_tokenization_spaces: false });
      let common = 0;
      const max = Math.min(decoded.length, text.length);
      while (common < max && decoded.charCodeAt(common) === text.charCodeAt(common)) common++;
      const end = Math.max(prev, common);
      spans.push([prev, end]);
      prev = end;
    }
    if (spans.length > 0) spans[spans.length - 1][1] = Math.max(prev, text.length);
    return spans;
  }
}

/** For each UTF-8 byte offset: the UTF-16 index of the character it falls in (floor) or ends (ceil). */
function byteToCharMaps(text: string, byteLength: number): { floor: Int32Array; ceil: Int32Array } {
  const floor = new Int32Array(byteLength + 1);
  const ceil = new Int32Array(byteLength + 1);
  let b = 0;
  let c = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (let k = 0; k < n; k++) {
      floor[b + k] = c;
      ceil[b + k] = k === 0 ? c : c + ch.length;
    }
    b += n;
    c += ch.length;
  }
  floor[b] = c;
  ceil[b] = c;
  return { floor, ceil };
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const lossyUtf8 = new TextDecoder('utf-8');

function bytesToDisplayLossy(bytes: Uint8Array): string {
  return lossyUtf8.decode(bytes);
}

/**
 * A monotone map from offsets in `from` to offsets in `to`: identity over their common head, shifted over
 * their common tail, linear in between.
 */
function headTailMap(from: string, to: string): (offset: number) => number {
  const max = Math.min(from.length, to.length);
  let head = 0;
  while (head < max && from.charCodeAt(head) === to.charCodeAt(head)) head++;
  let tail = 0;
  while (tail < max - head && from.charCodeAt(from.length - 1 - tail) === to.charCodeAt(to.length - 1 - tail))
    tail++;
  const fromMid = from.length - head - tail;
  const toMid = to.length - head - tail;
  return (d) => {
    if (d <= head) return d;
    if (d >= from.length - tail) return d + (to.length - from.length);
    return head + Math.round(((d - head) * toMid) / Math.max(fromMid, 1));
  };
}

function indexOfSubarray(haystack: readonly number[], needle: readonly number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function pickChatTemplate(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.filter(
      (t): t is { name: string; template: string } =>
        isObject(t) && typeof t.name === 'string' && typeof t.template === 'string',
    );
    return (named.find((t) => t.name === 'default') ?? named[0])?.template ?? null;
  }
  return null;
}

/** Build a tokenizer from the two parsed JSON files of a Hugging Face model repo. */
export function loadTokenizer(
  tokenizerJson: unknown,
  tokenizerConfig: unknown,
  options: LoadOptions = {},
): LabTokenizer {
  return new LabTokenizer(tokenizerJson, tokenizerConfig, options);
}
