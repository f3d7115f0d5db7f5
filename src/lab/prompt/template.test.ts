import { describe, expect, it } from 'vitest';
import gemma3 from './templates/gemma-3-1b-it.json';
import llama31 from './templates/llama-3.1-8b-instruct.json';
import llama32 from './templates/llama-3.2-1b-instruct.json';
import qwen25 from './templates/qwen2.5-0.5b-instruct.json';
import qwen3 from './templates/qwen3-0.6b.json';
import smollm2 from './templates/smollm2-135m-instruct.json';
import {
  buildPrompt,
  renderChatTemplate,
  splitChat,
  strftime,
  TEMPLATE_LIMITS,
  TemplateError,
  type Conversation,
  type SplitOptions,
} from './template';
import type { SegmentName } from '../spec/experiment';
import { loadTokenizer } from './tokenizer';
import { byteLevelTokenizer } from './tokenizer.testdata';

interface RealTemplate {
  model: string;
  chat_template: string;
  bos_token: string | null;
  eos_token: string | null;
  template_emits_bos: boolean;
  rendered_example: string;
}

const TEMPLATES: Record<string, RealTemplate> = { gemma3, llama31, llama32, qwen25, qwen3, smollm2 };
const JULY_26 = () => new Date(2024, 6, 26, 10, 30);
const BORED = 'hey I feel bored';

function opts(t: RealTemplate, conversation: Conversation, extra: Partial<SplitOptions> = {}): SplitOptions {
  return {
    conversation,
    specialTokens: { bos_token: t.bos_token, eos_token: t.eos_token },
    now: JULY_26,
    ...extra,
  };
}

function parts(t: RealTemplate, o: SplitOptions) {
  const s = splitChat(t.chat_template, o);
  const [p, q, x] = [s.chars.prefix, s.chars.query, s.chars.postfix].map(([a, b]) => s.text.slice(a, b));
  return { prefix: p, query: q, postfix: x, split: s };
}

describe('renderChatTemplate on the six real templates', () => {
  for (const [key, t] of Object.entries(TEMPLATES)) {
    it(`${key} (${t.model}) renders "${BORED}" byte for byte as transformers`, () => {
      const r = renderChatTemplate(t.chat_template, {
        messages: [{ role: 'user', content: BORED }],
        specialTokens: { bos_token: t.bos_token, eos_token: t.eos_token },
        now: JULY_26,
      });
      expect(r.text).toBe(t.rendered_example);
      // NOTE: SmolLM2's template writes '<|im_start|>' literally, which is also its configured BOS string.
      expect(r.text.startsWith(t.bos_token ?? '\u0000')).toBe(t.template_emits_bos || key === 'smollm2');
    });
  }

  it('Qwen3 with enable_thinking=false appends the empty think block', () => {
    const r = renderChatTemplate(qwen3.chat_template, {
      messages: [{ role: 'user', content: BORED }],
      templateArgs: { enable_thinking: false },
    });
    expect(r.text).toBe(qwen3.rendered_example_enable_thinking_false);
  });

  it('Llama-3.2 takes the date from strftime_now, reports it, and date_string pins it', () => {
    const messages = [{ role: 'user', content: BORED }];
    const today = renderChatTemplate(llama32.chat_template, { messages, now: () => new Date(2025, 0, 5) });
    expect(today.text).toContain('Today Date: 05 Jan 2025\n');
    expect(today.dateString).toBe('05 Jan 2025');
    expect(today.strftimeCalls).toEqual([{ format: '%d %b %Y', value: '05 Jan 2025' }]);
    const pinned = renderChatTemplate(llama32.chat_template, {
      messages,
      now: () => new Date(2025, 0, 5),
      specialTokens: { bos_token: llama32.bos_token },
      templateArgs: { date_string: '26 Jul 2024' },
    });
    expect(pinned.text).toBe(llama32.rendered_example);
    expect(pinned.dateString).toBe('26 Jul 2024');
    expect(pinned.strftimeCalls).toEqual([]);
  });

  it('uses the real clock by default', () => {
    const r = renderChatTemplate(llama32.chat_template, { messages: [{ role: 'user', content: BORED }] });
    expect(r.dateString).toBe(strftime(new Date(), '%d %b %Y'));
  });

  it('reports no date for templates without one', () => {
    const r = renderChatTemplate(qwen25.chat_template, { messages: [{ role: 'user', content: BORED }] });
    expect(r.dateString).toBeNull();
  });

  it('raise_exception becomes a TemplateError of kind raise', () => {
    const render = () =>
      renderChatTemplate(gemma3.chat_template, {
        messages: [
          { role: 'user', content: 'a' },
          { role: 'user', content: 'b' },
        ],
        specialTokens: { bos_token: '<bos>' },
      });
    expect(render).toThrow(TemplateError);
    expect(render).toThrow('Conversation roles must alternate');
    try {
      render();
    } catch (e) {
      expect((e as TemplateError).kind).toBe('raise');
    }
  });

  it('refuses broken templates and reserved arguments with a TemplateError', () => {
    expect(() => renderChatTemplate('{% if %}', { messages: [] })).toThrow(TemplateError);
    expect(() => renderChatTemplate('x', { messages: [], templateArgs: { messages: 'no' } })).toThrow(
      /reserved/,
    );
  });

  it('supports loop controls and the transformers whitespace rules', () => {
    const tpl =
      '{% for m in messages %}\n  {% if loop.index > 1 %}{% break %}{% endif %}\n{{ m.content }}\n{% endfor %}';
    const r = renderChatTemplate(tpl, {
      messages: [
        { role: 'user', content: 'a' },
        { role: 'user', content: 'b' },
      ],
    });
    expect(r.text).toBe('a\n');
  });
});

describe('strftime', () => {
  it('formats like Python in the C locale', () => {
    const d = new Date(2024, 6, 6, 15, 4, 9);
    expect(strftime(d, '%d %b %Y')).toBe('06 Jul 2024');
    expect(strftime(d, '%Y-%m-%d %H:%M:%S')).toBe('2024-07-06 15:04:09');
    expect(strftime(d, '%A %a %B %y %j %I%p %e %%')).toBe('Saturday Sat July 24 188 03PM  6 %');
    expect(strftime(d, '%Q')).toBe('%Q');
  });
});

describe('splitChat: prefix / query / postfix characters (docs/science.md "The prefix")', () => {
  it('Llama-3.1: system block with the date, then the user header', () => {
    const { prefix, query, postfix } = parts(llama31, opts(llama31, { user: BORED }));
    expect(prefix).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n',
    );
    expect(query).toBe(BORED);
    expect(postfix).toBe('<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
  });

  it('Qwen2.5: the default system prompt is prefix', () => {
    const { prefix, query, postfix } = parts(qwen25, opts(qwen25, { user: BORED }));
    expect(prefix).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n',
    );
    expect(query).toBe(BORED);
    expect(postfix).toBe('<|im_end|>\n<|im_start|>assistant\n');
  });

  it('Qwen3: the prefix is only the user header; the postfix carries the empty think block', () => {
    const plain = parts(qwen3, opts(qwen3, { user: BORED }));
    expect(plain.prefix).toBe('<|im_start|>user\n');
    expect(plain.postfix).toBe('<|im_end|>\n<|im_start|>assistant\n');
    const noThink = parts(qwen3, opts(qwen3, { user: BORED }, { templateArgs: { enable_thinking: false } }));
    expect(noThink.prefix).toBe('<|im_start|>user\n');
    expect(noThink.postfix).toBe('<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
  });

  it('an explicit system message replaces the default; "" is an explicit empty one, null the default', () => {
    expect(parts(qwen25, opts(qwen25, { system: 'You are a pirate.', user: BORED })).prefix).toBe(
      '<|im_start|>system\nYou are a pirate.<|im_end|>\n<|im_start|>user\n',
    );
    expect(parts(qwen25, opts(qwen25, { system: '', user: BORED })).prefix).toBe(
      '<|im_start|>system\n<|im_end|>\n<|im_start|>user\n',
    );
    expect(parts(qwen25, opts(qwen25, { system: null, user: BORED })).prefix).toContain('You are Qwen');
    expect(parts(qwen3, opts(qwen3, { system: 'S', user: BORED })).prefix).toBe(
      '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n',
    );
  });

  it('Llama-3.2: the date in the prefix follows the clock unless date_string pins it', () => {
    const a = parts(llama32, opts(llama32, { user: BORED }, { now: () => new Date(2025, 1, 3) }));
    expect(a.prefix).toContain('Today Date: 03 Feb 2025\n');
    expect(a.split.dateString).toBe('03 Feb 2025');
    expect(a.split.dateFromClock).toBe(true);
    const b = parts(
      llama32,
      opts(llama32, { user: BORED }, { templateArgs: { date_string: '26 Jul 2024' } }),
    );
    expect(b.prefix).toBe(parts(llama31, opts(llama31, { user: BORED })).prefix);
    expect(b.split.dateString).toBe('26 Jul 2024');
    expect(b.split.dateFromClock).toBe(false);
  });

  it('multi-turn: earlier turns are prefix, the last user message is the query', () => {
    const { prefix, query, postfix } = parts(
      qwen25,
      opts(qwen25, {
        user: BORED,
        history: [
          { role: 'user', content: 'What is 2+2?' },
          { role: 'assistant', content: '4.' },
        ],
      }),
    );
    expect(
      prefix.endsWith(
        '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4.<|im_end|>\n<|im_start|>user\n',
      ),
    ).toBe(true);
    expect(query).toBe(BORED);
    expect(postfix).toBe('<|im_end|>\n<|im_start|>assistant\n');
  });

  it('follows the template when it trims the query (Llama, Gemma) and keeps it when not (Qwen)', () => {
    const user = '  ¿Qué tal? 🙂\n\n';
    expect(parts(llama31, opts(llama31, { user })).query).toBe('¿Qué tal? 🙂');
    expect(parts(gemma3, opts(gemma3, { user })).query).toBe('¿Qué tal? 🙂');
    expect(parts(qwen25, opts(qwen25, { user })).query).toBe(user);
  });

  it('handles an empty query and a query that contains the marker text', () => {
    const empty = parts(qwen3, opts(qwen3, { user: '' }));
    expect(empty.query).toBe('');
    expect(empty.prefix + empty.postfix).toBe('<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n');
    const sneaky = parts(qwen3, opts(qwen3, { user: 'PIGGYBACKQUERYMARKER' }));
    expect(sneaky.query).toBe('PIGGYBACKQUERYMARKER');
    expect(sneaky.split.marker).not.toBe('PIGGYBACKQUERYMARKER');
  });

  it('the character spans tile the text for every template and conversation', () => {
    const conversations: Conversation[] = [
      { user: BORED },
      { system: 'Be brief.', user: BORED },
      {
        user: BORED,
        history: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello!' },
        ],
      },
    ];
    for (const t of Object.values(TEMPLATES)) {
      for (const c of conversations) {
        const { prefix, query, postfix, split } = parts(t, opts(t, c));
        expect(prefix + query + postfix).toBe(split.text);
        expect(split.chars.prefix[0]).toBe(0);
        expect(split.chars.prefix[1]).toBe(split.chars.query[0]);
        expect(split.chars.query[1]).toBe(split.chars.postfix[0]);
        expect(split.chars.postfix[1]).toBe(split.text.length);
        expect(query).toBe(BORED);
      }
    }
  });

  it('refuses templates that drop, repeat or depend on the query', () => {
    const o = { conversation: { user: BORED } };
    expect(() => splitChat('{{ "no content" }}', o)).toThrow(/verbatim/);
    expect(() => splitChat('{{ messages[-1].content }}{{ messages[-1].content }}', o)).toThrow(
      /more than once/,
    );
    const dependent = '{% if messages[-1].content|length > 18 %}long:{% endif %}{{ messages[-1].content }}';
    expect(() => splitChat(dependent, o)).toThrow(/differently/);
    expect(() => splitChat('{{ messages[-1].content }}', o)).not.toThrow();
  });
});

describe('buildPrompt: token-level split with a byte-level tokenizer', () => {
  const { json, config } = byteLevelTokenizer(true);
  const tok = loadTokenizer(json, { ...config, chat_template: qwen25.chat_template });

  it('maps the character split onto tokens; special tokens stay single tokens', () => {
    const p = buildPrompt(tok, { conversation: { user: BORED } });
    expect(p.text).toBe(qwen25.rendered_example);
    const seg = (s: SegmentName) => p.tokens.slice(...p.segments[s]);
    expect(
      seg('prefix')
        .map((t) => t.text)
        .join(''),
    ).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n',
    );
    expect(
      seg('query')
        .map((t) => t.text)
        .join(''),
    ).toBe(BORED);
    expect(
      seg('postfix')
        .map((t) => t.text)
        .join(''),
    ).toBe('<|im_end|>\n<|im_start|>assistant\n');
    expect(seg('postfix')[0]).toMatchObject({
      id: tok.tokenToId('<|im_end|>'),
      text: '<|im_end|>',
      segment: 'postfix',
    });
    expect(seg('prefix')[0]).toMatchObject({ id: tok.tokenToId('<|im_start|>'), start: 0, end: 12 });
    for (const t of p.tokens) expect(p.text.slice(t.start, t.end)).toBe(t.text);
    expect(p.segments.prefix[0]).toBe(0);
    expect(p.segments.postfix[1]).toBe(p.tokens.length);
    expect(p.alignment).toBe('bytes');
    expect(p.bos).toEqual({ templateEmits: false, tokenizerAdds: true, added: false });
    expect(p.warnings).toEqual([]);
  });

  it('a BOS added by the tokenizer is a zero-width prefix token; doubled BOS is flagged', () => {
    const single = buildPrompt(tok, { conversation: { user: BORED }, addSpecialTokens: true });
    expect(single.tokens[0]).toMatchObject({ id: 300, segment: 'prefix', start: 0, end: 0 });
    expect(single.segments.prefix[1]).toBe(
      buildPrompt(tok, { conversation: { user: BORED } }).segments.prefix[1] + 1,
    );
    const double = buildPrompt(tok, {
      conversation: { user: BORED },
      template: llama31.chat_template,
      addSpecialTokens: true,
    });
    expect(double.bos).toEqual({ templateEmits: true, tokenizerAdds: true, added: true });
    expect(double.warnings.some((w) => w.includes('BOS appears twice'))).toBe(true);
    expect(double.tokens.slice(0, 2).map((t) => t.id)).toEqual([300, 300]);
    const once = buildPrompt(tok, { conversation: { user: BORED }, template: llama31.chat_template });
    expect(once.tokens.filter((t) => t.id === 300)).toHaveLength(1);
    expect(once.tokens[0].segment).toBe('prefix');
  });

  it('a token straddling the prefix/query boundary counts as query, with a warning', () => {
    // The query starts with a newline; the template's own "\n" and it merge into one "\n\n" token.
    const p = buildPrompt(tok, {
      conversation: { user: '\nhey' },
      template: '{{ "<|im_start|>user\\n" + messages[-1].content }}',
    });
    const q = p.tokens.slice(...p.segments.query);
    expect(q[0].text).toBe('\n\n');
    expect(q[0].start).toBeLessThan(p.chars.query[0]);
    expect(
      p.tokens
        .slice(...p.segments.prefix)
        .map((t) => t.text)
        .join(''),
    ).toBe('<|im_start|>user');
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings[0]).toMatch(/straddles/);
  });

  it('without a chat template it refuses', () => {
    const bare = loadTokenizer(json, { ...config, chat_template: undefined });
    expect(() => buildPrompt(bare, { conversation: { user: BORED } })).toThrow(/no chat template/);
  });
});

describe('untrusted templates: rendering has a budget (TEMPLATE_LIMITS)', () => {
  const user = [{ role: 'user', content: BORED }];

  /** Renders `source`, expecting a budget TemplateError within `ms`; returns its message. */
  const overBudget = (template: string, ms: number): string => {
    const t0 = performance.now();
    let err: unknown;
    try {
      renderChatTemplate(template, { messages: user, source: 'evil/repo/tokenizer_config.json' });
    } catch (e) {
      err = e;
    }
    expect(performance.now() - t0).toBeLessThan(ms);
    expect(err).toBeInstanceOf(TemplateError);
    expect((err as TemplateError).kind).toBe('budget');
    expect((err as TemplateError).message).toMatch(/^chat template of evil\/repo\/tokenizer_config\.json: /);
    return (err as TemplateError).message;
  };

  it('a single huge loop is refused before it allocates', () => {
    expect(overBudget('{% for i in range(10**9) %}x{% endfor %}', 2000)).toMatch(
      new RegExp(
        `range\\(0, 1000000000, 1\\) has 1000000000 items, more than ${TEMPLATE_LIMITS.items} — the template loops too long`,
      ),
    );
  });

  it('nested loops run out of steps', () => {
    const nested =
      '{% for i in range(10000) %}{% for j in range(10000) %}{% for k in range(10000) %}x{% endfor %}{% endfor %}{% endfor %}';
    expect(overBudget(nested, 10_000)).toMatch(
      new RegExp(`rendering exceeded ${TEMPLATE_LIMITS.steps} steps — the template loops too long`),
    );
  });

  it('the emitted text is bounded', () => {
    // a 10 240-character string (built by doubling), printed 1000 times: ~10M characters in ~3k steps
    const t =
      "{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(10) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}" +
      '{% for i in range(1000) %}{{ ns.s }}{% endfor %}';
    expect(overBudget(t, 5000)).toMatch(new RegExp(`rendering exceeded ${TEMPLATE_LIMITS.chars} characters`));
  });

  it('values that double each step are refused while still small', () => {
    const strings =
      '{% set ns = namespace(s="x") %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}';
    expect(overBudget(strings, 2000)).toMatch(/a value grew past 2000000 characters/);
    const lists =
      '{% set ns = namespace(a=[1]) %}{% for i in range(64) %}{% set ns.a = ns.a + ns.a %}{% endfor %}';
    expect(overBudget(lists, 2000)).toMatch(/past 100000 items/);
    // shared sub-lists: tiny in memory, 2^60 items when printed
    const dag =
      '{% set ns = namespace(a=[1]) %}{% for i in range(60) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a | tojson }}';
    expect(overBudget(dag, 2000)).toMatch(/a value grew past/);
    const cycle = '{% set a = namespace() %}{% set b = namespace(x=a) %}{% set a.x = b %}{{ a | tojson }}';
    expect(overBudget(cycle, 2000)).toMatch(/contains itself/);
  });

  it('an absurd indent width, deep recursion and a huge template source', () => {
    expect(overBudget("{{ 'a\\nb' | indent(400000000) }}", 2000)).toMatch(
      /indent width 400000000 is more than 1024/,
    );
    expect(overBudget('{{ messages | tojson(indent=100000000) }}', 2000)).toMatch(/tojson width/);
    expect(overBudget('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}', 2000)).toMatch(
      /recurses too deep/,
    );
    expect(overBudget('x'.repeat(TEMPLATE_LIMITS.sourceChars + 1), 2000)).toMatch(/more than 1000000/);
  });

  it('string multiplication (which this Jinja does not implement) is a render error, not a crash', () => {
    expect(() => renderChatTemplate("{{ 'a' * 1000000000 }}", { messages: user })).toThrow(
      /^chat template failed: Unknown operator "\*" between StringValue and IntegerValue/,
    );
  });

  it('real templates render long conversations well within the budget', () => {
    const messages = [];
    for (let i = 0; i < 500; i++)
      messages.push({ role: 'user', content: `${BORED} `.repeat(20) }, { role: 'assistant', content: 'ok' });
    messages.push({ role: 'user', content: BORED });
    for (const [key, t] of Object.entries(TEMPLATES)) {
      const r = renderChatTemplate(t.chat_template, {
        messages,
        specialTokens: { bos_token: t.bos_token, eos_token: t.eos_token },
        now: JULY_26,
      });
      expect(r.text.length, key).toBeGreaterThan(500 * 20 * BORED.length);
    }
  });

  it("buildPrompt names the tokenizer's template file", () => {
    const { json, config } = byteLevelTokenizer(true);
    const tok = loadTokenizer(
      json,
      { ...config, chat_template: '{% for i in range(10**9) %}{% endfor %}' },
      { source: 'org/evil' },
    );
    expect(() => buildPrompt(tok, { conversation: { user: BORED } })).toThrow(
      /^chat template of org\/evil\/tokenizer_config\.json: range\(/,
    );
  });
});
