"""Piggyback Lab's own PyTorch implementation of the Llama family, for exported experiment scripts.

An exported script (`piggyback export`, src/lab/export/python.ts) loads its models with Hugging Face
`transformers` + `peft`. Where those are not installed (CI has PyTorch only), `--backend local
--local-module src/lab/export/python/local_llama.py` loads them with this file instead: it reads
config.json + safetensors (its own reader: `safetensors` may be missing too) and a PEFT LoRA adapter,
and builds modules with exactly Hugging Face's names and nesting -- model.embed_tokens,
model.layers.N.self_attn.{q,k,v,o}_proj (Qwen3's q_norm / k_norm), model.layers.N.mlp.{gate,up,down}_proj,
input_layernorm, post_attention_layernorm, model.norm, lm_head -- with a LoRA-wrapped projection shaped
like PEFT's (base_layer, lora_A / lora_B ModuleDicts, a `scaling` dict, active adapters). So the
script's hooks (forward hooks on k_proj / v_proj, pre-hooks on the decoder layers and the final norm)
and its dose setting run unchanged on both, and in CI the exported script's greedy answers can be
compared with the lab's own engine token for token.

Semantics as transformers' LlamaForCausalLM (and Mistral / Qwen2 with q/k/v bias / Qwen3 with per-head
q/k RMSNorm before RoPE): RMSNorm in fp32, rotate-half RoPE (default, linear, llama3 scaling; tables
in fp64), GQA, causal attention with a softmax in fp32, SwiGLU MLP, tied lm_head when configured.
It must never download anything, never depend on transformers, peft or safetensors, and never merge
an adapter into the weights (a dose is the adapter's scaling times the dose).
"""

from __future__ import annotations

import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

SUPPORTED = ("llama", "mistral", "qwen2", "qwen3")
PROJECTIONS = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
               "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


# ---- safetensors -------------------------------------------------------------------------------------

def read_safetensors(path: str) -> dict:
    """Every tensor of a .safetensors file, in its stored dtype (F32, F16, BF16, F64)."""
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    if len(buf) < 8:
        raise ValueError(f"{path}: not a safetensors file (too short)")
    (n,) = struct.unpack("<Q", bytes(buf[:8]))
    if n > len(buf) - 8:
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(bytes(buf[8:8 + n]).decode("utf-8"))
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: {name} has dtype {e['dtype']}; only {', '.join(_DTYPES)} are read")
        dtype = _DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        size = torch.tensor([], dtype=dtype).element_size()
        count = (end - begin) // size
        if base + end > len(buf):
            raise ValueError(f"{path}: {name} runs past the end of the file")
        t = torch.frombuffer(buf, dtype=dtype, count=count, offset=base + begin) if count else torch.zeros(0, dtype=dtype)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def read_model_weights(folder: str) -> dict:
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    index = os.path.join(folder, "model.safetensors.index.json")
    if not os.path.exists(index):
        raise FileNotFoundError(f"{folder}: neither model.safetensors nor model.safetensors.index.json")
    with open(index) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    weights = {}
    for s in shards:
        weights.update(read_safetensors(os.path.join(folder, s)))
    return weights


# ---- configuration -----------------------------------------------------------------------------------

class Config:
    def __init__(self, cfg: dict):
        mt = cfg.get("model_type")
        if mt not in SUPPORTED:
            raise ValueError(f"model_type {mt!r} is not supported by the local backend (supported: {', '.join(SUPPORTED)})")
        self.model_type = mt
        self.hidden = cfg["hidden_size"]
        self.layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads") or self.heads
        hd = cfg.get("head_dim")
        self.head_dim = hd if hd else (128 if mt == "qwen3" else self.hidden // self.heads)
        self.ffn = cfg["intermediate_size"]
        self.vocab = cfg["vocab_size"]
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.tie = bool(cfg.get("tie_word_embeddings", False))
        if mt == "qwen2":
            self.qkv_bias, self.o_bias = True, False
        elif mt == "mistral":
            self.qkv_bias = self.o_bias = False
        else:
            self.qkv_bias = self.o_bias = bool(cfg.get("attention_bias", False))
        self.mlp_bias = mt == "llama" and bool(cfg.get("mlp_bias", False))
        self.qk_norm = mt == "qwen3"
        act = cfg.get("hidden_act", "silu")
        if act not in ("silu", "swish"):
            raise ValueError(f"hidden_act {act!r}: only SiLU MLPs are built")
        params = cfg.get("rope_parameters") if isinstance(cfg.get("rope_parameters"), dict) else None
        self.rope = params or cfg.get("rope_scaling") or {}
        self.rope_theta = (params or {}).get("rope_theta", cfg.get("rope_theta", 10000.0))

    def inv_freq(self) -> torch.Tensor:
        d = self.head_dim
        inv = 1.0 / (self.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        kind = self.rope.get("rope_type", self.rope.get("type", "default"))
        if kind == "default":
            return inv
        if kind == "linear":
            return inv / self.rope["factor"]
        if kind == "llama3":
            r = self.rope
            factor, lo, hi = r["factor"], r["low_freq_factor"], r["high_freq_factor"]
            old = r["original_max_position_embeddings"]
            wavelen = 2 * math.pi / inv
            scaled = torch.where(wavelen > old / lo, inv / factor, inv)
            smooth = (old / wavelen - lo) / (hi - lo)
            smoothed = (1 - smooth) * scaled / factor + smooth * scaled
            medium = (wavelen >= old / hi) & (wavelen <= old / lo)
            return torch.where(medium, smoothed, scaled)
        raise ValueError(f"rope type {kind!r} is not supported by the local backend")


# ---- modules with Hugging Face names -----------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, n: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.variance_epsilon = eps

    def forward(self, x):
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * h.to(dtype)


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.q_proj = nn.Linear(c.hidden, c.heads * c.head_dim, bias=c.qkv_bias)
        self.k_proj = nn.Linear(c.hidden, c.kv_heads * c.head_dim, bias=c.qkv_bias)
        self.v_proj = nn.Linear(c.hidden, c.kv_heads * c.head_dim, bias=c.qkv_bias)
        self.o_proj = nn.Linear(c.heads * c.head_dim, c.hidden, bias=c.o_bias)
        if c.qk_norm:
            self.q_norm = RMSNorm(c.head_dim, c.eps)
            self.k_norm = RMSNorm(c.head_dim, c.eps)

    def forward(self, x, cos, sin, past):
        c = self.c
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, c.heads, c.head_dim)
        # NOTE: the K/V hook site is here: k_proj / v_proj outputs, before Qwen3's k_norm and before RoPE.
        k = self.k_proj(x).view(B, T, c.kv_heads, c.head_dim)
        v = self.v_proj(x).view(B, T, c.kv_heads, c.head_dim)
        if c.qk_norm:
            q = self.q_norm(q)
            k = self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        P = k.shape[2] - T
        rep = c.heads // c.kv_heads
        kr = k.repeat_interleave(rep, dim=1)
        vr = v.repeat_interleave(rep, dim=1)
        scores = (q @ kr.transpose(-1, -2)) / math.sqrt(c.head_dim)
        causal = torch.ones(T, P + T, dtype=torch.bool, device=x.device).tril(P)
        scores = scores.masked_fill(~causal, float("-inf"))
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        o = (probs @ vr).transpose(1, 2).reshape(B, T, c.heads * c.head_dim)
        return self.o_proj(o), (k, v)


class MLP(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden, c.ffn, bias=c.mlp_bias)
        self.up_proj = nn.Linear(c.hidden, c.ffn, bias=c.mlp_bias)
        self.down_proj = nn.Linear(c.ffn, c.hidden, bias=c.mlp_bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c.hidden, c.eps)
        self.post_attention_layernorm = RMSNorm(c.hidden, c.eps)

    def forward(self, hidden_states, cos, sin, past):
        # NOTE: hidden_states comes first and positionally, as in transformers, so a forward pre-hook sees it.
        a, present = self.self_attn(self.input_layernorm(hidden_states), cos, sin, past)
        h = hidden_states + a
        return h + self.mlp(self.post_attention_layernorm(h)), present


class DecoderModel(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab, c.hidden)
        self.layers = nn.ModuleList([DecoderLayer(c) for _ in range(c.layers)])
        self.norm = RMSNorm(c.hidden, c.eps)


class CausalLMOutput:
    def __init__(self, logits, past_key_values):
        self.logits = logits
        self.past_key_values = past_key_values


class LocalCausalLM(nn.Module):
    """`model(input_ids=..., past_key_values=..., use_cache=True)` -> `.logits`, `.past_key_values`, as transformers."""

    def __init__(self, c: Config):
        super().__init__()
        self.config = c
        self.model = DecoderModel(c)
        self.lm_head = nn.Linear(c.hidden, c.vocab, bias=False)
        self.register_buffer("inv_freq", c.inv_freq(), persistent=False)

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def forward(self, input_ids, past_key_values=None, use_cache=True):
        B, T = input_ids.shape
        P = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        h = self.model.embed_tokens(input_ids)
        pos = torch.arange(P, P + T, dtype=torch.float64, device=input_ids.device)
        angles = pos[:, None] * self.inv_freq.to(input_ids.device)[None, :]
        emb = torch.cat((angles, angles), dim=-1)
        cos = emb.cos().to(h.dtype)[None, None]
        sin = emb.sin().to(h.dtype)[None, None]
        presents = []
        for i, layer in enumerate(self.model.layers):
            h, present = layer(h, cos, sin, None if past_key_values is None else past_key_values[i])
            presents.append(present)
        logits = self.lm_head(self.model.norm(h))
        return CausalLMOutput(logits, presents if use_cache else None)


def load_model(folder: str, dtype=torch.float32, device="cpu") -> LocalCausalLM:
    with open(os.path.join(folder, "config.json")) as f:
        c = Config(json.load(f))
    weights = read_model_weights(folder)
    model = LocalCausalLM(c)
    own = dict(model.named_parameters())
    if c.tie and "lm_head.weight" not in weights:
        weights["lm_head.weight"] = weights["model.embed_tokens.weight"]
    missing = sorted(set(own) - set(weights))
    if missing:
        raise ValueError(f"{folder}: the weights lack {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    with torch.no_grad():
        for name, p in own.items():
            w = weights[name]
            if tuple(w.shape) != tuple(p.shape):
                raise ValueError(f"{folder}: {name} has shape {list(w.shape)}, the config needs {list(p.shape)}")
            p.copy_(w.to(torch.float32))
    model = model.to(dtype=dtype, device=device)
    model.eval()
    return model


# ---- PEFT LoRA ---------------------------------------------------------------------------------------

class LoraLinear(nn.Module):
    """A projection with LoRA branches, laid out like peft's lora.Linear: y = base(x) + sum B(A x)*scaling."""

    def __init__(self, base_layer: nn.Linear):
        super().__init__()
        self.base_layer = base_layer
        self.lora_A = nn.ModuleDict()
        self.lora_B = nn.ModuleDict()
        self.scaling = {}
        self.active_adapters = []

    def add(self, name: str, a: torch.Tensor, b: torch.Tensor, scaling: float):
        r, n_in = a.shape
        n_out = b.shape[0]
        la = nn.Linear(n_in, r, bias=False)
        lb = nn.Linear(r, n_out, bias=False)
        with torch.no_grad():
            la.weight.copy_(a.to(torch.float32))
            lb.weight.copy_(b.to(torch.float32))
        w = self.base_layer.weight
        self.lora_A[name] = la.to(dtype=w.dtype, device=w.device)
        self.lora_B[name] = lb.to(dtype=w.dtype, device=w.device)
        self.scaling[name] = scaling

    def forward(self, x):
        y = self.base_layer(x)
        for name in self.active_adapters:
            if name in self.lora_A:
                y = y + self.lora_B[name](self.lora_A[name](x)) * self.scaling[name]
        return y


def adapter_scaling(cfg: dict) -> float:
    r, alpha = cfg["r"], cfg.get("lora_alpha", 8)
    return alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r


def load_adapter(model: LocalCausalLM, folder: str, name: str) -> float:
    """Adds a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) as `name`; returns its scaling."""
    with open(os.path.join(folder, "adapter_config.json")) as f:
        cfg = json.load(f)
    if cfg.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{folder}: peft_type {cfg.get('peft_type')!r}: only LoRA adapters")
    for field in ("use_dora", "fan_in_fan_out"):
        if cfg.get(field):
            raise ValueError(f"{folder}: {field} is not supported by the local backend")
    if cfg.get("bias", "none") != "none":
        raise ValueError(f"{folder}: bias = {cfg.get('bias')!r}: LoRA-trained biases are not built")
    for field in ("modules_to_save", "rank_pattern", "alpha_pattern", "layer_replication"):
        if cfg.get(field):
            raise ValueError(f"{folder}: {field} is not supported (one rank and scaling per adapter)")
    scaling = adapter_scaling(cfg)
    pairs = {}
    for tname, t in read_safetensors(os.path.join(folder, "adapter_model.safetensors")).items():
        if not tname.startswith("base_model.model."):
            raise ValueError(f"{folder}: unexpected tensor {tname}")
        path, part = tname[len("base_model.model."):].rsplit(".lora_", 1)
        which = part[0]
        if which not in "AB" or not part.endswith("weight"):
            raise ValueError(f"{folder}: {tname} is not a LoRA A/B weight")
        pairs.setdefault(path, {})[which] = t
    for path, ab in pairs.items():
        proj = path.rsplit(".", 1)[-1]
        if proj not in PROJECTIONS or "A" not in ab or "B" not in ab:
            raise ValueError(f"{folder}: {path} is not a supported LoRA target (or lacks A or B)")
        parent_path, attr = path.rsplit(".", 1)
        parent = model.get_submodule(parent_path)
        mod = getattr(parent, attr)
        if not isinstance(mod, LoraLinear):
            mod = LoraLinear(mod)
            setattr(parent, attr, mod)
        if ab["A"].shape[1] != mod.base_layer.in_features or ab["B"].shape[0] != mod.base_layer.out_features:
            raise ValueError(f"{folder}: {path} has LoRA shapes {list(ab['A'].shape)} / {list(ab['B'].shape)} "
                             f"for a [{mod.base_layer.out_features}, {mod.base_layer.in_features}] projection")
        mod.add(name, ab["A"], ab["B"], scaling)
    set_adapter(model, name)
    return scaling


def set_adapter(model: nn.Module, name) -> None:
    """Makes `name` (or none, for None) the active adapter of every LoRA projection."""
    for m in model.modules():
        if isinstance(m, LoraLinear):
            m.active_adapters = [name] if name is not None else []


# ---- tokenizer (decoding only) -----------------------------------------------------------------------

def _bytes_to_unicode():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


class LocalTokenizer:
    """Decoding only (ids -> bytes -> text), from tokenizer.json: byte-level BPE or sentencepiece-style pieces.
    The local backend cannot encode; the exported script instead checks that the lab's ids spell the lab's text."""

    def __init__(self, folder: str):
        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
            tj = json.load(f)
        self.pieces = {i: p for p, i in tj["model"]["vocab"].items()}
        self.added = {}
        for t in tj.get("added_tokens") or []:
            self.added[t["id"]] = t["content"]
            self.pieces[t["id"]] = t["content"]
        dec = json.dumps(tj.get("decoder"))
        self.byte_level = '"ByteLevel"' in dec
        self.byte_fallback = bool(tj["model"].get("byte_fallback"))
        self._map = _bytes_to_unicode()

    def piece_bytes(self, i: int) -> bytes:
        if i in self.added:
            return self.added[i].encode("utf-8")
        p = self.pieces.get(i)
        if p is None:
            raise ValueError(f"token id {i} is not in the vocabulary")
        if self.byte_level:
            return b"".join(bytes([self._map[ch]]) if ch in self._map else ch.encode("utf-8") for ch in p)
        if self.byte_fallback and len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
            return bytes([int(p[3:5], 16)])
        return p.replace("\u2581", " ").encode("utf-8")

    def decode(self, ids) -> str:
        return b"".join(self.piece_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def id_text(self, i: int) -> str:
        if i in self.added:
            return self.added[i]
        b = self.piece_bytes(i)
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return "".join(chr(x) if x < 0x80 else f"<0x{x:02X}>" for x in b)
