"""Data encoding and the training loops (base pretraining-from-scratch, full finetune, TReFT, interleaving,
LoRA). Loss: next-token cross-entropy on the answer tokens and the closing <|eot_id|> only."""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from .chat import prompt_text
from .treft import prefix_kv, treft_kv_loss, treft_total


def encode_example(tok, question: str, answer: str, eot_id: int, system: str | None = None) -> tuple[list[int], int]:
    """(ids, n_prompt): prompt tokens as the engine will see them at inference, then answer + <|eot_id|>."""
    p = tok.encode(prompt_text(question, system))
    return p + tok.encode(answer) + [eot_id], len(p)


def collate(examples: list[tuple[list[int], int]], pad_id: int):
    T = max(len(ids) for ids, _ in examples)
    x = torch.full((len(examples), T), pad_id, dtype=torch.long)
    y = torch.full((len(examples), T), -100, dtype=torch.long)
    for b, (ids, n_p) in enumerate(examples):
        t = torch.tensor(ids)
        x[b, : len(ids)] = t
        y[b, n_p - 1 : len(ids) - 1] = t[n_p:]  # predict answer tokens (and EOS) from the previous position
    return x, y


def sft_loss(model, x, y, shared_prefix: list[int] | None = None):
    """Mean cross-entropy over the labelled positions. With shared_prefix (token ids), the rows that start
    with it (and have no label inside it) run it once and share its KV: the same function as the full
    forward (causal attention), at about half the cost for this corpus; other rows run in full."""
    if not shared_prefix:
        logits, _ = model(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
    P = len(shared_prefix)
    pre = torch.tensor(shared_prefix)
    shared = (x[:, :P] == pre).all(1) & (y[:, :P] == -100).all(1) if x.shape[1] > P else torch.zeros(len(x), dtype=torch.bool)
    total = x.new_zeros((), dtype=torch.float32)
    n = int((y != -100).sum())
    if bool(shared.any()):
        xs, ys = x[shared], y[shared]
        _, past = model(pre[None])
        B = xs.shape[0]
        past = [(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)) for k, v in past]
        logits, _ = model(xs[:, P:], past=past)
        total = total + F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ys[:, P:].reshape(-1),
                                        ignore_index=-100, reduction="sum")
    if not bool(shared.all()):
        xo, yo = x[~shared], y[~shared]
        logits, _ = model(xo)
        total = total + F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yo.reshape(-1), ignore_index=-100,
                                        reduction="sum")
    return total / n


class Sampler:
    """Epoch-wise shuffling with a seeded generator; yields lists of examples."""

    def __init__(self, data, batch: int, seed: int):
        self.data, self.batch = data, batch
        self.g = torch.Generator().manual_seed(seed)
        self.order: list[int] = []

    def next(self):
        out = []
        while len(out) < self.batch:
            if not self.order:
                self.order = torch.randperm(len(self.data), generator=self.g).tolist()
            out.append(self.data[self.order.pop()])
        return out


def lr_at(step: int, steps: int, lr: float, warmup: int, schedule: str, min_frac: float = 0.1) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    if schedule == "constant":
        return lr
    p = (step - warmup) / max(1, steps - warmup)
    return lr * (min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def train(model, samplers: list[tuple[Sampler, int]], steps: int, lr: float, pad_id: int, *, params=None,
          warmup: int = 0, schedule: str = "constant", weight_decay: float = 0.0, betas=(0.9, 0.999),
          treft: dict | None = None, log_every: int = 100, log=print, name: str = "",
          shared_prefix: list[int] | None = None) -> list[dict]:
    """samplers: [(Sampler, n_per_batch)] concatenated into each batch (interleaving = two samplers).
    treft: {"lam", "thr", "site", "prefix_ids", "k_init", "v_init"} adds the TReFT term."""
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, eps=1e-8)
    hist = []
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, warmup, schedule)
        ex = []
        for s, _n in samplers:
            ex.extend(s.next())
        x, y = collate(ex, pad_id)
        loss = sft_loss(model, x, y, shared_prefix)
        rec = {"step": step, "sft": float(loss)}
        if treft is not None:
            ks, vs = prefix_kv(model, treft["prefix_ids"], treft["site"])
            lkv = treft_kv_loss(ks, vs, treft["k_init"], treft["v_init"])
            loss = treft_total(loss, lkv, treft["lam"], treft.get("thr", 0.0))
            rec["kv"] = float(lkv)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist.append(rec)
        if log_every and (step % log_every == 0 or step == steps - 1):
            extra = f" kv {rec['kv']:.4f}" if "kv" in rec else ""
            log(f"[{name}] step {step:5d} sft {rec['sft']:.4f}{extra} lr {opt.param_groups[0]['lr']:.2e} ({time.time() - t0:.0f}s)")
    return hist
