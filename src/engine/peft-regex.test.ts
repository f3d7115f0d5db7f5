import { describe, expect, it } from 'vitest';
import { compilePattern, MAX_PATTERN_LENGTH, MAX_PATTERN_STATES, PatternError } from './peft-regex';

const NAMES = [
  'model.layers.0.self_attn.q_proj',
  'model.layers.12.self_attn.v_proj',
  'model.layers.3.mlp.down_proj',
  'model.layers.7.self_attn.o_proj',
];

// Expected values are Python's `bool(re.fullmatch(pattern, name))` for each of NAMES (CPython 3).
const PYTHON: [string, boolean[]][] = [
  ['.*\\.(q_proj|v_proj)', [true, true, false, false]],
  ['model\\.layers\\.\\d+\\.self_attn\\.(q|k|v|o)_proj', [true, true, false, true]],
  ['.*layers\\.(1[0-5]|[0-9])\\.mlp\\..*', [false, false, true, false]],
  ['(?:.*\\.)?(?P<t>q_proj|down_proj)', [true, false, true, false]],
  ['^model.*[^_]proj$', [false, false, false, false]],
  ['.*\\.[0-9]{2}\\..*', [false, true, false, false]],
  ['|.*o_proj', [false, false, false, true]],
];

// More Python answers on short strings: [pattern, text, fullmatch?]
const PYTHON_EDGES: [string, string, boolean][] = [
  ['a{,}', 'aaa', true],
  ['a{,2}', 'aaa', false],
  ['x{', 'x{', true],
  ['[]a]+', ']a]', true],
  ['[a-]+', '-a-', true],
  ['()*', '', true],
  ['(a|a)*b', 'aab', true],
  ['(.*a){3}', 'aaa', true],
  ['a*?b', 'aab', true],
  ['.*q_proj$', 'q_proj\n', false],
  ['.*q_proj\\n?', 'q_proj\n', true],
  ['\\A.*\\Z', 'a.b', true],
  ['[\\d.]+', '1.2.3', true],
  ['.*\\x2eq_proj', 'a.q_proj', true],
  ['.*(?#comment)q_proj', 'q_proj', true],
  ['(a+)+$', 'aaaa', true],
  ['(a+)+$', 'aaab', false],
];

describe('compilePattern: Python re.fullmatch semantics', () => {
  it.each(PYTHON)('%s matches the module names as Python does', (pattern, want) => {
    const re = compilePattern(pattern);
    expect(NAMES.map((n) => re.fullmatch(n))).toEqual(want);
  });

  it.each(PYTHON_EDGES)('%s on %j is %s, as in Python', (pattern, text, want) => {
    expect(compilePattern(pattern).fullmatch(text)).toBe(want);
  });

  it('refuses what Python refuses, as syntax', () => {
    for (const p of ['(', 'a)', '*a', 'a**', '{2}', 'a{2,1}', '[a', '\\q', '[z-a]']) {
      expect(() => compilePattern(p), p).toThrow(PatternError);
      try {
        compilePattern(p);
      } catch (e) {
        expect((e as PatternError).kind, p).toBe('syntax');
      }
    }
  });

  it('refuses backreferences, lookaround, inline flags, atomic and possessive forms as unsupported', () => {
    for (const [p, why] of [
      ['(a)\\1', /backreference/],
      ['(?P<x>a)(?P=x)', /backreference/],
      ['(?=a)a', /lookahead/],
      ['(?<!a)b', /lookbehind/],
      ['(?i)q_proj', /inline flags/],
      ['(?>a+)', /atomic/],
      ['a*+', /possessive/],
      ['\\bq', /word boundar/],
    ] as const) {
      let err: unknown;
      try {
        compilePattern(p);
      } catch (e) {
        err = e;
      }
      expect(err, p).toBeInstanceOf(PatternError);
      expect((err as PatternError).kind, p).toBe('unsupported');
      expect((err as PatternError).message, p).toMatch(why);
    }
  });

  it('bounds the pattern and what it compiles to', () => {
    expect(() => compilePattern('a'.repeat(MAX_PATTERN_LENGTH + 1))).toThrow(/longer than/);
    expect(() => compilePattern('(a{1000}){1000}')).toThrow(
      new RegExp(`more than ${MAX_PATTERN_STATES} states`),
    );
  });
});

describe('compilePattern: linear time on catastrophic patterns', () => {
  // Each of these takes a backtracking engine (JS RegExp, Python re) exponential time on a long
  // non-matching input: ([a-z_.0-9]+)+X needs ~1 s in V8 at 24 characters and doubles per character.
  const EVIL = [
    '(a+)+$',
    '(a|a)*b',
    '(a|aa)+$',
    '([a-z_.0-9]+)+X',
    '(.*)*X',
    '(.*.*)*X',
    '(\\w|\\d)*X',
    '(.*a){20}',
  ];

  it.each(EVIL)('%s decides 10k-character inputs in milliseconds', (pattern) => {
    const re = compilePattern(pattern);
    const t0 = performance.now();
    expect(re.fullmatch('a'.repeat(10_000) + '!')).toBe(false);
    expect(re.fullmatch(`${NAMES[0]}${'a'.repeat(40)}.`)).toBe(false);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
