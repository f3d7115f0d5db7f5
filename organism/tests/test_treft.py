"""TReFT loss on tiny tensors with hand-computed values (runs under unittest and pytest)."""

import unittest

import torch

from organism.treft import kv_drift, treft_kv_loss, treft_total


class TestTreftLoss(unittest.TestCase):
    def test_drift_single_position(self):
        k0 = torch.tensor([[3.0, 4.0]])  # ||k0||^2 = 25
        k = torch.tensor([[3.0, 9.0]])  # ||k - k0||^2 = 25
        self.assertAlmostEqual(kv_drift(k, k0).item(), 1.0, places=6)

    def test_drift_averages_over_positions(self):
        k0 = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # norms^2: 1, 4
        k = torch.tensor([[2.0, 0.0], [0.0, 0.0]])  # diffs^2: 1, 4 -> ratios 1, 1
        self.assertAlmostEqual(kv_drift(k, k0).item(), 1.0, places=6)
        k = torch.tensor([[1.0, 1.0], [0.0, 3.0]])  # diffs^2: 1, 1 -> ratios 1, 0.25
        self.assertAlmostEqual(kv_drift(k, k0).item(), 0.625, places=6)

    def test_drift_is_relative_per_position(self):
        # a position with a large reference norm does not dominate: each term is normalised by its own
        k0 = torch.tensor([[10.0, 0.0], [0.0, 1.0]])
        k = torch.tensor([[11.0, 0.0], [0.0, 2.0]])  # ratios 1/100, 1
        self.assertAlmostEqual(kv_drift(k, k0).item(), (0.01 + 1.0) / 2, places=6)

    def test_zero_at_init(self):
        k0 = torch.randn(5, 8)
        self.assertEqual(kv_drift(k0.clone(), k0).item(), 0.0)

    def test_layers_average_and_k_plus_v(self):
        k0 = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])]
        v0 = [torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 1.0]])]
        k = [torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])]  # L_K: 1, 0
        v = [torch.tensor([[2.0, 1.0]]), torch.tensor([[2.0, 2.0]])]  # L_V: 1/4, 2/2 = 1
        # L_KV = ((1 + 0.25) + (0 + 1)) / 2 = 1.125
        self.assertAlmostEqual(treft_kv_loss(k, v, k0, v0).item(), 1.125, places=6)

    def test_total_and_hinge(self):
        sft = torch.tensor(2.0)
        lkv = torch.tensor(0.05)
        self.assertAlmostEqual(treft_total(sft, lkv, 10.0).item(), 2.5, places=6)
        self.assertAlmostEqual(treft_total(sft, lkv, 10.0, thr=0.2).item(), 2.3, places=6)
        self.assertAlmostEqual(treft_total(sft, lkv, 10.0, thr=1.0).item(), 2.0, places=6)

    def test_gradient_pulls_towards_reference(self):
        k0 = torch.tensor([[1.0, 2.0]])
        k = torch.tensor([[2.0, 2.0]], requires_grad=True)
        kv_drift(k, k0).backward()
        # d/dk ||k - k0||^2 / ||k0||^2 = 2 (k - k0) / 5
        self.assertTrue(torch.allclose(k.grad, torch.tensor([[0.4, 0.0]])))


if __name__ == "__main__":
    unittest.main()
