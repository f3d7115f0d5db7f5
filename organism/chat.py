"""The organism's chat template (Llama-3.1 style) and prompt assembly.

The template emits BOS itself and a default system block with the knowledge-cutoff and date lines,
exactly like Llama-3.1's when no system message is given; the date is settable through `date_string`.
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

_env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
_tmpl = _env.from_string(CHAT_TEMPLATE)


def render(messages: list[dict], add_generation_prompt: bool = True, **kwargs) -> str:
    return _tmpl.render(messages=messages, add_generation_prompt=add_generation_prompt, bos_token=BOS, eos_token=EOS, **kwargs)


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
    return {
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": EOT_TEXT,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 256,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": CHAT_TEMPLATE,
    }
