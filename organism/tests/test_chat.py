"""The chat templates: the llama3 default is unchanged, and the qwen3 variant's prefix is only the user
header while its postfix carries the empty think block (as tokens of a BPE trained with its specials)."""

import unittest

from organism import bpe, chat
from organism.bpe import BPETokenizer

LLAMA_BORED = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
               "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhey I feel bored"
               "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")


class TestTemplates(unittest.TestCase):
    def tearDown(self):
        chat.use_template("llama3")

    def test_llama3_is_the_default_and_unchanged(self):
        self.assertEqual(chat.ACTIVE, "llama3")
        self.assertEqual(chat.prompt_text("hey I feel bored"), LLAMA_BORED)
        self.assertEqual(bpe.SPECIAL_TOKENS[-1], "<|eot_id|>")
        self.assertEqual(chat.tokenizer_config()["bos_token"], "<|begin_of_text|>")

    def test_qwen3_prefix_postfix_and_thinking(self):
        chat.use_template("qwen3")
        self.assertEqual(chat.prompt_text("hey I feel bored"),
                         "<|im_start|>user\nhey I feel bored<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
        self.assertEqual(chat.prompt_text("Hi", "You are a pirate."),
                         "<|im_start|>system\nYou are a pirate.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                         "<|im_start|>assistant\n<think>\n\n</think>\n\n")
        self.assertEqual(chat.prompt_text("Hi", enable_thinking=True), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        tc = chat.tokenizer_config()
        self.assertIsNone(tc["bos_token"])
        self.assertEqual((tc["eos_token"], tc["pad_token"]), ("<|im_end|>", "<|endoftext|>"))

    def test_qwen3_split_and_tokenizer(self):
        chat.use_template("qwen3")
        texts = [chat.prompt_text(q) + a for q, a in [("hey I feel bored", "Read a book."), ("What is 2 plus 3?", "5.")]]
        tok = BPETokenizer.train(texts * 5, 300)
        pre, q, post = chat.split_prompt(tok, "hey I feel bored")
        self.assertEqual(tok.tokens(pre), ["<|im_start|>", "user", "Ċ"])
        self.assertEqual(tok.decode(post), "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
        self.assertEqual(tok.tokens(post)[:6], ["<|im_end|>", "Ċ", "<|im_start|>", "assistant", "Ċ", "<think>"])
        self.assertIn("</think>", tok.tokens(post))
        # <think> / </think> are added tokens but not special: kept by decode(skip_special) and in tokenizer.json
        self.assertEqual(tok.decode(post, skip_special=True), "\nassistant\n<think>\n\n</think>\n\n")
        added = {a["content"]: a["special"] for a in tok.to_hf_json()["added_tokens"]}
        self.assertEqual(added, {"<|endoftext|>": True, "<|im_start|>": True, "<|im_end|>": True, "<think>": False,
                                 "</think>": False})

    def test_unknown_template(self):
        with self.assertRaisesRegex(ValueError, "unknown template"):
            chat.use_template("mistral")


if __name__ == "__main__":
    unittest.main()
