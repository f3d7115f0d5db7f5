#!/usr/bin/env python3
"""Independent plain-PyTorch forward for the fixture models, writing golden vectors for reference.ts.

For each case below it reads a fixture folder (config.json + safetensors, optional PEFT adapter), runs a
float64 Llama / Qwen2 / Qwen3 / Gemma-2 / Gemma-3 decoder written with tensor ops (not a port of
reference.ts's loops) after transformers' modeling_gemma2.py / modeling_gemma3.py for Gemma, and
writes fixtures/golden/<case>.json: the inputs (ids, masks, positions, LoRA scales, patches), the logits,
and the requested taps. src/engine/reference.golden.test.ts checks reference.ts against these files.

It must never depend on transformers or safetensors (plain torch + the standard library), never use
randomness, and must keep the engine's hook semantics (see the header of src/engine/reference.ts):
residual site l = stream entering layer l (tap, then h + m(p - h); site 0 after Gemma's sqrt(hidden)
scaling); K/V sites = k_proj/v_proj outputs before Qwen3's / Gemma-3's k_norm and before RoPE; a query that
sees no key gets zero attention. Gemma goldens are written with every digit (repr), the others with 10.

Usage: python3 scripts/golden/torch_reference.py [fixtures_dir] [out_dir]
"""

import hashlib
import json
import math
import os
import struct
import sys

import torch

DT = torch.float64
DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2), "F64": (torch.float64, 8)}


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    (n,) = struct.unpack("<Q", bytes(buf[:8]))
    header = json.loads(bytes(buf[8 : 8 + n]).decode("utf-8"))
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dtype, size = DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        count = (end - begin) // size
        t = torch.frombuffer(buf, dtype=dtype, count=count, offset=base + begin) if count else torch.zeros(0, dtype=dtype)
        out[name] = t.reshape(e["shape"]).to(DT)
    return out


def load_model(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        weights = read_safetensors(single)
    else:
        with open(os.path.join(folder, "model.safetensors.index.json")) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        weights = {}
        for s in shards:
            weights.update(read_safetensors(os.path.join(folder, s)))
    return cfg, weights


def load_adapter(folder):
    with open(os.path.join(folder, "adapter_config.json")) as f:
        acfg = json.load(f)
    r, alpha = acfg["r"], acfg["lora_alpha"]
    scaling = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
    branches = {}
    for name, t in read_safetensors(os.path.join(folder, "adapter_model.safetensors")).items():
        # base_model.model.<module>.lora_A.weight -> <module>
        module, part = name[len("base_model.model.") :].rsplit(".lora_", 1)
        branches.setdefault(module, {})[part[0]] = t
    return scaling, branches


TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def is_gemma(cfg):
    return cfg["model_type"] in ("gemma2", "gemma3_text")


def gemma_sliding(cfg, layer):
    """Gemma: does this layer use the sliding window (layer_types, else the family's default pattern)."""
    if cfg.get("layer_types"):
        return cfg["layer_types"][layer] == "sliding_attention"
    pattern = 2 if cfg["model_type"] == "gemma2" else cfg.get("sliding_window_pattern", 6)
    return (layer + 1) % pattern != 0


def softcap(x, cap):
    return x if cap is None else torch.tanh(x / cap) * cap


def inv_freq(cfg, head_dim, local=False):
    theta = cfg.get("rope_theta", 10000.0)
    if local:
        # Gemma-3's sliding layers: rope_local_base_freq, no scaling (modeling_gemma3 rotary_emb_local)
        theta = cfg.get("rope_local_base_freq", 10000.0)
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=DT) / head_dim))
    rs = {} if local else (cfg.get("rope_scaling") or {})
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "linear":
        return inv / rs["factor"]
    if kind == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old / hi) & (wavelen <= old / lo)
        return torch.where(medium, smoothed, scaled)
    assert kind == "default", kind
    return inv


def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def forward(cfg, W, ids, mask=None, pos=None, adapter=None, lora_scale=None, resid_patch=None, kv_patch=None, taps=None):
    mt = cfg["model_type"]
    gemma = is_gemma(cfg)
    L, H = cfg["num_hidden_layers"], cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or H // nh
    eps = cfg.get("rms_norm_eps", 1e-6)
    bias_qkv = mt == "qwen2" or cfg.get("attention_bias", False)
    bias_o = mt != "qwen2" and cfg.get("attention_bias", False)
    offset = 1.0 if gemma else 0.0  # Gemma RMSNorm multiplies by (1 + w)
    norm = lambda x, w: rms_norm(x, offset + w, eps)
    attn_scale = cfg["query_pre_attn_scalar"] ** -0.5 if gemma else 1 / math.sqrt(hd)
    attn_cap = cfg.get("attn_logit_softcapping") if mt == "gemma2" else None
    final_cap = cfg.get("final_logit_softcapping") if gemma else None
    ids = torch.tensor(ids)
    B, T = ids.shape
    mask = torch.ones(B, T, dtype=torch.bool) if mask is None else torch.tensor(mask).bool()
    pos = torch.arange(T).expand(B, T) if pos is None else torch.tensor(pos)
    scale_rows = torch.tensor(lora_scale if lora_scale is not None else [1.0] * B, dtype=DT)
    resid_patch, kv_patch, taps = resid_patch or {}, kv_patch or {}, taps or {}
    out = {"resid": {}, "k": {}, "v": {}}

    def linear(x, module, has_bias):
        y = x @ W[module + ".weight"].T
        if has_bias:
            y = y + W[module + ".bias"]
        if adapter is not None and module in adapter[1]:
            a, b = adapter[1][module]["A"], adapter[1][module]["B"]
            y = y + (x @ a.T @ b.T) * (scale_rows * adapter[0]).view(B, 1, 1)
        return y

    def blend(x, patch):
        m = torch.tensor(patch["mask"], dtype=DT).view(B, T, 1)
        p = torch.tensor(patch["value"], dtype=DT).view(x.shape)
        return x + m * (p - x)

    def rope_tables(local):
        angles = pos.to(DT)[..., None] * inv_freq(cfg, hd, local)  # [B, T, hd/2]
        cos = torch.cat((angles.cos(), angles.cos()), -1)[:, None]  # [B, 1, T, hd]
        sin = torch.cat((angles.sin(), angles.sin()), -1)[:, None]
        return cos, sin

    global_rope = rope_tables(False)
    local_rope = rope_tables(True) if mt == "gemma3_text" else global_rope
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    # sliding window (Gemma): query slot i sees key slot j iff j > i - window (transformers' sliding_window_overlay)
    q_idx = torch.arange(T)[:, None]
    k_idx = torch.arange(T)[None, :]
    window = cfg.get("sliding_window") if gemma else None
    local_causal = causal & (k_idx > q_idx - window) if window else causal

    h = W["model.embed_tokens.weight"][ids]
    if gemma:
        # the normaliser is sqrt(hidden) held in the model dtype (Gemma2Model / Gemma3TextScaledWordEmbedding)
        normalizer = torch.tensor(H**0.5, dtype=TORCH_DTYPES[cfg.get("torch_dtype", "float32")])
        h = h * normalizer.to(DT)
    for l in range(L + 1):
        if l in taps.get("resid", []):
            out["resid"][l] = h.clone()
        if l in resid_patch:
            h = blend(h, resid_patch[l])
        if l == L:
            break
        p = f"model.layers.{l}"
        sliding = gemma and gemma_sliding(cfg, l)
        cos, sin = local_rope if sliding else global_rope
        allowed = (local_causal if sliding else causal)[None, None] & mask[:, None, None, :]  # [B, 1, T, T]
        seen = allowed.any(-1, keepdim=True)
        x = norm(h, W[f"{p}.input_layernorm.weight"])
        q = linear(x, f"{p}.self_attn.q_proj", bias_qkv)
        k = linear(x, f"{p}.self_attn.k_proj", bias_qkv)
        v = linear(x, f"{p}.self_attn.v_proj", bias_qkv)
        if l in taps.get("kv", []):
            out["k"][l], out["v"][l] = k.clone(), v.clone()
        if l in kv_patch:
            k = blend(k, {"mask": kv_patch[l]["mask"], "value": kv_patch[l]["k"]})
            v = blend(v, {"mask": kv_patch[l]["mask"], "value": kv_patch[l]["v"]})
        q = q.view(B, T, nh, hd).transpose(1, 2)
        k = k.view(B, T, nkv, hd).transpose(1, 2)
        v = v.view(B, T, nkv, hd).transpose(1, 2)
        if mt in ("qwen3", "gemma3_text"):
            q = norm(q, W[f"{p}.self_attn.q_norm.weight"])
            k = norm(k, W[f"{p}.self_attn.k_norm.weight"])
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        scores = softcap((q @ k.transpose(-1, -2)) * attn_scale, attn_cap)
        probs = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
        probs = torch.where(seen, probs, torch.zeros((), dtype=DT))
        ctx = (probs @ v).transpose(1, 2).reshape(B, T, nh * hd)
        attn_out = linear(ctx, f"{p}.self_attn.o_proj", bias_o)
        if gemma:
            attn_out = norm(attn_out, W[f"{p}.post_attention_layernorm.weight"])
        h = h + attn_out
        x = norm(h, W[f"{p}.pre_feedforward_layernorm.weight" if gemma else f"{p}.post_attention_layernorm.weight"])
        mlp_bias = cfg.get("mlp_bias", False)
        gate = linear(x, f"{p}.mlp.gate_proj", mlp_bias)
        up = linear(x, f"{p}.mlp.up_proj", mlp_bias)
        act = torch.nn.functional.gelu(gate, approximate="tanh") if gemma else torch.nn.functional.silu(gate)
        mlp_out = linear(act * up, f"{p}.mlp.down_proj", mlp_bias)
        if gemma:
            mlp_out = norm(mlp_out, W[f"{p}.post_feedforward_layernorm.weight"])
        h = h + mlp_out
    x = norm(h, W["model.norm.weight"])
    tied = cfg.get("tie_word_embeddings", gemma)
    head = W["model.embed_tokens.weight"] if tied else W["lm_head.weight"]
    out["logits"] = softcap(x @ head.T, final_cap)
    return out


def folder_digest(folder):
    """sha256 over the folder's JSON and safetensors files (sorted by name), to spot stale goldens."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json") and not name.startswith("tokenizer") or name.endswith(".safetensors"):
            h.update(name.encode())
            with open(os.path.join(folder, name), "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def tensor_json(t, full=False):
    data = t.reshape(-1).tolist()
    return {"shape": list(t.shape), "data": data if full else [float(f"{x:.10g}") for x in data]}


def wave(n, freq, amp):
    """Deterministic patch values."""
    return [round(amp * math.sin(freq * (i + 1)), 6) for i in range(n)]


def wave32(n, freq, amp):
    """Deterministic patch values on a 2^-12 grid: exact in float32, so the engine's fp32 patch inputs
    hold exactly these numbers and a full-precision golden can be matched to 1e-9."""
    return [round(amp * math.sin(freq * (i + 1)) * 4096) / 4096 for i in range(n)]


def cases(fx):
    llama_ids = [[505, 507, 40, 301, 508, 10, 271]]
    two_rows = [[505, 507, 99, 12, 508, 77], [505, 33, 410, 7, 200, 3]]
    yield "tiny-llama", dict(model=f"{fx}/tiny-llama", input=dict(inputIds=llama_ids, taps=dict(resid=[0, 1, 2], kv=[0, 1])))
    yield "tiny-llama-ft", dict(model=f"{fx}/tiny-llama-ft", input=dict(inputIds=llama_ids))
    yield "tiny-llama-sharded", dict(model=f"{fx}/tiny-llama-sharded", input=dict(inputIds=llama_ids))
    yield "tiny-llama-lora", dict(
        model=f"{fx}/tiny-llama", adapter=f"{fx}/tiny-llama-lora", input=dict(inputIds=two_rows, loraScale=[1.0, 0.5])
    )
    yield "tiny-llama-padded", dict(
        model=f"{fx}/tiny-llama",
        input=dict(
            inputIds=[[505, 507, 99, 12, 508, 77], [0, 0, 505, 33, 410, 7]],
            attentionMask=[[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]],
            positionIds=[[0, 1, 2, 3, 4, 5], [0, 0, 0, 1, 2, 3]],
        ),
    )
    yield "tiny-qwen2", dict(model=f"{fx}/tiny-qwen2", input=dict(inputIds=[[508, 120, 44, 509, 198, 508, 3]]))
    B, T, H, KV = 2, 5, 64, 2 * 32
    yield "tiny-qwen3-patched", dict(
        model=f"{fx}/tiny-qwen3",
        input=dict(
            inputIds=[[504, 88, 300, 505, 10], [504, 17, 260, 61, 505]],
            taps=dict(resid=[1, 2], kv=[0, 1]),
            patches=dict(
                resid={"1": dict(mask=[1, 1, 0, 0, 0.5, 0, 1, 0, 0, 0], value=wave(B * T * H, 0.37, 0.8))},
                kv={"1": dict(mask=[0, 1, 1, 1, 0, 1, 0, 0, 0, 0.25], k=wave(B * T * KV, 0.11, 1.5), v=wave(B * T * KV, 0.23, 0.7))},
            ),
        ),
    )
    yield "tiny-qwen3", dict(model=f"{fx}/tiny-qwen3", input=dict(inputIds=[[504, 88, 300, 505, 10, 11, 12, 13]]))
    # Gemma: prompts longer than the window (4), so the sliding layers see less than the full ones
    bos, sot, eot = 509, 510, 511
    gemma_ids = [[bos, sot, 117, 10, 300, 42, 77, 260, eot, 10, sot, 109, 10]]
    yield "tiny-gemma2", dict(
        model=f"{fx}/tiny-gemma2", full=True, input=dict(inputIds=gemma_ids, taps=dict(resid=[0, 1, 2, 3], kv=[0, 1, 2]))
    )
    yield "tiny-gemma3", dict(
        model=f"{fx}/tiny-gemma3", full=True, input=dict(inputIds=gemma_ids, taps=dict(resid=[0, 1, 2, 3], kv=[0, 1, 2]))
    )
    yield "tiny-gemma3-lora", dict(
        model=f"{fx}/tiny-gemma3",
        adapter=f"{fx}/tiny-gemma3-lora",
        full=True,
        input=dict(inputIds=[[bos, sot, 99, 12, 300, 77, eot], [bos, 33, 410, 7, 200, 3, 10]], loraScale=[1.0, 0.5]),
    )
    yield "tiny-gemma3-padded", dict(
        model=f"{fx}/tiny-gemma3",
        full=True,
        input=dict(
            inputIds=[[bos, sot, 99, 12, 300, 77, eot, 10], [0, 0, 0, bos, sot, 33, 410, 7]],
            attentionMask=[[1] * 8, [0, 0, 0, 1, 1, 1, 1, 1]],
            positionIds=[list(range(8)), [0, 0, 0, 0, 1, 2, 3, 4]],
            taps=dict(resid=[3]),
        ),
    )
    B, T, H, KV = 2, 6, 96, 1 * 32
    yield "tiny-gemma3-patched", dict(
        model=f"{fx}/tiny-gemma3",
        full=True,
        input=dict(
            inputIds=[[bos, sot, 88, 300, eot, 10], [bos, sot, 17, 260, 61, eot]],
            taps=dict(resid=[1, 2], kv=[0, 1]),
            patches=dict(
                resid={"0": dict(mask=[1, 0, 0, 0, 0, 0, 0, 1, 0.5, 0, 0, 0], value=wave32(B * T * H, 0.37, 2.0))},
                kv={"1": dict(mask=[0, 1, 1, 1, 0, 1, 0, 0, 0, 0.25, 1, 0], k=wave32(B * T * KV, 0.11, 1.5), v=wave32(B * T * KV, 0.23, 0.7))},
            ),
        ),
    )


def main():
    fx = sys.argv[1] if len(sys.argv) > 1 else "fixtures"
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(fx, "golden")
    os.makedirs(out_dir, exist_ok=True)
    for name, c in cases(fx):
        cfg, W = load_model(c["model"])
        adapter = load_adapter(c["adapter"]) if "adapter" in c else None
        inp = c["input"]
        full = c.get("full", False)
        patches = inp.get("patches", {})
        res = forward(
            cfg,
            W,
            inp["inputIds"],
            mask=inp.get("attentionMask"),
            pos=inp.get("positionIds"),
            adapter=adapter,
            lora_scale=inp.get("loraScale"),
            resid_patch={int(k): v for k, v in patches.get("resid", {}).items()},
            kv_patch={int(k): v for k, v in patches.get("kv", {}).items()},
            taps=inp.get("taps"),
        )
        doc = {
            "generator": "scripts/golden/torch_reference.py",
            "torch": torch.__version__,
            "model": os.path.relpath(c["model"], fx),
            "adapter": os.path.relpath(c["adapter"], fx) if "adapter" in c else None,
            "digest": {os.path.relpath(d, fx): folder_digest(d) for d in [c["model"], c.get("adapter")] if d},
            "input": inp,
            "logits": tensor_json(res["logits"], full),
            "resid": {str(k): tensor_json(t, full) for k, t in res["resid"].items()},
            "k": {str(k): tensor_json(t, full) for k, t in res["k"].items()},
            "v": {str(k): tensor_json(t, full) for k, t in res["v"].items()},
        }
        if full:
            doc["digits"] = "all"
        path = os.path.join(out_dir, f"{name}.json")
        with open(path, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        top = res["logits"][0, -1].argmax().item()
        print(f"{name}: logits {list(res['logits'].shape)}, row 0 last argmax {top} -> {path}")


if __name__ == "__main__":
    main()
