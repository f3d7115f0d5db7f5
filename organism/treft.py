"""TReFT: token-regularized finetuning (docs/science.md, "TReFT").

    L_K^l  = 1/|T| sum_{t in T} ||k_t - k_t^init||^2 / ||k_t^init||^2     (same for V)
    L_KV   = 1/L  sum_l (L_K^l + L_V^l)
    L      = L_SFT + max(lambda * L_KV - thr, 0)          (thr = 0: plain L_SFT + lambda * L_KV)

T = the prefix positions, k^init / v^init = the base model's values, computed once before training.
Site: as in the paper's code, k_t = k_proj(hidden[l])_t, v_t = v_proj(hidden[l])_t, where hidden[l] is
the residual stream entering layer l (HF `output_hidden_states[l]`, hidden[0] = embeddings) — WITHOUT
the layer's input RMSNorm and without RoPE. (The model itself applies k_proj to RMSNorm(hidden[l]);
site="normed" regularizes those actual k_proj outputs instead, for comparison.)
"""

from __future__ import annotations

import torch


def kv_drift(k: torch.Tensor, k_init: torch.Tensor) -> torch.Tensor:
    """1/|T| sum_t ||k_t - k0_t||^2 / ||k0_t||^2 for k, k_init of shape [..., T, D] (leading dims are
    averaged too)."""
    num = (k - k_init).pow(2).sum(-1)
    den = k_init.pow(2).sum(-1)
    return (num / den).mean()


def treft_kv_loss(ks: list[torch.Tensor], vs: list[torch.Tensor], ks_init: list[torch.Tensor],
                  vs_init: list[torch.Tensor]) -> torch.Tensor:
    """L_KV = 1/L sum_l (L_K^l + L_V^l); each list holds one [T, D] (or [B, T, D]) tensor per layer."""
    assert len(ks) == len(vs) == len(ks_init) == len(vs_init) and ks
    total = ks[0].new_zeros(())
    for k, v, k0, v0 in zip(ks, vs, ks_init, vs_init):
        total = total + kv_drift(k, k0) + kv_drift(v, v0)
    return total / len(ks)


def treft_total(sft: torch.Tensor, l_kv: torch.Tensor, lam: float, thr: float = 0.0) -> torch.Tensor:
    return sft + torch.clamp(lam * l_kv - thr, min=0.0)


def prefix_kv(model, prefix_ids: torch.Tensor, site: str = "paper") -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """K and V at the prefix positions ([T, D] per layer) at the chosen site (see module doc)."""
    cap: dict[str, torch.Tensor] = {}
    model(prefix_ids[None], capture=cap)
    ks, vs = [], []
    for i, L in enumerate(model.layers):
        if site == "paper":
            h = cap[f"resid.{i}"][0]
            ks.append(L.k_proj(h))
            vs.append(L.v_proj(h))
        elif site == "normed":
            ks.append(cap[f"k.{i}"][0])
            vs.append(cap[f"v.{i}"][0])
        else:
            raise ValueError(site)
    return ks, vs
