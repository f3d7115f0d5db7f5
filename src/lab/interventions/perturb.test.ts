import { describe, expect, it } from 'vitest';
import type { SegmentName } from '../spec/experiment';
import type { PromptToken } from '../spec/results';
import {
  applyEdits,
  bestAndAvg,
  capitaliseSystemPromptEdits,
  changeDateEdits,
  deleteSystemPromptEdits,
  looksSpecial,
  nearestNeighbours,
  randomPerturbations,
  segmentsOf,
  segmentText,
  swapHeaderTokenEdits,
  systemPromptSpan,
  textEdits,
  type EmbeddingMatrix,
  type SegmentedPrompt,
  type TokenCodec,
} from './perturb';

// A word-level toy tokenizer: a piece is optional whitespace + non-space run, or a whitespace run.
// Base words get ids 0..M−1, their "twins" M..2M−1 (text + "~"), anything new is appended after.
const WORDS = [
  '<|bos|>',
  '<|hdr|>',
  'system',
  '<|end|>',
  '\n\n',
  'Today',
  ' Date:',
  ' 26',
  ' Jul',
  ' 2024',
  'You',
  ' are',
  ' helpful.',
  '<|eot|>',
  'user',
  'What',
  ' is',
  ' 2+2?',
  'assistant',
];
const M = WORDS.length; // 19
const SEED_3_0 = 3888307089; // deriveSeed(3, 0), from the Python reference

function makeCodec(): TokenCodec & { id: (piece: string) => number } {
  const vocab = new Map<string, number>();
  const rev: string[] = [];
  const id = (piece: string): number => {
    let v = vocab.get(piece);
    if (v === undefined) {
      v = rev.length;
      vocab.set(piece, v);
      rev.push(piece);
    }
    return v;
  };
  WORDS.forEach(id);
  WORDS.forEach((w) => id(`${w}~`));
  return {
    id,
    encode: (text) => (text.match(/\s*\S+|\s+/g) ?? []).map(id),
    decode: (i) => rev[i],
  };
}

function build(parts: [SegmentName, string[]][], codec = makeCodec()): SegmentedPrompt {
  const tokens: PromptToken[] = [];
  for (const [segment, texts] of parts)
    for (const text of texts) tokens.push({ id: codec.id(text), text, segment });
  return { tokens, segments: segmentsOf(tokens) };
}

const LLAMA_PREFIX = [
  '<|bos|>',
  '<|hdr|>',
  'system',
  '<|end|>',
  '\n\n',
  'Today',
  ' Date:',
  ' 26',
  ' Jul',
  ' 2024',
  '\n\n',
  'You',
  ' are',
  ' helpful.',
  '<|eot|>',
  '<|hdr|>',
  'user',
  '<|end|>',
  '\n\n',
];
const QUERY = ['What', ' is', ' 2+2?'];
const POSTFIX = ['<|eot|>', '<|hdr|>', 'assistant', '<|end|>', '\n\n'];
const llama = (): SegmentedPrompt =>
  build([
    ['prefix', LLAMA_PREFIX],
    ['query', QUERY],
    ['postfix', POSTFIX],
  ]);

// Embedding [2M, M]: word i is the basis vector a_i, its twin 0.99·a_i; every other pair is orthogonal,
// so a word's single nearest neighbour is its twin (and vice versa).
function twinEmbedding(): EmbeddingMatrix {
  const data = new Float32Array(2 * M * M);
  for (let i = 0; i < M; i++) {
    data[i * M + i] = 1;
    data[(i + M) * M + i] = 0.99;
  }
  return { data, vocab: 2 * M, hidden: M };
}

const texts = (p: SegmentedPrompt, seg?: SegmentName) =>
  (seg ? p.tokens.slice(...p.segments[seg]) : p.tokens).map((t) => t.text);

describe('segmentsOf', () => {
  it('computes half-open ranges, empty segments included', () => {
    expect(llama().segments).toEqual({ prefix: [0, 19], query: [19, 22], postfix: [22, 27] });
    const noQuery = build([
      ['prefix', ['<|bos|>', 'user']],
      ['postfix', ['<|eot|>']],
    ]);
    expect(noQuery.segments).toEqual({ prefix: [0, 2], query: [2, 2], postfix: [2, 3] });
  });

  it('refuses a segment that comes back', () => {
    const t = (segment: SegmentName): PromptToken => ({ id: 0, text: 'x', segment });
    expect(() => segmentsOf([t('prefix'), t('query'), t('prefix')])).toThrow(/after a later segment/);
  });
});

describe('applyEdits', () => {
  const codec = makeCodec();

  it('inserts before, replaces and deletes, shifting later segments', () => {
    const p = llama();
    const out = applyEdits(
      p,
      [
        { op: 'insert', segment: 'prefix', index: 0, token: { text: 'Hi there' } }, // 2 tokens before BOS
        { op: 'replace', segment: 'query', index: 1, token: { id: codec.id(' was') } },
        { op: 'delete', segment: 'postfix', index: 4 },
        { op: 'insert', segment: 'query', index: 3, token: { text: ' Really?' } }, // appended to the query
      ],
      codec,
    );
    expect(out.segments).toEqual({ prefix: [0, 21], query: [21, 25], postfix: [25, 29] });
    expect(texts(out, 'query')).toEqual(['What', ' was', ' 2+2?', ' Really?']);
    expect(texts(out).slice(0, 3)).toEqual(['Hi', ' there', '<|bos|>']);
    expect(texts(out, 'postfix')).toEqual(['<|eot|>', '<|hdr|>', 'assistant', '<|end|>']);
    expect(out.tokens.filter((t) => t.edited).map((t) => t.text)).toEqual([
      'Hi',
      ' there',
      ' was',
      ' Really?',
    ]);
    expect(out.origin.slice(0, 3)).toEqual([null, null, 0]);
    expect(out.origin.slice(21, 25)).toEqual([19, 20, 21, null]);
    expect(out.origin[28]).toBe(25); // '<|end|>' kept, the final '\n\n' (26) deleted
  });

  it('indices refer to the unedited prompt, so edit order does not matter', () => {
    const edits = [
      { op: 'delete', segment: 'prefix', index: 5 },
      { op: 'insert', segment: 'prefix', index: 6, token: { text: ' Day' } },
      { op: 'replace', segment: 'prefix', index: 6, token: { text: ' Night' } },
    ] as const;
    const a = applyEdits(llama(), edits, codec);
    const b = applyEdits(llama(), [...edits].reverse(), codec);
    expect(a).toEqual(b);
    expect(texts(a, 'prefix').slice(4, 8)).toEqual(['\n\n', ' Day', ' Night', ' 26']);
    expect(a.segments.prefix).toEqual([0, 19]);
  });

  it('replacing by a text of several tokens, or of none', () => {
    const out = applyEdits(
      llama(),
      [
        { op: 'replace', segment: 'query', index: 0, token: { text: 'How much' } },
        { op: 'replace', segment: 'query', index: 2, token: { text: '' } },
      ],
      codec,
    );
    expect(texts(out, 'query')).toEqual(['How', ' much', ' is']);
    expect(out.origin.slice(19, 22)).toEqual([19, 19, 20]);
  });

  it('refuses conflicting, out-of-range and codec-less text edits', () => {
    const p = llama();
    expect(() =>
      applyEdits(p, [
        { op: 'delete', segment: 'query', index: 0 },
        { op: 'replace', segment: 'query', index: 0, token: { id: 3 } },
      ]),
    ).toThrow(/two edits/);
    expect(() => applyEdits(p, [{ op: 'delete', segment: 'query', index: 3 }])).toThrow(RangeError);
    expect(() => applyEdits(p, [{ op: 'insert', segment: 'query', index: 4, token: { id: 1 } }])).toThrow(
      RangeError,
    );
    expect(() =>
      applyEdits(p, [{ op: 'replace', segment: 'query', index: 0, token: { text: 'x' } }]),
    ).toThrow(/encode/);
    expect(() => applyEdits(p, [{ op: 'replace', segment: 'query', index: 0, token: { id: -1 } }])).toThrow(
      RangeError,
    );
  });

  it('without decode, id edits get a placeholder text', () => {
    const out = applyEdits(llama(), [{ op: 'replace', segment: 'query', index: 0, token: { id: 7 } }]);
    expect(out.tokens[19]).toEqual({ id: 7, text: '<7>', segment: 'query', edited: true });
  });
});

describe('nearestNeighbours', () => {
  // rows: e0=(1,0) e1=(0.9,0.1) e2=(2,0) e3=(−1,0) e4=(0.5,0.5) e5=(0.9,−3)
  const E = new Float32Array([1, 0, 0.9, 0.1, 2, 0, -1, 0, 0.5, 0.5, 0.9, -3]);

  it('ranks by dot product, excludes the token itself, breaks ties by lower id', () => {
    const nn = nearestNeighbours(E, 6, 2, 0, 3);
    expect(nn.ids).toEqual([2, 1, 5]); // dots 2, 0.9, 0.9 (tie: 1 before 5), then 0.5, −1
    expect(nn.scores[0]).toBe(2);
    expect(nn.scores[1]).toBeCloseTo(0.9, 6);
    expect(nearestNeighbours(E, 6, 2, 3, 2).ids).toEqual([4, 1]); // e3·: e4 −0.5, e1 −0.9, e5 −0.9, e0 −1, e2 −2
  });

  it('honours `allowed` and returns fewer when the vocabulary is small', () => {
    expect(nearestNeighbours(E, 6, 2, 0, 3, (id) => id !== 2).ids).toEqual([1, 5, 4]);
    expect(nearestNeighbours(E, 6, 2, 2, 10).ids).toEqual([0, 1, 5, 4, 3]);
    expect(nearestNeighbours(E, 6, 2, 2, 0).ids).toEqual([]);
  });

  it('validates shapes', () => {
    expect(() => nearestNeighbours(E, 5, 2, 0, 1)).toThrow(RangeError);
    expect(() => nearestNeighbours(E, 6, 2, 6, 1)).toThrow(RangeError);
  });
});

describe('randomPerturbations', () => {
  const codec = makeCodec();
  const emb = twinEmbedding();

  it('replaces the seeded positions by their nearest neighbour (n = 1)', () => {
    // positions from an independent reference: sample(4, 19) with seed deriveSeed(3, 0) → 15, 10, 17, 7
    const [t] = randomPerturbations(llama(), { segment: 'prefix', k: 4, n: 1, trials: 1, seed: 3 }, emb, {
      codec,
    });
    expect(t.seed).toBe(SEED_3_0);
    expect(t.replacements).toEqual([
      { position: 7, from: 7, to: 7 + M },
      { position: 10, from: 4, to: 4 + M },
      { position: 15, from: 1, to: 1 + M },
      { position: 17, from: 3, to: 3 + M },
    ]);
    expect(texts(t.prompt, 'prefix')[7]).toBe(' 26~');
    expect(t.prompt.tokens.filter((x) => x.edited).length).toBe(4);
  });

  it('trial t uses its own stream: positions match the reference for trials 0 and 1', () => {
    const ts = randomPerturbations(llama(), { segment: 'prefix', n: 1, trials: 2, seed: 1 }, emb);
    expect(ts.map((t) => t.seed)).toEqual([1863002342, 3530840802]);
    expect(ts[0].replacements.map((r) => r.position)).toEqual([1, 3, 4, 5, 7, 8, 9, 12, 16, 18]);
    expect(ts[1].replacements.map((r) => r.position)).toEqual([0, 1, 2, 4, 5, 11, 12, 13, 16, 18]);
  });

  it('is deterministic by seed, independent of the trial count, and changes only the chosen segment', () => {
    const p = llama();
    const a = randomPerturbations(p, { segment: 'query', k: 2, trials: 5, seed: 11 }, emb);
    const b = randomPerturbations(p, { segment: 'query', k: 2, trials: 3, seed: 11 }, emb);
    expect(b).toEqual(a.slice(0, 3));
    const c = randomPerturbations(p, { segment: 'query', k: 2, trials: 5, seed: 12 }, emb);
    expect(c.map((t) => t.replacements)).not.toEqual(a.map((t) => t.replacements));
    for (const t of a) {
      expect(t.prompt.segments).toEqual(p.segments);
      expect(t.replacements).toHaveLength(2);
      t.prompt.tokens.forEach((tok, i) => {
        const inQuery = i >= 19 && i < 22;
        if (!inQuery) expect(tok).toEqual(p.tokens[i]);
      });
      for (const r of t.replacements) {
        expect(r.to).not.toBe(r.from);
        // top-5 of word w: its twin (0.99), then the zero-dot words with the lowest ids
        expect(nearestNeighbours(emb.data, emb.vocab, emb.hidden, r.from, 5).ids).toContain(r.to);
        expect(t.prompt.tokens[r.position].id).toBe(r.to);
      }
    }
  });

  it('caps k at the segment length and can exclude special tokens', () => {
    const [all] = randomPerturbations(llama(), { segment: 'query', trials: 1, seed: 0 }, emb);
    expect(all.replacements.map((r) => r.position)).toEqual([19, 20, 21]);
    const ts = randomPerturbations(llama(), { segment: 'postfix', k: 10, trials: 3, seed: 5 }, emb, {
      exclude: 'special',
    });
    for (const t of ts) expect(t.replacements.map((r) => r.position)).toEqual([24, 26]); // 'assistant', '\n\n'
    const custom = randomPerturbations(llama(), { segment: 'prefix', k: 3, trials: 2, seed: 5 }, emb, {
      exclude: (_t, pos) => pos !== 0,
    });
    for (const t of custom) expect(t.replacements.map((r) => r.position)).toEqual([0]);
  });

  it('validates k, n and trials', () => {
    expect(() => randomPerturbations(llama(), { segment: 'query', k: 0, seed: 0 }, emb)).toThrow(RangeError);
    expect(() => randomPerturbations(llama(), { segment: 'query', trials: 1.5, seed: 0 }, emb)).toThrow(
      RangeError,
    );
  });
});

describe('bestAndAvg', () => {
  it('reports max and mean, skipping missing scores', () => {
    expect(bestAndAvg([30, null, 70, 50, Number.NaN])).toEqual({ best: 70, avg: 50, bestTrial: 2, n: 3 });
    expect(bestAndAvg([30, null, 70, 50], false)).toEqual({ best: 30, avg: 50, bestTrial: 0, n: 3 });
    expect(bestAndAvg([5, 5])).toEqual({ best: 5, avg: 5, bestTrial: 0, n: 2 });
    expect(bestAndAvg([null])).toEqual({ best: null, avg: null, bestTrial: null, n: 0 });
  });
});

describe('text edits and presets', () => {
  const codec = makeCodec();

  it('textEdits re-encodes the covering tokens', () => {
    const p = llama();
    // "…Date: 26 Jul 2024…": replace "Jul" (inside token ' Jul', prefix index 8)
    const text = segmentText(p, 'prefix');
    const at = text.indexOf('Jul');
    expect(textEdits(p, 'prefix', at, at + 3, 'Aug', codec)).toEqual([
      { op: 'replace', segment: 'prefix', index: 8, token: { text: ' Aug' } },
    ]);
    expect(() => textEdits(p, 'prefix', 0, text.length + 1, 'x', codec)).toThrow(RangeError);
  });

  it('changeDateEdits swaps the Today Date', () => {
    const p = llama();
    const edits = changeDateEdits(p, codec, '1 Jan 2030');
    expect(edits).toEqual([
      { op: 'replace', segment: 'prefix', index: 7, token: { text: ' 1 Jan 2030' } },
      { op: 'delete', segment: 'prefix', index: 8 },
      { op: 'delete', segment: 'prefix', index: 9 },
    ]);
    const out = applyEdits(p, edits!, codec);
    expect(segmentText(out, 'prefix')).toContain('Today Date: 1 Jan 2030\n\n');
    expect(out.segments.query).toEqual([19, 22]);
    const qwen = build([['prefix', ['<|im_start|>', 'user', '\n']]]);
    expect(changeDateEdits(qwen, codec)).toBeNull();
  });

  const qwen = () =>
    build([
      [
        'prefix',
        [
          '<|im_start|>',
          'system',
          '\n',
          'You',
          ' are',
          ' Qwen.',
          '<|im_end|>',
          '\n',
          '<|im_start|>',
          'user',
          '\n',
        ],
      ],
      ['query', ['Hi']],
    ]);

  it('systemPromptSpan finds the system content (heuristic and literal)', () => {
    const q = qwen();
    const span = systemPromptSpan(q)!;
    expect(segmentText(q, 'prefix').slice(span.start, span.end)).toBe('You are Qwen.');
    const l = llama();
    const ls = systemPromptSpan(l)!;
    expect(segmentText(l, 'prefix').slice(ls.start, ls.end)).toBe(
      'Today Date: 26 Jul 2024\n\nYou are helpful.',
    );
    const lit = systemPromptSpan(l, { systemText: 'You are helpful.' })!;
    expect(segmentText(l, 'prefix').slice(lit.start, lit.end)).toBe('You are helpful.');
    expect(systemPromptSpan(l, { systemText: 'absent' })).toBeNull();
  });

  it('capitaliseSystemPromptEdits upper-cases only the system content', () => {
    const q = qwen();
    const edits = capitaliseSystemPromptEdits(q, codec)!;
    expect(edits).toEqual([
      { op: 'replace', segment: 'prefix', index: 3, token: { text: 'YOU ARE QWEN.' } },
      { op: 'delete', segment: 'prefix', index: 4 },
      { op: 'delete', segment: 'prefix', index: 5 },
    ]);
    const out = applyEdits(q, edits, codec);
    expect(texts(out, 'prefix')).toEqual([
      '<|im_start|>',
      'system',
      '\n',
      'YOU',
      ' ARE',
      ' QWEN.',
      '<|im_end|>',
      '\n',
      '<|im_start|>',
      'user',
      '\n',
    ]);
    const shouting = build([['prefix', ['<|im_start|>', 'system', '\n', 'OK', '<|im_end|>']]]);
    expect(capitaliseSystemPromptEdits(shouting, codec)).toBeNull();
  });

  it('deleteSystemPromptEdits', () => {
    const out = applyEdits(qwen(), deleteSystemPromptEdits(qwen(), codec)!, codec);
    expect(texts(out, 'prefix')).toEqual([
      '<|im_start|>',
      'system',
      '\n',
      '<|im_end|>',
      '\n',
      '<|im_start|>',
      'user',
      '\n',
    ]);
    expect(out.segments.query).toEqual([8, 9]);
  });

  it('swapHeaderTokenEdits replaces the user header role', () => {
    const edits = swapHeaderTokenEdits(llama(), codec);
    expect(edits).toEqual([{ op: 'replace', segment: 'prefix', index: 16, token: { text: 'system' } }]);
    const out = applyEdits(llama(), edits!, codec);
    expect(out.tokens[16]).toMatchObject({ id: codec.id('system'), text: 'system', edited: true });
    expect(swapHeaderTokenEdits(llama(), codec, 'nobody')).toBeNull();
  });

  it('looksSpecial', () => {
    expect(looksSpecial({ text: '<|im_start|>' })).toBe(true);
    expect(looksSpecial({ text: '<bos>' })).toBe(true);
    expect(looksSpecial({ text: '<start_of_turn>' })).toBe(true);
    expect(looksSpecial({ text: 'user' })).toBe(false);
    expect(looksSpecial({ text: '<' })).toBe(false);
    expect(looksSpecial({ text: 'user', special: true })).toBe(true);
  });
});
