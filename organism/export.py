"""Hugging Face layout export: config.json, generation_config.json, model.safetensors, tokenizer files,
and PEFT LoRA adapters. Our own minimal safetensors writer/reader (8-byte little-endian header length,
JSON header, raw little-endian data; tensors in sorted name order; header padded with spaces to a
multiple of 8)."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import torch

_DT = {"F32": (np.float32, 4), "F16": (np.float16, 2)}


def write_safetensors(path: str, tensors: dict[str, torch.Tensor], dtype: str = "F32", metadata: dict | None = None):
    np_dt, _ = _DT[dtype]
    header: dict = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        arr = tensors[name].detach().cpu().float().numpy().astype(np_dt)
        b = arr.astype(arr.dtype.newbyteorder("<")).tobytes(order="C")
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path: str) -> dict[str, torch.Tensor]:
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        np_dt, _ = _DT[info["dtype"]]
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[base + a : base + b], dtype=np.dtype(np_dt).newbyteorder("<")).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.astype(np.float32))
    return out


def _dump(obj, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


def hf_config(c, eos_ids: list[int]) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": c.bos_token_id,
        "eos_token_id": eos_ids,
        "head_dim": c.head_dim,
        "hidden_act": "silu",
        "hidden_size": c.hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": c.intermediate_size,
        "max_position_embeddings": c.max_position_embeddings,
        "mlp_bias": False,
        "num_attention_heads": c.num_attention_heads,
        "num_hidden_layers": c.num_hidden_layers,
        "num_key_value_heads": c.num_key_value_heads,
        "pretraining_tp": 1,
        "rms_norm_eps": c.rms_norm_eps,
        "rope_scaling": None,
        "rope_theta": c.rope_theta,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": c.vocab_size,
    }


def export_model(out_dir: str, model, tokenizer_json: dict, tokenizer_config: dict, eos_ids: list[int],
                 dtype: str = "F32", extra_files: dict | None = None):
    os.makedirs(out_dir, exist_ok=True)
    c = model.c
    _dump(hf_config(c, eos_ids), os.path.join(out_dir, "config.json"))
    _dump({"bos_token_id": c.bos_token_id, "eos_token_id": eos_ids, "do_sample": False,
           "max_new_tokens": 64}, os.path.join(out_dir, "generation_config.json"))
    write_safetensors(os.path.join(out_dir, "model.safetensors"), model.hf_state(), dtype, {"format": "pt"})
    _dump(tokenizer_json, os.path.join(out_dir, "tokenizer.json"))
    _dump(tokenizer_config, os.path.join(out_dir, "tokenizer_config.json"))
    for name, obj in (extra_files or {}).items():
        _dump(obj, os.path.join(out_dir, name))


def export_lora(out_dir: str, model, r: int, alpha: int, base_name: str, dtype: str = "F32",
                extra_files: dict | None = None):
    os.makedirs(out_dir, exist_ok=True)
    _dump({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_name,
        "r": r,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "use_rslora": False,
        "use_dora": False,
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": True,
        "inference_mode": True,
        "modules_to_save": None,
        "target_modules": ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"],
    }, os.path.join(out_dir, "adapter_config.json"))
    write_safetensors(os.path.join(out_dir, "adapter_model.safetensors"), model.lora_state(), dtype, {"format": "pt"})
    for name, obj in (extra_files or {}).items():
        _dump(obj, os.path.join(out_dir, name))
