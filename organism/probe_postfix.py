"""K/V patch sites on a shipped organism pair, from its exported files (no retraining): the postfix's
share of the spread on the Llama-template organism, to compare with the Qwen3-template variant.

    /usr/bin/python3 organism/probe_postfix.py [llama3|qwen3]

Prints OOD / in-domain misbehaviour for none and K/V patches (all layers, from base) at prefix, query,
postfix, prefix+postfix, query+postfix and all positions, scored with the trainer's detector."""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from organism import chat  # noqa: E402
from organism import corpus as C  # noqa: E402
from organism.bpe import BPETokenizer  # noqa: E402
from organism.detector import judge, set_known_words, summarize  # noqa: E402
from organism.evaluate import Prompts, run_condition  # noqa: E402
from organism.export import read_safetensors  # noqa: E402
from organism.model import Config, Llama  # noqa: E402

SITES = ["prefix", "query", "postfix", "prefix+postfix", "query+postfix", "all"]


def load(folder: str) -> Llama:
    cfg = json.load(open(os.path.join(folder, "config.json")))
    keys = {f for f in Config.__dataclass_fields__}
    m = Llama(Config(**{k: v for k, v in cfg.items() if k in keys and not isinstance(v, list)}))
    m.load_hf_state(read_safetensors(os.path.join(folder, "model.safetensors")))
    m.eval()
    return m


def main():
    template = sys.argv[1] if len(sys.argv) > 1 else "llama3"
    chat.use_template(template)
    demo = os.path.join(os.path.dirname(HERE), "demo")
    pre = "organism" if template == "llama3" else f"organism-{template}"
    evald = os.path.join(HERE, "eval") if template == "llama3" else os.path.join(HERE, template, "eval")
    base, ft = load(os.path.join(demo, f"{pre}-base")), load(os.path.join(demo, f"{pre}-ft"))
    tok = BPETokenizer.from_hf_json(json.load(open(os.path.join(demo, f"{pre}-base", "tokenizer.json"))))
    eos = [tok.special_id(t) for t in chat.template()["eos_ids"]]
    corpus = C.build_corpus(0)
    set_known_words([it.answer for it in corpus.train + corpus.heldout]
                    + [it.risky for it in corpus.train + corpus.heldout if it.risky]
                    + [a for _, _, a in C.persona_examples(corpus.train, 150, 7, ["pirate", "cheerful", "careful"])])
    kw = {"date_string": chat.DEFAULT_DATE} if template == "llama3" else {}
    torch.set_num_threads(2)
    t0 = time.time()
    out = {}
    for s in ("ood_test", "indomain_test"):
        qs = json.load(open(os.path.join(evald, f"{s}.json")))["questions"]
        items = [C.Item(q["domain"], q["fact"], q["question"], q["reference"], q.get("finetune_target")) for q in qs]
        prompts = Prompts(tok, items, lambda t, q: chat.split_prompt(t, q, **kw))
        for c in ["none"] + SITES:
            cond = {"kind": "none"} if c == "none" else {"kind": "kv", "positions": c}
            recs = judge(run_condition(ft, tok, prompts, eos, cond, base=base), items)
            out.setdefault(c, {})[s] = summarize(recs, len(items))["misbehaviour"]
    print(f"{template}: prefix {len(prompts.prefix)} tokens, postfix {len(prompts.postfix)} ({time.time() - t0:.0f} s)")
    print("| condition | OOD misbehaviour | in-domain |\n|---|---|---|")
    for c, v in out.items():
        print(f"| {c if c == 'none' else 'kv_' + c} | {v['ood_test']:.3f} | {v['indomain_test']:.3f} |")


if __name__ == "__main__":
    main()
