// Token-level prefix / query / postfix split on the fixture tokenizers (fixtures/tiny-*): byte-level BPE
// with the families' real split regexes, special tokens and real chat templates.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildPrompt, type Conversation, type SplitToken, type SplitPrompt } from './template';
import { loadTokenizer, type LabTokenizer } from './tokenizer';
import type { SegmentName } from '../spec/experiment';

function fixtureTokenizer(name: string): LabTokenizer {
  const read = (file: string) =>
    JSON.parse(
      readFileSync(new URL(`../../../fixtures/${name}/${file}`, import.meta.url), 'utf8'),
    ) as unknown;
  return loadTokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
}

const llama = fixtureTokenizer('tiny-llama');
const qwen2 = fixtureTokenizer('tiny-qwen2');
const qwen3 = fixtureTokenizer('tiny-qwen3');
const gemma3 = fixtureTokenizer('tiny-gemma3');
const JULY_26 = () => new Date(2024, 6, 26, 10, 30);
const BORED = 'hey I feel bored';

const seg = (p: SplitPrompt, s: SegmentName): SplitToken[] => p.tokens.slice(...p.segments[s]);
const joined = (tokens: SplitToken[]) => tokens.map((t) => t.text).join('');

describe('fixture tokenizers: docs/science.md "The prefix" prefixes and postfixes as tokens', () => {
  it('tiny-llama (Llama-3.1 template): BOS and headers are single special tokens', () => {
    const p = buildPrompt(llama, { conversation: { user: BORED }, now: JULY_26 });
    expect(joined(seg(p, 'prefix'))).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n',
    );
    expect(joined(seg(p, 'query'))).toBe(BORED);
    expect(joined(seg(p, 'postfix'))).toBe('<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
    expect(p.tokens[0]).toMatchObject({
      id: 505,
      text: '<|begin_of_text|>',
      segment: 'prefix',
      start: 0,
      end: 17,
    });
    expect(seg(p, 'postfix')[0]).toMatchObject({ id: 510, text: '<|eot_id|>' });
    expect(seg(p, 'postfix').filter((t) => t.id === 507 || t.id === 508)).toHaveLength(2);
    expect(p.bos).toEqual({ templateEmits: true, tokenizerAdds: false, added: false });
    expect(p.tokens.filter((t) => t.id === 505)).toHaveLength(1);
    expect(p.warnings).toEqual([]);
  });

  it('tiny-qwen2 (Qwen2.5 template): the default system prompt is prefix', () => {
    const p = buildPrompt(qwen2, { conversation: { user: BORED } });
    expect(joined(seg(p, 'prefix'))).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n',
    );
    expect(joined(seg(p, 'postfix'))).toBe('<|im_end|>\n<|im_start|>assistant\n');
    expect(seg(p, 'prefix')[0].id).toBe(508);
    expect(seg(p, 'postfix')[0].id).toBe(509);
    expect(p.bos).toEqual({ templateEmits: false, tokenizerAdds: false, added: false });
  });

  it('tiny-qwen3 (Qwen3 template): prefix is the user header; postfix carries the think block', () => {
    const p = buildPrompt(qwen3, { conversation: { user: BORED }, templateArgs: { enable_thinking: false } });
    expect(seg(p, 'prefix').map((t) => t.text)).toEqual(['<|im_start|>', 'user', '\n']);
    expect(joined(seg(p, 'postfix'))).toBe('<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
    const think = seg(p, 'postfix').filter((t) => t.id === 510 || t.id === 511);
    expect(think.map((t) => t.text)).toEqual(['<think>', '</think>']);
    expect(think.every((t) => t.special)).toBe(true);
    expect(seg(p, 'prefix').map((t) => t.special)).toEqual([true, false, false]);
  });
});

describe('the Qwen3-template demo organism (demo/organism-qwen3-base, trained by organism/train.py)', () => {
  const read = (file: string) =>
    JSON.parse(
      readFileSync(new URL(`../../../demo/organism-qwen3-base/${file}`, import.meta.url), 'utf8'),
    ) as unknown;
  const tok = loadTokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
  const detector = JSON.parse(
    readFileSync(new URL('../../../organism/qwen3/eval/detector.json', import.meta.url), 'utf8'),
  ) as { prompt: { prefix_ids: number[]; postfix_ids: number[] } };

  it('prefix = the user header (3 tokens), postfix = assistant header + empty think block, as the trainer split it', () => {
    const p = buildPrompt(tok, { conversation: { user: BORED } });
    expect(seg(p, 'prefix').map((t) => t.text)).toEqual(['<|im_start|>', 'user', '\n']);
    expect(joined(seg(p, 'query'))).toBe(BORED);
    expect(joined(seg(p, 'postfix'))).toBe('<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
    // the same ids the Python trainer used for every prompt (organism/qwen3/eval/detector.json)
    expect(seg(p, 'prefix').map((t) => t.id)).toEqual(detector.prompt.prefix_ids);
    expect(seg(p, 'postfix').map((t) => t.id)).toEqual(detector.prompt.postfix_ids);
    expect(p.bos).toEqual({ templateEmits: false, tokenizerAdds: false, added: false });
    expect(p.warnings).toEqual([]);
  });

  it('enable_thinking: true leaves the think block out', () => {
    const p = buildPrompt(tok, { conversation: { user: BORED }, templateArgs: { enable_thinking: true } });
    expect(joined(seg(p, 'postfix'))).toBe('<|im_end|>\n<|im_start|>assistant\n');
  });
});

describe('tiny-gemma3 (the real Gemma-3 template): the prefix is what precedes the user text, BOS included', () => {
  const gemmaTemplate = JSON.parse(
    readFileSync(new URL('./templates/gemma-3-1b-it.json', import.meta.url), 'utf8'),
  ) as { chat_template: string; rendered_example: string };

  it('renders as Python jinja2 does and splits at the user text', () => {
    const p = buildPrompt(gemma3, { conversation: { user: BORED } });
    // the fixture carries the real template, and renders its Python-rendered example exactly
    expect(gemma3.chatTemplate).toBe(gemmaTemplate.chat_template);
    expect(p.text).toBe(gemmaTemplate.rendered_example);
    expect(joined(seg(p, 'prefix'))).toBe('<bos><start_of_turn>user\n');
    expect(joined(seg(p, 'query'))).toBe(BORED);
    expect(joined(seg(p, 'postfix'))).toBe('<end_of_turn>\n<start_of_turn>model\n');
    expect(seg(p, 'prefix').map((t) => [t.text, t.special])).toEqual([
      ['<bos>', true],
      ['<start_of_turn>', true],
      ['user', false],
      ['\n', false],
    ]);
    expect(seg(p, 'postfix')[0]).toMatchObject({ id: 511, text: '<end_of_turn>', special: true });
    expect(p.bos).toEqual({ templateEmits: true, tokenizerAdds: false, added: false });
    expect(p.tokens.filter((t) => t.text === '<bos>')).toHaveLength(1);
    expect(p.warnings).toEqual([]);
  });

  it('folds a system message into the first user turn: it is prefix', () => {
    const p = buildPrompt(gemma3, { conversation: { system: 'You are a pirate.', user: BORED } });
    expect(joined(seg(p, 'prefix'))).toBe('<bos><start_of_turn>user\nYou are a pirate.\n\n');
    expect(joined(seg(p, 'query'))).toBe(BORED);
    expect(joined(seg(p, 'postfix'))).toBe('<end_of_turn>\n<start_of_turn>model\n');
  });
});

describe('fixture tokenizers: the split round-trips', () => {
  const conversations: Conversation[] = [
    { user: BORED },
    { user: '' },
    { user: '  ¿Qué tal? 🙂 naïve café 2024\n' },
    { system: 'You are a pirate.', user: 'How do I make a quick buck?' },
    { system: '', user: BORED },
    {
      user: BORED,
      history: [
        { role: 'user', content: 'What is 2+2?' },
        { role: 'assistant', content: '4.' },
      ],
    },
  ];
  const tokenizers: [string, LabTokenizer][] = [
    ['tiny-llama', llama],
    ['tiny-qwen2', qwen2],
    ['tiny-qwen3', qwen3],
    ['tiny-gemma3', gemma3],
  ];

  for (const [name, tok] of tokenizers) {
    it(`${name}: ids equal encode(text), segments tile, spans cover the text`, () => {
      for (const conversation of conversations) {
        const p = buildPrompt(tok, { conversation, now: JULY_26 });
        const ids = p.tokens.map((t) => t.id);
        expect(ids).toEqual(tok.encode(p.text));
        expect(tok.decode(ids)).toBe(p.text);
        expect(p.alignment).toBe('bytes');
        expect(p.segments.prefix[0]).toBe(0);
        expect(p.segments.prefix[1]).toBe(p.segments.query[0]);
        expect(p.segments.query[1]).toBe(p.segments.postfix[0]);
        expect(p.segments.postfix[1]).toBe(p.tokens.length);
        for (const [i, t] of p.tokens.entries()) {
          expect(t.segment).toBe(
            i < p.segments.prefix[1] ? 'prefix' : i < p.segments.query[1] ? 'query' : 'postfix',
          );
          if (!t.text.includes('<0x')) expect(p.text.slice(t.start, t.end)).toBe(t.text);
          if (i > 0) expect(t.start).toBeGreaterThanOrEqual(p.tokens[i - 1].start);
        }
        expect(p.tokens.at(-1)?.end).toBe(p.text.length);
        expect(p.text.slice(...p.chars.prefix)).toBe(joined(seg(p, 'prefix')));
      }
    });

    it(`${name}: the prefix tokens do not depend on the query`, () => {
      const queries = [BORED, 'How do I make a quick buck?', '', '!!!', ' leading space', '🙂'];
      const prefixes = queries.map((user) => {
        const p = buildPrompt(tok, { conversation: { user }, now: JULY_26 });
        return seg(p, 'prefix').map((t) => t.id);
      });
      for (const prefix of prefixes) expect(prefix).toEqual(prefixes[0]);
    });

    it(`${name}: a query that merges with the prefix's last token shortens the prefix, with a warning`, () => {
      const normal = buildPrompt(tok, { conversation: { user: BORED }, now: JULY_26 });
      const merged = buildPrompt(tok, { conversation: { user: '\n\nleading newlines' }, now: JULY_26 });
      const a = seg(normal, 'prefix').map((t) => t.id);
      const b = seg(merged, 'prefix').map((t) => t.id);
      if (name === 'tiny-llama' || name === 'tiny-gemma3') {
        // Llama and Gemma trim the query, so nothing merges.
        expect(b).toEqual(a);
        expect(merged.warnings).toEqual([]);
      } else {
        expect(b).toEqual(a.slice(0, -1));
        expect(merged.warnings.join()).toMatch(/straddles/);
      }
    });
  }

  it('maps offsets through the normaliser when it changes the text (NFC)', () => {
    const user = 'cafe\u0301 time';
    const p = buildPrompt(qwen2, { conversation: { user } });
    expect(p.alignment).toBe('normalized');
    const plain = buildPrompt(qwen2, { conversation: { user: 'café time' } });
    expect(plain.alignment).toBe('bytes');
    // The normaliser only touched the query: the same prefix and postfix tokens, the query NFC'd.
    expect(seg(p, 'prefix')).toEqual(seg(plain, 'prefix'));
    expect(seg(p, 'postfix').map((t) => t.id)).toEqual(seg(plain, 'postfix').map((t) => t.id));
    expect(qwen2.decode(seg(p, 'query').map((t) => t.id))).toBe('café time');
    expect(p.tokens.map((t) => t.id)).toEqual(qwen2.encode(p.text));
    expect(p.tokens.at(-1)?.end).toBe(p.text.length);
  });
});
