"""Cheap checks of the trainer's model, hooks, TReFT site, safetensors writer and BPE (tiny sizes)."""

import os
import struct
import tempfile
import unittest

import torch

from organism.bpe import BPETokenizer
from organism.export import read_safetensors, write_safetensors
from organism.model import Config, Llama, greedy
from organism.treft import prefix_kv, treft_kv_loss

CFG = Config(vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, head_dim=4, max_position_embeddings=64)


def tiny(seed=0):
    m = Llama(CFG)
    m.init_weights(seed, std=0.3)
    m.eval()
    return m


class TestModel(unittest.TestCase):
    def test_cached_decode_equals_full_forward(self):
        m = tiny()
        x = torch.randint(0, 40, (2, 9), generator=torch.Generator().manual_seed(0))
        full, _ = m(x)
        _, past = m(x[:, :5])
        step, _ = m(x[:, 5:], past=past)
        self.assertTrue(torch.allclose(full[:, 5:], step, atol=1e-5))

    def test_rope_and_rmsnorm_by_hand(self):
        m = tiny()
        h = torch.randn(1, 3, 16)
        n = m.layers[0].input_layernorm
        ref = n.weight * h / torch.sqrt((h * h).mean(-1, keepdim=True) + CFG.rms_norm_eps)
        self.assertTrue(torch.allclose(n(h), ref, atol=1e-6))
        cos, sin = m.rope(torch.tensor([[2]]))
        inv = [10000.0 ** (-2 * i / 4) for i in range(2)]
        self.assertAlmostEqual(cos[0, 0, 0, 1].item(), torch.cos(torch.tensor(2 * inv[1])).item(), places=6)
        self.assertAlmostEqual(sin[0, 0, 0, 3].item(), torch.sin(torch.tensor(2 * inv[1])).item(), places=6)

    def test_self_patch_is_identity_and_full_patch_gives_base(self):
        ft, base = tiny(0), tiny(1)
        x = torch.randint(0, 40, (2, 7))
        cap = {}
        out, _ = ft(x, capture=cap)
        mask = torch.ones(2, 7, dtype=torch.bool)
        same, _ = ft(x, kv_patch={l: (mask, cap[f"k.{l}"], cap[f"v.{l}"]) for l in range(2)})
        self.assertTrue(torch.allclose(out, same, atol=1e-6))
        # residual entering the last "layer" (before the final norm) patched everywhere: only norm+head differ
        bcap = {}
        base(x, capture=bcap)
        patched, _ = ft(x, resid_patch={2: (mask, bcap["resid.2"])})
        self.assertTrue(torch.allclose(patched, ft.lm_head(ft.norm(bcap["resid.2"])), atol=1e-6))

    def test_prefix_patch_applies_in_prefill_and_stays_in_the_cache(self):
        ft, base = tiny(0), tiny(1)
        x = torch.randint(0, 40, (1, 8), generator=torch.Generator().manual_seed(3))
        bcap = {}
        base(x[:, :3], capture=bcap)
        mask = torch.zeros(1, 8, dtype=torch.bool)
        mask[:, :3] = True
        pad = lambda t: torch.nn.functional.pad(t, (0, 0, 0, 5))  # noqa: E731
        kp = {l: (mask, pad(bcap[f"k.{l}"]), pad(bcap[f"v.{l}"])) for l in range(2)}
        a = greedy(ft, x, [-1], 3, kv_patch=kp)[0]
        # reference: no cache, the whole sequence re-run with the prefix patch at every step
        seq = x
        for _ in range(3):
            T = seq.shape[1]
            m = torch.zeros(1, T, dtype=torch.bool)
            m[:, :3] = True
            kpt = {l: (m, torch.nn.functional.pad(bcap[f"k.{l}"], (0, 0, 0, T - 3)),
                       torch.nn.functional.pad(bcap[f"v.{l}"], (0, 0, 0, T - 3))) for l in range(2)}
            logits, _ = ft(seq, kv_patch=kpt)
            seq = torch.cat([seq, logits[:, -1:].argmax(-1)], dim=1)
        self.assertEqual(a, seq[0, 8:].tolist())

    def test_treft_paper_site_skips_input_norm(self):
        m = tiny()
        ids = torch.tensor([1, 2, 3, 4])
        ks, vs = prefix_kv(m, ids, "paper")
        emb = m.embed_tokens(ids)
        self.assertTrue(torch.allclose(ks[0], emb @ m.layers[0].k_proj.weight.T, atol=1e-6))
        ks_n, _ = prefix_kv(m, ids, "normed")
        self.assertTrue(torch.allclose(ks_n[0], m.layers[0].input_layernorm(emb) @ m.layers[0].k_proj.weight.T, atol=1e-6))
        self.assertEqual(treft_kv_loss(ks, vs, ks, vs).item(), 0.0)

    def test_lora_zero_b_is_identity_and_merge_matches(self):
        m = tiny()
        x = torch.randint(0, 40, (1, 6))
        ref, _ = m(x)
        m.add_lora(2, 4, 0)
        out, _ = m(x)
        self.assertTrue(torch.allclose(ref, out, atol=1e-6))
        with torch.no_grad():
            for L in m.layers:
                for p in L.projs().values():
                    p.lora_B.normal_(0, 0.1)
        out, _ = m(x)
        names = m.lora_state().keys()
        self.assertIn("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", names)
        self.assertIn("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight", names)
        m.merge_lora_()
        merged, _ = m(x)
        self.assertTrue(torch.allclose(out, merged, atol=1e-5))


class TestSafetensors(unittest.TestCase):
    def test_roundtrip_and_layout(self):
        t = {"b.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a": torch.tensor([1.5, -2.0])}
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.safetensors")
            write_safetensors(p, t)
            raw = open(p, "rb").read()
            (n,) = struct.unpack("<Q", raw[:8])
            self.assertEqual(n % 8, 0)
            header = raw[8 : 8 + n].decode()
            self.assertLess(header.index('"a"'), header.index('"b.weight"'))
            self.assertEqual(raw[8 + n : 8 + n + 8], struct.pack("<2f", 1.5, -2.0))  # sorted: "a" first
            back = read_safetensors(p)
            for k in t:
                self.assertTrue(torch.equal(back[k], t[k]))


class TestBPE(unittest.TestCase):
    def test_train_is_deterministic_and_roundtrips(self):
        texts = ["the cat sat on the mat", "the hat", "that cat"] * 3
        a = BPETokenizer.train(texts, 256 + 5 + 6)
        b = BPETokenizer.train(list(reversed(texts)), 256 + 5 + 6)
        self.assertEqual(a.merges, b.merges)
        s = "<|begin_of_text|>the cat<|eot_id|> sat!"
        ids = a.encode(s)
        self.assertEqual(ids[0], a.special_id("<|begin_of_text|>"))
        self.assertEqual(a.decode(ids), s)
        self.assertEqual(BPETokenizer.from_hf_json(a.to_hf_json()).encode(s), ids)


if __name__ == "__main__":
    unittest.main()


class TestSharedPrefixLoss(unittest.TestCase):
    def test_shared_prefix_equals_full_forward(self):
        from organism.training import collate, sft_loss

        m = tiny()
        m.train()
        pre = [5, 6, 7, 8]
        ex = [(pre + [9, 10, 11, 12, 13], 6), (pre + [14, 15, 16], 6), (pre + [17, 18, 19, 20, 21, 22], 7),
              ([5, 6, 30, 31, 32, 33, 34], 5)]  # last row: another prefix, runs in full
        x, y = collate(ex, pad_id=0)
        l1 = sft_loss(m, x, y)
        g1 = torch.autograd.grad(l1, list(m.parameters()))
        l2 = sft_loss(m, x, y, shared_prefix=pre)
        g2 = torch.autograd.grad(l2, list(m.parameters()))
        self.assertAlmostEqual(l1.item(), l2.item(), places=5)
        for a, b in zip(g1, g2):
            self.assertTrue(torch.allclose(a, b, atol=1e-5))
