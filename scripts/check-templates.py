#!/usr/bin/env python3
"""Render the real chat templates in src/lab/prompt/templates/ with Python's jinja2, configured the way
transformers compiles chat templates, for a few conversations; print the results as JSON.

src/lab/prompt/template.check.test.ts renders the same cases with our TypeScript renderer and compares byte for
byte. This script is the oracle: it must never import transformers (not installed in CI) and never read
the real clock (strftime_now is pinned to 26 Jul 2024).

Usage: python3 scripts/check-templates.py [TEMPLATE_DIR]
"""

import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXED_NOW = datetime.datetime(2024, 7, 26, 10, 30, 0)


def compile_template(source):
    # Mirrors transformers.utils.chat_template_utils._compile_jinja_template.
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return FIXED_NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name, e.g. Zürich"}},
            "required": ["city"],
        },
    },
}

BORED = "hey I feel bored"

# Each case: name, messages, add_generation_prompt, extra template kwargs, and which templates it is
# for (None = all).
CASES = [
    {"name": "single", "messages": [{"role": "user", "content": BORED}]},
    {
        "name": "system",
        "messages": [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": BORED}],
    },
    {
        "name": "empty-system",
        "messages": [{"role": "system", "content": ""}, {"role": "user", "content": BORED}],
    },
    {
        "name": "multi-turn",
        "messages": [
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4."},
            {"role": "user", "content": BORED},
        ],
    },
    {
        "name": "multi-turn-system",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": BORED},
        ],
    },
    {"name": "no-generation-prompt", "messages": [{"role": "user", "content": BORED}], "add_generation_prompt": False},
    {"name": "whitespace-and-unicode", "messages": [{"role": "user", "content": "  ¿Qué tal? 🙂\n\n"}]},
    {"name": "empty-query", "messages": [{"role": "user", "content": ""}]},
    {
        "name": "date-string",
        "messages": [{"role": "user", "content": BORED}],
        "kwargs": {"date_string": "01 Jan 2025"},
        "only": ["llama-3.1-8b-instruct", "llama-3.2-1b-instruct"],
    },
    {
        "name": "thinking-off",
        "messages": [{"role": "user", "content": BORED}],
        "kwargs": {"enable_thinking": False},
        "only": ["qwen3-0.6b"],
    },
    {
        "name": "thinking-history",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "<think>\nGreet back.\n</think>\n\nHello!"},
            {"role": "user", "content": BORED},
        ],
        "only": ["qwen3-0.6b"],
    },
    {
        "name": "tools",
        "messages": [{"role": "user", "content": "Weather in Zürich?"}],
        "tools": [WEATHER_TOOL],
        "only": ["qwen2.5-0.5b-instruct", "qwen3-0.6b", "llama-3.1-8b-instruct", "llama-3.2-1b-instruct"],
    },
    {
        "name": "roles-not-alternating",
        "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        "only": ["gemma-3-1b-it"],
    },
]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    template_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "src", "lab", "prompt", "templates")
    out = []
    for filename in sorted(os.listdir(template_dir)):
        if not filename.endswith(".json"):
            continue
        name = filename[: -len(".json")]
        with open(os.path.join(template_dir, filename), encoding="utf-8") as f:
            data = json.load(f)
        template = compile_template(data["chat_template"])
        special = {k: data[k] for k in ("bos_token", "eos_token") if data.get(k) is not None}
        for case in CASES:
            if case.get("only") is not None and name not in case["only"]:
                continue
            add_generation_prompt = case.get("add_generation_prompt", True)
            kwargs = case.get("kwargs", {})
            tools = case.get("tools")
            row = {
                "template": name,
                "case": case["name"],
                "messages": case["messages"],
                "add_generation_prompt": add_generation_prompt,
                "kwargs": kwargs,
                "tools": tools,
            }
            try:
                row["rendered"] = template.render(
                    messages=case["messages"],
                    tools=tools,
                    documents=None,
                    add_generation_prompt=add_generation_prompt,
                    **{**special, **kwargs},
                )
            except jinja2.exceptions.TemplateError as e:
                row["error"] = str(e)
            out.append(row)
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
