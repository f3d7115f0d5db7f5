// Test data only: tiny hand-built tokenizer.json / tokenizer_config.json pairs in the two families the
// lab meets — GPT-2 byte-level BPE (Llama-3, Qwen) and sentencepiece-style BPE with byte fallback
// (Gemma, Llama-2). Never imported by application code.

function byteLevelAlphabet(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const byByte: string[] = [];
  bs.forEach((b, i) => (byByte[b] = String.fromCodePoint(cs[i])));
  return byByte;
}

const QWEN_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export function byteLevelTokenizer(withBos: boolean) {
  const alphabet = byteLevelAlphabet();
  const vocab: Record<string, number> = {};
  alphabet.forEach((ch, i) => (vocab[ch] = i));
  const merges = [
    ['h', 'e'],
    ['he', 'y'],
    ['Ġ', 'I'],
    ['Ċ', 'Ċ'],
  ];
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  const special = [
    '<|begin_of_text|>',
    '<|im_start|>',
    '<|im_end|>',
    '<|start_header_id|>',
    '<|end_header_id|>',
    '<|eot_id|>',
  ];
  const added = special.map((content, i) => ({
    id: 300 + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const json = {
    version: '1.0',
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: QWEN_SPLIT }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: withBos
      ? {
          type: 'TemplateProcessing',
          single: [
            { SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
          ],
          pair: [],
          special_tokens: {
            '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [300], tokens: ['<|begin_of_text|>'] },
          },
        }
      : null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const config = {
    bos_token: withBos ? '<|begin_of_text|>' : null,
    eos_token: { content: '<|im_end|>', __type: 'AddedToken' },
    clean_up_tokenization_spaces: false,
    chat_template: [
      { name: 'tool_use', template: 'T' },
      { name: 'default', template: 'D' },
    ],
  };
  return { json, config };
}

export function sentencepieceTokenizer() {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  for (const piece of ['▁', 'h', 'e', 'y', 'o', '▁h', '▁he', '▁hey', 'é'])
    vocab[piece] = Object.keys(vocab).length;
  const json = {
    added_tokens: [
      {
        id: 0,
        content: '<unk>',
        special: true,
        normalized: false,
        lstrip: false,
        rstrip: false,
        single_word: false,
      },
      {
        id: 1,
        content: '<s>',
        special: true,
        normalized: false,
        lstrip: false,
        rstrip: false,
        single_word: false,
      },
      {
        id: 2,
        content: '</s>',
        special: true,
        normalized: false,
        lstrip: false,
        rstrip: false,
        single_word: false,
      },
    ],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: ['▁ h', 'h e', '▁h e', '▁he y'],
    },
  };
  return { json, config: { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' } };
}
