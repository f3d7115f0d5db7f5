// PEFT's `target_modules` / `exclude_modules` regex (Python `re.fullmatch`) matched in linear time: the
// pattern is compiled to a Thompson NFA and simulated state-set by state-set, so no pattern can
// backtrack — `(a+)+$` costs the same per character as `a+`. An adapter_config.json is untrusted
// input and its pattern runs once per layer × projection.
// Must never hand a pattern to a backtracking engine (JS RegExp), never accept a feature it does not
// implement exactly (backreferences, lookaround, inline flags, possessive or atomic groups: refused with
// the reason), and never import anything but the language.

/** Refusal of a pattern: `reason` says what is wrong, for the caller to name file and field around it. */
export class PatternError extends Error {
  constructor(
    readonly pattern: string,
    readonly reason: string,
    /** 'syntax': Python would refuse it too; 'unsupported': valid Python, not implemented here */
    readonly kind: 'syntax' | 'unsupported',
  ) {
    super(reason);
    this.name = 'PatternError';
  }
}

/** Longest pattern accepted, in characters (real PEFT patterns are under a few hundred). */
export const MAX_PATTERN_LENGTH = 4096;
/** Most NFA states a pattern may compile to (counted repeats `{n,m}` are expanded into copies). */
export const MAX_PATTERN_STATES = 2000;
/** State sets the lazy DFA keeps per pattern before it starts over (bounds its memory). */
const MAX_CACHED_SETS = 4096;

type CharTest = (cp: number) => boolean;

type Node =
  | { t: 'char'; test: CharTest }
  | { t: 'assert'; kind: 'start' | 'end' | 'endAbs' }
  | { t: 'cat'; parts: Node[] }
  | { t: 'alt'; options: Node[] }
  | { t: 'repeat'; node: Node; min: number; max: number };

const INF = Number.POSITIVE_INFINITY;

const re1 = (r: RegExp): CharTest => {
  return (cp) => r.test(String.fromCodePoint(cp));
};
// Python 3 str patterns: \d is any Unicode decimal digit, \w alphanumerics and underscore, \s whitespace.
const DIGIT = re1(/^\p{Nd}$/u);
const WORD = re1(/^[\p{L}\p{N}_]$/u);
const SPACE = re1(/^\s$/u);
const not =
  (f: CharTest): CharTest =>
  (cp) =>
    !f(cp);

const SIMPLE_ESCAPES: Record<string, number> = { n: 10, t: 9, r: 13, f: 12, v: 11, a: 7 };

class Parser {
  private i = 0;
  private readonly cps: number[];
  constructor(private readonly src: string) {
    this.cps = [...src].map((c) => c.codePointAt(0) as number);
  }

  private fail(reason: string, kind: PatternError['kind'] = 'syntax'): never {
    throw new PatternError(this.src, `${reason} at position ${this.i}`, kind);
  }
  private peek(k = 0): string | undefined {
    const cp = this.cps[this.i + k];
    return cp === undefined ? undefined : String.fromCodePoint(cp);
  }
  private eat(): string {
    const c = this.peek();
    if (c === undefined) this.fail('unexpected end of pattern');
    this.i++;
    return c;
  }

  parse(): Node {
    const n = this.alternation();
    if (this.i < this.cps.length) this.fail('unbalanced parenthesis');
    return n;
  }

  private alternation(): Node {
    const options = [this.sequence()];
    while (this.peek() === '|') {
      this.i++;
      options.push(this.sequence());
    }
    return options.length === 1 ? options[0] : { t: 'alt', options };
  }

  private sequence(): Node {
    const parts: Node[] = [];
    for (let c = this.peek(); c !== undefined && c !== '|' && c !== ')'; c = this.peek()) {
      const atom = this.atom();
      parts.push(this.quantified(atom));
    }
    return { t: 'cat', parts };
  }

  /** `{n}`, `{n,}`, `{,m}`, `{n,m}` at the cursor, else null (then `{` is a literal, as in Python). */
  private braces(): { min: number; max: number; len: number } | null {
    const rest = this.src.slice(this.offsetOf(this.i));
    const m = /^\{(\d*)(,?)(\d*)\}/.exec(rest);
    if (!m || (m[1] === '' && m[2] === '' && m[3] === '') || (m[2] === '' && m[3] !== '')) return null;
    const min = m[1] === '' ? 0 : Number(m[1]);
    const max = m[2] === '' ? min : m[3] === '' ? INF : Number(m[3]);
    if (max < min) this.fail('min repeat greater than max repeat');
    return { min, max, len: [...m[0]].length };
  }

  private offsetOf(cpIndex: number): number {
    let off = 0;
    for (let k = 0; k < cpIndex; k++) off += this.cps[k] > 0xffff ? 2 : 1;
    return off;
  }

  private quantified(atom: Node): Node {
    let out = atom;
    let quantified = false;
    for (;;) {
      const c = this.peek();
      let min: number, max: number;
      if (c === '*' || c === '+' || c === '?') {
        this.i++;
        [min, max] = c === '*' ? [0, INF] : c === '+' ? [1, INF] : [0, 1];
      } else if (c === '{') {
        const b = this.braces();
        if (!b) return out;
        this.i += b.len;
        ({ min, max } = b);
      } else {
        return out;
      }
      if (quantified) this.fail('multiple repeat');
      if (atom.t === 'assert') this.fail('nothing to repeat');
      quantified = true;
      // Lazy (`*?`) matches the same strings as greedy for a whole-string match; possessive does not.
      if (this.peek() === '?') this.i++;
      else if (this.peek() === '+') this.fail('possessive quantifiers are not supported', 'unsupported');
      out = { t: 'repeat', node: out, min, max };
    }
  }

  private atom(): Node {
    const c = this.eat();
    switch (c) {
      case '.':
        return { t: 'char', test: (cp) => cp !== 10 };
      case '^':
        return { t: 'assert', kind: 'start' };
      case '$':
        return { t: 'assert', kind: 'end' };
      case '[':
        return { t: 'char', test: this.charClass() };
      case '(':
        return this.group();
      case ')':
        return this.fail('unbalanced parenthesis');
      case '*':
      case '+':
      case '?':
        return this.fail('nothing to repeat');
      case '{':
        if (this.bracesBefore()) this.fail('nothing to repeat');
        return literal(c.codePointAt(0) as number);
      case '\\':
        return this.escape(false) as Node;
      default:
        return literal(c.codePointAt(0) as number);
    }
  }

  private bracesBefore(): boolean {
    this.i--;
    const b = this.braces();
    this.i++;
    return b !== null;
  }

  private group(): Node {
    if (this.peek() === '?') {
      this.i++;
      const k = this.eat();
      if (k === ':') {
        // non-capturing
      } else if (k === 'P' && this.peek() === '<') {
        this.i++;
        while (this.peek() !== '>') {
          if (this.peek() === undefined) this.fail('missing >, unterminated name');
          this.i++;
        }
        this.i++;
      } else if (k === 'P' && this.peek() === '=') {
        this.fail('backreferences are not supported', 'unsupported');
      } else if (k === '=' || k === '!') {
        this.fail('lookahead is not supported', 'unsupported');
      } else if (k === '<' && (this.peek() === '=' || this.peek() === '!')) {
        this.fail('lookbehind is not supported', 'unsupported');
      } else if (k === '#') {
        while (this.peek() !== ')') {
          if (this.peek() === undefined) this.fail('missing ), unterminated comment');
          this.i++;
        }
        this.i++;
        return { t: 'cat', parts: [] };
      } else if (k === '>') {
        this.fail('atomic groups are not supported', 'unsupported');
      } else if (k === '(') {
        this.fail('conditional groups are not supported', 'unsupported');
      } else {
        this.fail(`inline flags or group type (?${k} are not supported`, 'unsupported');
      }
    }
    const inner = this.alternation();
    if (this.peek() !== ')') this.fail('missing ), unterminated subpattern');
    this.i++;
    return inner;
  }

  /** An escape after `\`; inside a class it must stand for characters (no assertions). */
  private escape(inClass: boolean): Node | CharTest {
    const c = this.eat();
    const cp = c.codePointAt(0) as number;
    switch (c) {
      case 'd':
        return wrap(DIGIT, inClass);
      case 'D':
        return wrap(not(DIGIT), inClass);
      case 'w':
        return wrap(WORD, inClass);
      case 'W':
        return wrap(not(WORD), inClass);
      case 's':
        return wrap(SPACE, inClass);
      case 'S':
        return wrap(not(SPACE), inClass);
      case 'A':
        if (inClass) this.fail('bad escape \\A');
        return { t: 'assert', kind: 'start' };
      case 'Z':
        if (inClass) this.fail('bad escape \\Z');
        return { t: 'assert', kind: 'endAbs' };
      case 'b':
        if (inClass) return wrap(eq(8), true);
        return this.fail('word boundaries (\\b) are not supported', 'unsupported');
      case 'B':
        return this.fail('word boundaries (\\B) are not supported', 'unsupported');
      case 'x': {
        const h = this.hex(2);
        return wrap(eq(h), inClass);
      }
      case 'u':
        return wrap(eq(this.hex(4)), inClass);
      case 'U':
        return wrap(eq(this.hex(8)), inClass);
      case '0':
        return wrap(eq(this.octal()), inClass);
      default:
        if (c >= '1' && c <= '9') {
          if (inClass) return wrap(eq(this.octal(cp - 48)), true);
          return this.fail('backreferences are not supported', 'unsupported');
        }
        if (SIMPLE_ESCAPES[c] !== undefined) return wrap(eq(SIMPLE_ESCAPES[c]), inClass);
        if (/[A-Za-z]/.test(c)) return this.fail(`bad escape \\${c}`);
        return wrap(eq(cp), inClass);
    }
  }

  private hex(n: number): number {
    let s = '';
    for (let k = 0; k < n; k++) {
      const c = this.peek();
      if (c === undefined || !/[0-9a-fA-F]/.test(c)) this.fail(`incomplete escape, expected ${n} hex digits`);
      s += c;
      this.i++;
    }
    return parseInt(s, 16);
  }

  private octal(first = 0): number {
    let v = first;
    for (let k = 0; k < 2 && /[0-7]/.test(this.peek() ?? ''); k++) v = v * 8 + Number(this.eat());
    return v;
  }

  private charClass(): CharTest {
    let negate = false;
    if (this.peek() === '^') {
      negate = true;
      this.i++;
    }
    const tests: CharTest[] = [];
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail('unterminated character set');
      if (c === ']' && !first) {
        this.i++;
        break;
      }
      first = false;
      const lo = this.classItem();
      if (
        typeof lo === 'number' &&
        this.peek() === '-' &&
        this.peek(1) !== ']' &&
        this.peek(1) !== undefined
      ) {
        this.i++;
        const hi = this.classItem();
        if (typeof hi !== 'number') this.fail('bad character range');
        if (hi < lo) this.fail('bad character range');
        tests.push((cp) => cp >= lo && cp <= hi);
      } else {
        tests.push(typeof lo === 'number' ? eq(lo) : lo);
      }
    }
    const any: CharTest = (cp) => tests.some((t) => t(cp));
    return negate ? not(any) : any;
  }

  /** One class member: a code point, or a class escape's test. */
  private classItem(): number | CharTest {
    const c = this.eat();
    if (c !== '\\') return c.codePointAt(0) as number;
    const save = this.i;
    const e = this.escape(true) as CharTest;
    // Single-character escapes come back as eq(cp) tests; recover the code point for ranges.
    const single = this.singleOf(save);
    return single ?? e;
  }

  private singleOf(save: number): number | undefined {
    const c = String.fromCodePoint(this.cps[save]);
    if ('dDwWsS'.includes(c)) return undefined;
    if (c === 'x' || c === 'u' || c === 'U') {
      const digits = String.fromCodePoint(...this.cps.slice(save + 1, this.i));
      return parseInt(digits, 16);
    }
    if (c >= '0' && c <= '9') return parseInt(String.fromCodePoint(...this.cps.slice(save, this.i)), 8);
    if (c === 'b') return 8;
    if (SIMPLE_ESCAPES[c] !== undefined) return SIMPLE_ESCAPES[c];
    return this.cps[save];
  }
}

function eq(v: number): CharTest {
  return (cp) => cp === v;
}
function literal(cp: number): Node {
  return { t: 'char', test: eq(cp) };
}
function wrap(test: CharTest, inClass: boolean): Node | CharTest {
  return inClass ? test : { t: 'char', test };
}

// ---------------------------------------------------------------------------------------------
// Thompson NFA

type State =
  | { t: 'char'; test: CharTest; out: number }
  | { t: 'split'; a: number; b: number }
  | { t: 'assert'; kind: 'start' | 'end' | 'endAbs'; out: number }
  | { t: 'match' };

class Builder {
  readonly states: State[] = [];
  constructor(private readonly src: string) {}

  private add(s: State): number {
    if (this.states.length >= MAX_PATTERN_STATES) {
      throw new PatternError(
        this.src,
        `the pattern compiles to more than ${MAX_PATTERN_STATES} states (counted repeats expand)`,
        'unsupported',
      );
    }
    this.states.push(s);
    return this.states.length - 1;
  }

  /** Compiles `n` so that it continues to state `next`; returns its entry state. */
  build(n: Node, next: number): number {
    switch (n.t) {
      case 'char':
        return this.add({ t: 'char', test: n.test, out: next });
      case 'assert':
        return this.add({ t: 'assert', kind: n.kind, out: next });
      case 'cat': {
        let entry = next;
        for (let k = n.parts.length - 1; k >= 0; k--) entry = this.build(n.parts[k], entry);
        return entry;
      }
      case 'alt': {
        let entry = this.build(n.options[n.options.length - 1], next);
        for (let k = n.options.length - 2; k >= 0; k--) {
          entry = this.add({ t: 'split', a: this.build(n.options[k], next), b: entry });
        }
        return entry;
      }
      case 'repeat': {
        let entry = next;
        if (n.max === INF) {
          // x* : a loop state that either enters x (which comes back to it) or leaves
          const loop = this.add({ t: 'split', a: -1, b: next });
          (this.states[loop] as { a: number }).a = this.build(n.node, loop);
          entry = loop;
        } else {
          // up to max - min optional copies: x?(x?(…)) where skipping any copy leaves for `next`
          for (let k = 0; k < n.max - n.min; k++) {
            entry = this.add({ t: 'split', a: this.build(n.node, entry), b: next });
          }
        }
        for (let k = 0; k < n.min; k++) entry = this.build(n.node, entry);
        return entry;
      }
    }
  }
}

/** A compiled pattern: `fullmatch(name)` as Python's `re.fullmatch(pattern, name) is not None`. */
export interface CompiledPattern {
  readonly source: string;
  readonly states: number;
  fullmatch(text: string): boolean;
}

/** Compiles a Python regex (the subset PEFT configs use); throws PatternError naming the problem. */
export function compilePattern(source: string): CompiledPattern {
  if (source.length > MAX_PATTERN_LENGTH) {
    throw new PatternError(
      source,
      `the pattern is longer than ${MAX_PATTERN_LENGTH} characters`,
      'unsupported',
    );
  }
  const ast = new Parser(source).parse();
  const b = new Builder(source);
  const match = b.states.length;
  b.states.push({ t: 'match' });
  const start = b.build(ast, match);
  const states = b.states;

  /** Adds `s` and everything reachable without consuming a character to `set`. */
  const close = (s: number, set: Set<number>, pos: number, len: number, text: number[]): void => {
    const stack = [s];
    while (stack.length > 0) {
      const k = stack.pop() as number;
      if (set.has(k)) continue;
      set.add(k);
      const st = states[k];
      switch (st.t) {
        case 'split':
          stack.push(st.b, st.a);
          break;
        case 'assert': {
          const ok =
            st.kind === 'start'
              ? pos === 0
              : st.kind === 'endAbs'
                ? pos === len
                : pos === len || (pos === len - 1 && text[pos] === 10);
          if (ok) stack.push(st.out);
          break;
        }
        default:
          break;
      }
    }
  };

  // A lazily built DFA over the NFA's state sets, shared by every name matched with this pattern:
  // each (set, character, end-of-text flag) transition is computed once, in time linear in the states.
  interface DState {
    ids: number[];
    key: string;
    accepts: boolean;
    next: Map<number, DState>;
  }
  const cache = new Map<string, DState>();
  const dstate = (set: Set<number>): DState => {
    const ids = [...set].sort((x, y) => x - y);
    const key = ids.join(',');
    let d = cache.get(key);
    if (!d) {
      if (cache.size >= MAX_CACHED_SETS) cache.clear();
      d = { ids, key, accepts: set.has(match), next: new Map() };
      cache.set(key, d);
    }
    return d;
  };

  return {
    source,
    states: states.length,
    fullmatch(text) {
      const cps = [...text].map((c) => c.codePointAt(0) as number);
      const len = cps.length;
      const first = new Set<number>();
      close(start, first, 0, len, cps);
      let current = dstate(first);
      for (let pos = 0; pos < len; pos++) {
        const after = pos + 1;
        // what the assertions after this character can see: the end, a final newline, or neither
        const flag = after === len ? 2 : after === len - 1 && cps[after] === 10 ? 1 : 0;
        const edge = cps[pos] * 3 + flag;
        let next = current.next.get(edge);
        if (!next) {
          const set = new Set<number>();
          for (const k of current.ids) {
            const st = states[k];
            if (st.t === 'char' && st.test(cps[pos])) close(st.out, set, after, len, cps);
          }
          next = dstate(set);
          current.next.set(edge, next);
        }
        if (next.ids.length === 0) return false;
        current = next;
      }
      return current.accepts;
    },
  };
}
