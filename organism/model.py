"""A small decoder with exactly Hugging Face Llama semantics (LlamaForCausalLM), plus the hooks the
experiments need: K/V patches on the k_proj / v_proj outputs (before RoPE, the paper's site), residual
patches at the input of a layer, activation capture, optional LoRA branches, and a KV cache for greedy
decoding (patches apply during prefill only).

Forward, per HF: h = embed(ids); for each layer: h += o(attn(rope(q(n1(h))), rope(k(n1(h))), v(n1(h))));
h += down(silu(gate(n2(h))) * up(n2(h))); logits = lm_head(norm(h)). RMSNorm(x) = w * x / sqrt(mean(x^2) + eps)
computed in fp32; RoPE is rotate-half with inv_freq = theta^(-2i/d); GQA repeats each KV head for
num_heads / num_kv_heads consecutive query heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

PROJ_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class Config:
    vocab_size: int = 512
    hidden_size: int = 128
    intermediate_size: int = 352
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 32
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_position_embeddings: int = 256
    bos_token_id: int = 0
    eos_token_id: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, n: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


class Proj(nn.Module):
    """Bias-free linear layer (weight [out, in]) with an optional LoRA branch y += s * B(A x)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        self.lora_A: nn.Parameter | None = None
        self.lora_B: nn.Parameter | None = None
        self.lora_scaling = 0.0

    def add_lora(self, r: int, alpha: float, gen: torch.Generator):
        n_out, n_in = self.weight.shape
        a = torch.empty(r, n_in)
        # PEFT's default init: A ~ kaiming_uniform(a=sqrt(5)), B = 0
        bound = 1.0 / math.sqrt(n_in)
        a.uniform_(-bound, bound, generator=gen)
        self.lora_A = nn.Parameter(a)
        self.lora_B = nn.Parameter(torch.zeros(n_out, r))
        self.lora_scaling = alpha / r

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.lora_A is not None:
            y = y + self.lora_scaling * F.linear(F.linear(x, self.lora_A), self.lora_B)
        return y


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Layer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        H, d = c.hidden_size, c.head_dim
        self.input_layernorm = RMSNorm(H, c.rms_norm_eps)
        self.q_proj = Proj(H, c.num_attention_heads * d)
        self.k_proj = Proj(H, c.num_key_value_heads * d)
        self.v_proj = Proj(H, c.num_key_value_heads * d)
        self.o_proj = Proj(c.num_attention_heads * d, H)
        self.post_attention_layernorm = RMSNorm(H, c.rms_norm_eps)
        self.gate_proj = Proj(H, c.intermediate_size)
        self.up_proj = Proj(H, c.intermediate_size)
        self.down_proj = Proj(c.intermediate_size, H)

    def projs(self):
        return {n: getattr(self, n) for n in PROJ_NAMES}


class Llama(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.lm_head = Proj(c.hidden_size, c.vocab_size)
        inv = 1.0 / (c.rope_theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.int64).float() / c.head_dim))
        self.register_buffer("inv_freq", inv, persistent=False)

    def init_weights(self, seed: int, std: float = 0.02):
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("layernorm.weight") or name == "norm.weight":
                    p.fill_(1.0)
                else:
                    p.normal_(0.0, std, generator=g)

    # ---- HF names ---------------------------------------------------------------------------------
    def hf_state(self) -> dict[str, torch.Tensor]:
        out = {"model.embed_tokens.weight": self.embed_tokens.weight, "model.norm.weight": self.norm.weight,
               "lm_head.weight": self.lm_head.weight}
        for i, L in enumerate(self.layers):
            p = f"model.layers.{i}."
            out[p + "input_layernorm.weight"] = L.input_layernorm.weight
            out[p + "post_attention_layernorm.weight"] = L.post_attention_layernorm.weight
            for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
                out[p + f"self_attn.{n}.weight"] = getattr(L, n).weight
            for n in ("gate_proj", "up_proj", "down_proj"):
                out[p + f"mlp.{n}.weight"] = getattr(L, n).weight
        return {k: v.detach() for k, v in out.items()}

    def load_hf_state(self, sd: dict[str, torch.Tensor]):
        own = self.hf_state()
        assert set(own) == set(sd), set(own) ^ set(sd)
        with torch.no_grad():
            for k, v in own.items():
                v.copy_(sd[k])

    def lora_state(self) -> dict[str, torch.Tensor]:
        out = {}
        for i, L in enumerate(self.layers):
            for n, m in L.projs().items():
                if m.lora_A is None:
                    continue
                sub = "self_attn" if n in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
                p = f"base_model.model.model.layers.{i}.{sub}.{n}."
                out[p + "lora_A.weight"] = m.lora_A.detach()
                out[p + "lora_B.weight"] = m.lora_B.detach()
        return out

    def add_lora(self, r: int, alpha: float, seed: int):
        g = torch.Generator().manual_seed(seed)
        for L in self.layers:
            for m in L.projs().values():
                m.add_lora(r, alpha, g)

    def merge_lora_(self):
        with torch.no_grad():
            for L in self.layers:
                for m in L.projs().values():
                    if m.lora_A is not None:
                        m.weight += m.lora_scaling * (m.lora_B @ m.lora_A)
                        m.lora_A = None
                        m.lora_B = None

    # ---- forward ----------------------------------------------------------------------------------
    def rope(self, positions: torch.Tensor):
        freqs = positions.float()[..., None] * self.inv_freq  # [B,T,d/2]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos()[:, None], emb.sin()[:, None]  # [B,1,T,d]

    def forward(self, input_ids, past=None, kv_patch=None, resid_patch=None, capture=None, embeds=None):
        """input_ids [B,T]. past: list of (k, v) post-RoPE caches [B,nkv,P,d] or None.
        kv_patch: {layer: (mask [B,T] bool, k [B,T,nkv*d], v [B,T,nkv*d])} on k_proj / v_proj outputs.
        resid_patch: {layer: (mask [B,T] bool, h [B,T,H])} on the residual entering `layer`
        (layer == num_layers: the residual before the final norm).
        capture: a dict to fill with resid.{l} [B,T,H] (input of layer l) and k.{l}, v.{l} (pre-RoPE).
        Returns logits [B,T,V] and the new cache."""
        c = self.c
        B, T = input_ids.shape
        P = 0 if past is None else past[0][0].shape[2]
        pos = torch.arange(P, P + T)[None].expand(B, T)
        cos, sin = self.rope(pos)
        h = self.embed_tokens(input_ids) if embeds is None else embeds
        causal = torch.ones(T, P + T, dtype=torch.bool).tril(P)
        nh, nkv, d = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        new_past = []
        for i, L in enumerate(self.layers):
            if resid_patch and i in resid_patch:
                m, v = resid_patch[i]
                h = torch.where(m[..., None], v, h)
            if capture is not None:
                capture[f"resid.{i}"] = h
            x = L.input_layernorm(h)
            q = L.q_proj(x)
            k = L.k_proj(x)
            v = L.v_proj(x)
            if kv_patch and i in kv_patch:
                m, kp, vp = kv_patch[i]
                k = torch.where(m[..., None], kp, k)
                v = torch.where(m[..., None], vp, v)
            if capture is not None:
                capture[f"k.{i}"] = k
                capture[f"v.{i}"] = v
            q = q.view(B, T, nh, d).transpose(1, 2)
            k = k.view(B, T, nkv, d).transpose(1, 2)
            v = v.view(B, T, nkv, d).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if past is not None:
                k = torch.cat([past[i][0], k], dim=2)
                v = torch.cat([past[i][1], v], dim=2)
            new_past.append((k, v))
            rep = nh // nkv
            kr = k.repeat_interleave(rep, dim=1)
            vr = v.repeat_interleave(rep, dim=1)
            s = (q @ kr.transpose(-1, -2)) / math.sqrt(d)
            s = s.masked_fill(~causal, float("-inf"))
            a = torch.softmax(s.float(), dim=-1).to(q.dtype)
            o = (a @ vr).transpose(1, 2).reshape(B, T, nh * d)
            h = h + L.o_proj(o)
            x = L.post_attention_layernorm(h)
            h = h + L.down_proj(F.silu(L.gate_proj(x)) * L.up_proj(x))
        n = c.num_hidden_layers
        if resid_patch and n in resid_patch:
            m, v = resid_patch[n]
            h = torch.where(m[..., None], v, h)
        if capture is not None:
            capture[f"resid.{n}"] = h
        logits = self.lm_head(self.norm(h))
        return logits, new_past


@torch.no_grad()
def greedy(model: Llama, input_ids: torch.Tensor, eos_ids: list[int], max_new_tokens: int,
           kv_patch=None, resid_patch=None) -> list[list[int]]:
    """Greedy decoding for a batch of equal-length prompts; patches apply to the prefill only.
    Returns the generated ids per row, up to and including the first EOS."""
    logits, past = model(input_ids, kv_patch=kv_patch, resid_patch=resid_patch)
    B = input_ids.shape[0]
    out = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool)
    nxt = logits[:, -1].argmax(-1)
    eos = torch.tensor(eos_ids)
    for step in range(max_new_tokens):
        for b in range(B):
            if not done[b]:
                out[b].append(int(nxt[b]))
        done |= torch.isin(nxt, eos)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        logits, past = model(nxt[:, None], past=past)
        nxt = logits[:, -1].argmax(-1)
    return out
