// Checks the organism's tokenizer and chat template against the JS libraries the lab uses:
// @huggingface/tokenizers must give the Python encoder's ids on every sample (and decode them back),
// and @huggingface/jinja must render the chat template exactly as Python's jinja2 did.
//   node organism/check_tokenizer.mjs [model dir] [samples json]
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';

const dir = process.argv[2] ?? 'demo/organism-base';
const samplesPath = process.argv[3] ?? 'organism/eval/tokenizer_samples.json';
const tj = JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8'));
const tc = JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8'));
const { samples, chats } = JSON.parse(readFileSync(samplesPath, 'utf8'));
const tok = new Tokenizer(tj, tc);

let bad = 0;
for (const { text, ids } of samples) {
  const got = tok.encode(text, { add_special_tokens: false }).ids;
  const same = got.length === ids.length && got.every((x, i) => x === ids[i]);
  if (!same) {
    bad++;
    if (bad <= 10) console.error(`ids differ for ${JSON.stringify(text)}\n  python ${ids}\n  js     ${got}`);
    continue;
  }
  if (ids.length > 0) {
    const back = tok.decode(ids, { skip_special_tokens: false });
    if (back !== text) {
      bad++;
      if (bad <= 10) console.error(`decode differs for ${JSON.stringify(text)}: ${JSON.stringify(back)}`);
    }
  }
}
const template = new Template(tc.chat_template);
for (const { messages, kwargs, rendered } of chats) {
  const got = template.render({
    messages,
    add_generation_prompt: true,
    bos_token: tc.bos_token,
    eos_token: tc.eos_token,
    ...kwargs,
  });
  if (got !== rendered) {
    bad++;
    console.error(`template differs:\n  python ${JSON.stringify(rendered)}\n  js     ${JSON.stringify(got)}`);
  }
}
const n = samples.length + chats.length;
console.log(`${n - bad}/${n} checks agree (${samples.length} encodings, ${chats.length} chat renderings)`);
process.exit(bad === 0 ? 0 : 1);
