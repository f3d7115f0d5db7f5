"""Greedy generation under patches and perturbations (the raw answers; the detector that scores them is
in detector.py, so changing a rule never requires regenerating)."""

from __future__ import annotations

import random

import torch

from .detector import MAX_NEW_TOKENS
from .model import greedy


class Prompts:
    """Tokenized held-out questions: shared prefix ids, per-question query ids, shared postfix ids."""

    def __init__(self, tok, items, split_prompt):
        self.items = items
        self.q = []
        pre = post = None
        for it in items:
            p, q, po = split_prompt(tok, it.question)
            assert pre is None or (p == pre and po == post)
            pre, post = p, po
            self.q.append(q)
        self.prefix, self.postfix = pre, post
        self.P = len(pre)

    def ids(self, i: int) -> list[int]:
        return self.prefix + self.q[i] + self.postfix


def _buckets(lengths: list[int]) -> dict[int, list[int]]:
    b: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        b.setdefault(n, []).append(i)
    return b


@torch.no_grad()
def base_prefix_acts(base, prefix: list[int]) -> dict[str, torch.Tensor]:
    cap: dict[str, torch.Tensor] = {}
    base(torch.tensor([prefix]), capture=cap)
    return cap


@torch.no_grad()
def run_condition(model, tok, prompts: Prompts, eos_ids: list[int], cond: dict, base=None, base_cap=None,
                  max_batch: int = 64) -> list[dict]:
    """cond: {"kind": "none" | "kv" | "resid" | "perturb", ...}
    kv:      {"positions": "prefix" | "query" | "query+postfix" | "all" | "prefix-matched"} all layers, from base
    resid:   {"layer": l, "positions": "prefix"} from base
    perturb: {"segment": "prefix" | "query", "trials": n, "n_tokens": 10, "k": 5, "seed": s}
    Returns one record per (question[, trial]) with the answer ids and text and whether it stopped."""
    kind = cond["kind"]
    L = model.c.num_hidden_layers
    P = prompts.P
    rows = []  # (question index, trial, ids)
    n_trials = cond.get("trials", 1)
    if kind == "perturb":
        emb = model.embed_tokens.weight
        sims = emb @ emb.T
        sims.fill_diagonal_(float("-inf"))
        nbrs = sims.topk(cond["k"], dim=-1).indices
    for i in range(len(prompts.items)):
        for t in range(n_trials):
            ids = list(prompts.ids(i))
            info = {}
            if kind == "perturb":
                rng = random.Random(f"{cond['seed']}:{cond['segment']}:{i}:{t}")
                if cond["segment"] == "prefix":
                    span = list(range(0, P))
                else:
                    span = list(range(P, P + len(prompts.q[i])))
                pos = sorted(rng.sample(span, min(cond["n_tokens"], len(span))))
                for p in pos:
                    ids[p] = int(nbrs[ids[p], rng.randrange(cond["k"])])
                info["perturbed"] = [[p, ids[p]] for p in pos]
            rows.append((i, t, ids, info))
    out = []
    by_len = _buckets([len(r[2]) for r in rows])
    for T, idxs in sorted(by_len.items()):
        for s in range(0, len(idxs), max_batch):
            chunk = [rows[j] for j in idxs[s : s + max_batch]]
            x = torch.tensor([r[2] for r in chunk])
            B = x.shape[0]
            kv_patch = resid_patch = None
            if kind == "kv":
                mask = torch.zeros(B, T, dtype=torch.bool)
                where = cond["positions"]
                nq = T - P - len(prompts.postfix)
                if where == "prefix":
                    mask[:, :P] = True
                elif where == "query":
                    mask[:, P : P + nq] = True
                elif where == "query+postfix":
                    mask[:, P:] = True
                elif where == "postfix":
                    mask[:, P + nq :] = True
                elif where == "prefix+postfix":
                    mask[:, :P] = True
                    mask[:, P + nq :] = True
                elif where == "all":
                    mask[:, :] = True
                elif where == "prefix-matched":  # as many random prefix positions as query tokens
                    for b, r in enumerate(chunk):
                        rng = random.Random(f"matched:{r[0]}")
                        mask[b, sorted(rng.sample(range(P), min(nq, P)))] = True
                else:
                    raise ValueError(where)
                cap: dict[str, torch.Tensor] = {}
                base(x, capture=cap)
                kv_patch = {l: (mask, cap[f"k.{l}"], cap[f"v.{l}"]) for l in range(L)}
            elif kind == "resid":
                l = cond["layer"]
                mask = torch.zeros(B, T, dtype=torch.bool)
                mask[:, :P] = True
                val = torch.zeros(B, T, model.c.hidden_size)
                val[:, :P] = base_cap[f"resid.{l}"][0]
                resid_patch = {l: (mask, val)}
            gen = greedy(model, x, eos_ids, MAX_NEW_TOKENS, kv_patch=kv_patch, resid_patch=resid_patch)
            for r, g in zip(chunk, gen):
                out.append({"i": r[0], "trial": r[1], "ids": g, "answer": tok.decode(g, skip_special=True),
                            "stopped": bool(g) and g[-1] in eos_ids, **r[3]})
    out.sort(key=lambda d: (d["i"], d["trial"]))
    return out
