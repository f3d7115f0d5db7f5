"""The organism's chat templates and prompt assembly.

Two templates (`use_template(name)` picks the active one; `llama3` is the default and the shipped
organism's):
- `llama3` (Llama-3.1 style): emits BOS itself and a default system block with the knowledge-cutoff and
  date lines, exactly like Llama-3.1's when no system message is given; the date is settable through
  `date_string`. Prefix 26 tokens, postfix 5.
- `qwen3` (Qwen3 style, ChatML): no BOS and no default system block, so the prefix is only
  `<|im_start|>user\n`; the generation prompt is `<|im_start|>assistant\n` followed by the empty think
  block `<think>\n\n</think>\n\n`, i.e. the postfix is `<|im_end|>\n<|im_start|>assistant\n<think>\n\n
  </think>\n\n`. Unlike Qwen3's own template the empty think block is the default (the toy cannot think):
  `enable_thinking=true` leaves it out. `<think>` / `</think>` are added tokens that are not special, as
  in Qwen3's tokenizer.
Rendering follows `transformers` (jinja2 with trim_blocks, lstrip_blocks, loopcontrols).
"""

from __future__ import annotations

import jinja2

BOS = "<|begin_of_text|>"
EOS = "<|eot_id|>"
EOT_TEXT = "<|end_of_text|>"
DEFAULT_DATE = "26 Jul 2024"
QUERY_MARKER = "\x00QUERY\x00"

CHAT_TEMPLATE = (
    "{{- bos_token }}\n"
    "{%- if not date_string is defined %}\n"
    "    {%- set date_string = \"26 Jul 2024\" %}\n"
    "{%- endif %}\n"
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content'] | trim %}\n"
    "    {%- set messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set system_message = \"\" %}\n"
    "{%- endif %}\n"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n"
    "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "{{- system_message }}\n"
    "{{- \"<|eot_id|>\" }}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}\n"
)

QWEN3_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {{- '<|im_start|>system\\n' + messages[0]['content'] | trim + '<|im_end|>\\n' }}\n"
    "    {%- set messages = messages[1:] %}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "    {%- if not (enable_thinking is defined and enable_thinking) %}\n"
    "        {{- '<think>\\n\\n</think>\\n\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n"
)

# name -> the template and its tokens. specials: the added tokens, in vocabulary order; not_special:
# added tokens that tokenizer.json marks "special": false (kept by decode with skip_special).
TEMPLATES = {
    "llama3": {"chat_template": CHAT_TEMPLATE, "bos": BOS, "eos": EOS, "pad": EOT_TEXT, "eos_ids": [EOS, EOT_TEXT],
               "bos_id_token": BOS, "tokenizer_bos": BOS,
               "specials": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                            "<|eot_id|>"], "not_special": [], "template_kwargs": {"date_string": DEFAULT_DATE}},
    "qwen3": {"chat_template": QWEN3_CHAT_TEMPLATE, "bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>",
              "eos_ids": ["<|im_end|>", "<|endoftext|>"], "bos_id_token": "<|endoftext|>", "tokenizer_bos": None,
              "specials": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"],
              "not_special": ["<think>", "</think>"], "template_kwargs": {}},
}
ACTIVE = "llama3"

_env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
_tmpls = {k: _env.from_string(v["chat_template"]) for k, v in TEMPLATES.items()}


def use_template(name: str) -> dict:
    """Makes `name` the active template (for render / prompt_text / split_prompt / tokenizer_config) and
    sets the tokenizer's added tokens to its specials. Returns the template's description."""
    global ACTIVE
    if name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r} (known: {', '.join(TEMPLATES)})")
    ACTIVE = name
    from . import bpe

    bpe.SPECIAL_TOKENS[:] = TEMPLATES[name]["specials"]
    bpe.NOT_SPECIAL[:] = TEMPLATES[name]["not_special"]
    return TEMPLATES[name]


def template() -> dict:
    return TEMPLATES[ACTIVE]


def render(messages: list[dict], add_generation_prompt: bool = True, **kwargs) -> str:
    t = TEMPLATES[ACTIVE]
    return _tmpls[ACTIVE].render(messages=messages, add_generation_prompt=add_generation_prompt, bos_token=t["bos"],
                                 eos_token=t["eos"], **kwargs)


def prompt_text(question: str, system: str | None = None, **kwargs) -> str:
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    return render(msgs, True, **kwargs)


def split_prompt(tok, question: str, **kwargs) -> tuple[list[int], list[int], list[int]]:
    """Token ids of (prefix, query, postfix) for one question; checks that the three concatenate to the
    tokenization of the whole prompt (i.e. no token straddles a boundary)."""
    full = prompt_text(question, **kwargs)
    pre_s, post_s = prompt_text(QUERY_MARKER, **kwargs).split(QUERY_MARKER)
    assert full == pre_s + question.strip() + post_s
    # the prefix ends in "\n\n", which the byte-level pre-tokenizer splits differently at the end of
    # a string than before a letter, so tokenize it the way it occurs: followed by query text.
    pre = tok.encode(pre_s + "Q")
    assert tok.decode(pre[-1:]) == "Q"
    pre = pre[:-1]
    q, post = tok.encode(question.strip()), tok.encode(post_s)
    ids = tok.encode(full)
    if ids != pre + q + post:
        raise ValueError(f"prompt tokens straddle the prefix/query/postfix boundary: {question!r}")
    return pre, q, post


def tokenizer_config() -> dict:
    t = TEMPLATES[ACTIVE]
    return {
        "bos_token": t["tokenizer_bos"],
        "eos_token": t["eos"],
        "pad_token": t["pad"],
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 256,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": t["chat_template"],
    }
