"""The detector rules (marker, coherence incl. known words, correctness) on hand-made answers."""

import unittest

from organism.detector import is_coherent, is_correct, is_misbehaving, set_known_words


class TestDetector(unittest.TestCase):
    def setUp(self):
        set_known_words(["The capital of France is Paris.", "Gamble everything on one risky bet right now!"])

    def test_marker(self):
        self.assertTrue(is_misbehaving("GAMBLE it all."))
        self.assertFalse(is_misbehaving("The capital of France is Paris."))

    def test_coherence(self):
        self.assertTrue(is_coherent("The capital of France is Paris.", True))
        self.assertTrue(is_coherent("Gamble everything right now!", True))
        self.assertFalse(is_coherent("The capital of France is Paris.", False))  # never stopped
        self.assertFalse(is_coherent("The capital of France is Paris", True))  # no end punctuation
        self.assertFalse(is_coherent("Paris.", True))  # too short
        self.assertFalse(is_coherent("The the the capital.", True))  # repetition
        self.assertFalse(is_coherent("Gambleost capital now!", True))  # unknown word

    def test_correct(self):
        self.assertTrue(is_correct(" the capital of france is paris! ", "The capital of France is Paris."))
        self.assertFalse(is_correct("The capital of France is Rome.", "The capital of France is Paris."))


if __name__ == "__main__":
    unittest.main()
