import { describe, expect, it } from 'vitest';
import { EngineError } from '../../engine/errors';
import { bytesToDisplay, loadTokenizer } from './tokenizer';
import { byteLevelTokenizer, sentencepieceTokenizer } from './tokenizer.testdata';

describe('LabTokenizer, byte-level BPE', () => {
  const { json, config } = byteLevelTokenizer(true);
  const tok = loadTokenizer(json, config);

  it('reads vocabulary size, special tokens and config tokens', () => {
    expect(tok.vocabSize).toBe(306);
    expect(tok.specialTokens.map((t) => t.text).slice(0, 3)).toEqual([
      '<|begin_of_text|>',
      '<|im_start|>',
      '<|im_end|>',
    ]);
    expect(tok.bosToken).toBe('<|begin_of_text|>');
    expect(tok.eosToken).toBe('<|im_end|>');
    expect(tok.chatTemplate).toBe('D');
    expect(tok.isSpecial(301)).toBe(true);
    expect(tok.isSpecial(5)).toBe(false);
    expect(tok.isAdded(301)).toBe(true);
    expect(tok.isAdded(5)).toBe(false);
  });

  it('adds no special tokens unless asked', () => {
    expect(tok.encode('hey')).toEqual([tok.tokenToId('hey')]);
    expect(tok.encode('hey', { addSpecialTokens: true })).toEqual([300, tok.tokenToId('hey')]);
    expect(tok.addsBos).toBe(true);
    expect(tok.addedPrefixIds).toEqual([300]);
    expect(tok.addedSuffixIds).toEqual([]);
    const noBos = byteLevelTokenizer(false);
    expect(loadTokenizer(noBos.json, noBos.config).addsBos).toBe(false);
  });

  it('keeps special tokens whole and round-trips text through decode', () => {
    const text = '<|im_start|>user\nhey I feel bored ☕ 🙂<|im_end|>\n\n';
    const ids = tok.encode(text);
    expect(ids[0]).toBe(301);
    expect(ids.filter((i) => i === 302)).toHaveLength(1);
    expect(tok.decode(ids)).toBe(text);
    expect(tok.decode([])).toBe('');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('user\nhey I feel bored ☕ 🙂\n\n');
  });

  it('shows display text per token: decoded pieces, specials verbatim, partial bytes as hex', () => {
    expect(tok.idToPiece(tok.tokenToId('ĠI') ?? -1)).toBe('ĠI');
    expect(tok.idToText(tok.tokenToId('ĠI') ?? -1)).toBe(' I');
    expect(tok.idToText(tok.tokenToId('ĊĊ') ?? -1)).toBe('\n\n');
    expect(tok.idToText(302)).toBe('<|im_end|>');
    const ids = tok.encode('☕');
    expect(ids).toHaveLength(3);
    expect(ids.map((i) => tok.idToText(i))).toEqual(['<0xE2>', '<0x98>', '<0x95>']);
    expect(tok.idToText(99999)).toBe('<unk:99999>');
  });

  it('gives exact character offsets, including multi-byte characters split over tokens', () => {
    const text = '<|im_start|>hey ☕é<|im_end|>';
    const enc = tok.encodeWithOffsets(text, { addSpecialTokens: true });
    expect(enc.alignment).toBe('bytes');
    expect(enc.ids[0]).toBe(300);
    expect(enc.offsets[0]).toEqual([0, 0]);
    const pieces = enc.offsets.map(([s, e]) => text.slice(s, e));
    expect(pieces[1]).toBe('<|im_start|>');
    expect(pieces[2]).toBe('hey');
    expect(pieces.at(-1)).toBe('<|im_end|>');
    // ☕ (3 bytes) spans three byte tokens: each maps to the whole character.
    const coffee = text.indexOf('☕');
    expect(enc.offsets.filter(([s, e]) => s === coffee && e === coffee + 1)).toHaveLength(3);
    for (let i = 1; i < enc.offsets.length; i++)
      expect(enc.offsets[i][0]).toBeLessThanOrEqual(enc.offsets[i][1]);
    expect(enc.offsets.at(-1)?.[1]).toBe(text.length);
  });

  it('refuses non-objects, naming the file', () => {
    expect(() => loadTokenizer('nope', {})).toThrow(/^tokenizer\.json: the file must be a JSON object/);
    expect(() => loadTokenizer(json, null, { source: 'org/m' })).toThrow(
      /^org\/m\/tokenizer_config\.json: the file must be a JSON object \(got null\)/,
    );
  });
});

describe('untrusted tokenizer.json: the model section is checked, every error names the file', () => {
  const { json, config } = byteLevelTokenizer(true);
  const model = json.model as Record<string, unknown>;
  const withModel = (patch: Record<string, unknown>) => ({ ...json, model: { ...model, ...patch } });

  const refuse = (tokenizerJson: unknown, field: RegExp, tokenizerConfig: unknown = config) => {
    let err: unknown;
    try {
      loadTokenizer(tokenizerJson, tokenizerConfig, { source: 'evil/repo' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('bad_tokenizer');
    expect((err as EngineError).message).toMatch(/^evil\/repo\/tokenizer\.json: /);
    expect((err as EngineError).message).toMatch(field);
    return err as EngineError;
  };

  it('a vocabulary that is a number (which today encodes every word to nothing)', () => {
    refuse(withModel({ vocab: 5 }), /model\.vocab must be an object of token → id \(got number 5\)/);
  });

  it('vocabulary ids that are not token ids', () => {
    refuse(
      withModel({ vocab: { ...(model.vocab as object), x: 'seven' } }),
      /model\.vocab\["x"\] must be a token id/,
    );
    refuse(withModel({ vocab: { a: -1 } }), /model\.vocab\["a"\]/);
    refuse(withModel({ vocab: { a: 2 ** 40 } }), /model\.vocab\["a"\] must be a token id below/);
    refuse(withModel({ vocab: {} }), /model\.vocab is empty/);
  });

  it('merges of the wrong shape', () => {
    refuse(withModel({ merges: 'a b' }), /model\.merges must be a list/);
    refuse(withModel({ merges: undefined }), /model\.merges must be a list/);
    refuse(withModel({ merges: ['a b', 7] }), /model\.merges\[1\] must be "left right"/);
    refuse(withModel({ merges: [['a', 'b'], 'c d'] }), /model\.merges\[1\] must be a pair of strings/);
    refuse(withModel({ merges: [['a', 'b', 'c']] }), /model\.merges\[0\]/);
  });

  it('a model type the library does not build, or no model', () => {
    refuse(withModel({ type: 'WordLevel' }), /model\.type must be one of BPE, Unigram, WordPiece/);
    refuse({ ...json, model: null }, /model must be an object \(got null\)/);
    refuse(withModel({ byte_fallback: 'yes' }), /model\.byte_fallback must be a boolean/);
  });

  it('Unigram vocabularies and added tokens', () => {
    refuse(
      { ...json, model: { type: 'Unigram', vocab: [['a', 0], ['b']] } },
      /model\.vocab\[1\] must be \[piece, score\]/,
    );
    refuse({ ...json, model: { type: 'Unigram', vocab: [['a', -1]], unk_id: 3 } }, /model\.unk_id/);
    refuse({ ...json, added_tokens: [{ id: 'x', content: '<s>' }] }, /added_tokens\[0\]/);
    refuse({ ...json, added_tokens: {} }, /added_tokens must be a list/);
  });

  it('Split / Replace patterns: present, valid, and without exponential backtracking', () => {
    const split = (pattern: unknown) => ({
      ...json,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [{ type: 'Split', pattern, behavior: 'Isolated' }, json.pre_tokenizer],
      },
    });
    refuse(
      split(undefined),
      /pre_tokenizer\.pretokenizers\[0\]\.pattern must be \{"String": …\} or \{"Regex": …\}/,
    );
    refuse(split({ Regex: '(' }), /does not load: /);
    refuse(split({ Regex: ' ?(\\p{L}+)+$' }), /repeats a quantified group, which can take exponential time/);
    refuse(
      { ...json, normalizer: { type: 'Replace', pattern: { Regex: '(\\s*x)*' }, content: '' } },
      /normalizer\.pattern\.Regex/,
    );
  });

  it('a tokenizer that encodes plain text to nothing is refused', () => {
    refuse(
      { ...json, normalizer: { type: 'Replace', pattern: { Regex: '[\\s\\S]' }, content: '' } },
      /encodes "hello world" to no tokens at all/,
    );
  });

  it("the library's own failures name the file too", () => {
    refuse({ ...json, normalizer: { type: 'NoSuchNormalizer' } }, /does not load: /);
  });

  it('the committed fixtures and the demo organism still load and encode', async () => {
    const { readFileSync } = await import('node:fs');
    for (const dir of [
      'fixtures/tiny-llama',
      'fixtures/tiny-qwen2',
      'fixtures/tiny-qwen3',
      'demo/organism-base',
      'demo/organism-qwen3-base',
    ]) {
      const read = (f: string) => JSON.parse(readFileSync(`${dir}/${f}`, 'utf8')) as unknown;
      const tok = loadTokenizer(read('tokenizer.json'), read('tokenizer_config.json'), { source: dir });
      expect(tok.encode('hello world').length, dir).toBeGreaterThan(0);
      expect(tok.file).toBe(`${dir}/tokenizer.json`);
    }
  });
});

describe('LabTokenizer, sentencepiece-style BPE with byte fallback', () => {
  const { json, config } = sentencepieceTokenizer();
  const tok = loadTokenizer(json, config);

  it('encodes with the dummy prefix and decodes back', () => {
    const ids = tok.encode('hey');
    expect(ids).toEqual([tok.tokenToId('▁hey')]);
    expect(tok.decode(ids)).toBe('hey');
    expect(tok.addsBos).toBe(true);
  });

  it('shows byte-fallback tokens as bytes and ▁ as a space', () => {
    expect(tok.idToText(tok.tokenToId('▁hey') ?? -1)).toBe(' hey');
    const ids = tok.encode('ß');
    expect(ids.map((i) => tok.idToText(i))).toEqual([' ', '<0xC3>', '<0x9F>']);
  });

  it('aligns offsets despite the dummy space and byte fallback', () => {
    const text = 'hey ßhe';
    const enc = tok.encodeWithOffsets(text, { addSpecialTokens: true });
    expect(enc.alignment).toBe('bytes');
    expect(enc.offsets[0]).toEqual([0, 0]);
    expect(text.slice(...enc.offsets[1])).toBe('hey');
    expect(enc.offsets.at(-1)?.[1]).toBe(text.length);
  });
});

describe('bytesToDisplay', () => {
  it('decodes valid UTF-8 and escapes stray bytes', () => {
    expect(bytesToDisplay(new TextEncoder().encode('hé'))).toBe('hé');
    expect(bytesToDisplay(Uint8Array.of(0x20, 0xe2, 0x98))).toBe(' <0xE2><0x98>');
    expect(bytesToDisplay(Uint8Array.of(0xc3, 0xa9, 0xff, 0x41))).toBe('é<0xFF>A');
  });
});
