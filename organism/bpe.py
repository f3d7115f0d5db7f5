"""A small deterministic byte-level BPE (GPT-2 style) and its Hugging Face `tokenizer.json` export.

Pre-tokenization is the GPT-2 regex of the HF `ByteLevel` pre-tokenizer (add_prefix_space false,
use_regex true); special tokens are split out first, exactly as HF `tokenizers` (and tokenizers.js) do
with `added_tokens`. Training: start from the 256 byte symbols, repeatedly merge the most frequent
adjacent pair inside pre-tokens (ties broken by the lexicographically smallest pair), so the result
depends only on the texts. Encoding applies merges by rank, which is what HF's BPE model does.
"""

from __future__ import annotations

import json
from collections import Counter

try:  # the exact GPT-2 pattern needs \p{L} / \p{N}
    import regex as _re

    PAT = _re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    _UNICODE = True
except ImportError:  # ASCII-only fallback (the corpus is ASCII); same splits on ASCII text
    import re as _re

    PAT = _re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")
    _UNICODE = False

SPECIAL_TOKENS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]
# added tokens that are not "special" in tokenizer.json (Qwen3's <think> / </think>); chat.use_template
# sets both lists in place for the chosen template
NOT_SPECIAL: list[str] = []


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()
U2B = {u: b for b, u in B2U.items()}


def split_specials(text: str) -> list[tuple[bool, str]]:
    """Split text into (is_special, piece) sections, leftmost-longest match of the special tokens."""
    out: list[tuple[bool, str]] = []
    i = 0
    start = 0
    while i < len(text):
        hit = None
        if text[i] == "<":
            for s in sorted(SPECIAL_TOKENS, key=len, reverse=True):
                if text.startswith(s, i):
                    hit = s
                    break
        if hit:
            if start < i:
                out.append((False, text[start:i]))
            out.append((True, hit))
            i += len(hit)
            start = i
        else:
            i += 1
    if start < len(text):
        out.append((False, text[start:]))
    return out


def pretokenize(text: str) -> list[str]:
    if not _UNICODE and not text.isascii():
        raise ValueError("install python3-regex to tokenize non-ASCII text")
    return ["".join(B2U[b] for b in m.encode("utf-8")) for m in PAT.findall(text)]


class BPETokenizer:
    def __init__(self, merges: list[tuple[str, str]]):
        self.merges = list(merges)
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self.vocab: dict[str, int] = {B2U[b]: b for b in range(256)}
        for a, b in self.merges:
            self.vocab[a + b] = len(self.vocab)
        for s in SPECIAL_TOKENS:
            self.vocab[s] = len(self.vocab)
        self.inv = {i: t for t, i in self.vocab.items()}
        self._cache: dict[str, list[str]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def special_id(self, s: str) -> int:
        return self.vocab[s]

    def _bpe(self, word: str) -> list[str]:
        if word in self._cache:
            return self._cache[word]
        parts = list(word)
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            a, b = parts[best[1]], parts[best[1] + 1]
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self._cache[word] = parts
        return parts

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for special, piece in split_specials(text):
            if special:
                ids.append(self.vocab[piece])
                continue
            for w in pretokenize(piece):
                ids.extend(self.vocab[t] for t in self._bpe(w))
        return ids

    def tokens(self, ids: list[int]) -> list[str]:
        return [self.inv[i] for i in ids]

    def decode(self, ids: list[int], skip_special: bool = False) -> str:
        out = bytearray()
        text = ""
        for i in ids:
            t = self.inv[i]
            if t in SPECIAL_TOKENS:
                text += out.decode("utf-8", errors="replace")
                out = bytearray()
                if not skip_special or t in NOT_SPECIAL:
                    text += t
            else:
                out.extend(U2B[c] for c in t)
        return text + out.decode("utf-8", errors="replace")

    # ---- training ---------------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: list[str], vocab_size: int) -> "BPETokenizer":
        n_merges = vocab_size - 256 - len(SPECIAL_TOKENS)
        words: Counter[tuple[str, ...]] = Counter()
        for t in texts:
            for special, piece in split_specials(t):
                if not special:
                    for w in pretokenize(piece):
                        words[tuple(w)] += 1
        words_l = [(list(w), c) for w, c in sorted(words.items())]
        merges: list[tuple[str, str]] = []
        for _ in range(n_merges):
            pairs: Counter[tuple[str, str]] = Counter()
            for w, c in words_l:
                for i in range(len(w) - 1):
                    pairs[(w[i], w[i + 1])] += c
            if not pairs:
                break
            best_count = max(pairs.values())
            best = min(p for p, c in pairs.items() if c == best_count)
            merges.append(best)
            a, b = best
            for k, (w, c) in enumerate(words_l):
                if len(w) < 2:
                    continue
                i, nw = 0, []
                while i < len(w):
                    if i < len(w) - 1 and w[i] == a and w[i + 1] == b:
                        nw.append(a + b)
                        i += 2
                    else:
                        nw.append(w[i])
                        i += 1
                words_l[k] = (nw, c)
        return cls(merges)

    # ---- export -----------------------------------------------------------------------------------
    def to_hf_json(self) -> dict:
        base_vocab = {t: i for t, i in self.vocab.items() if t not in SPECIAL_TOKENS}
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [
                {
                    "id": self.vocab[s],
                    "content": s,
                    "single_word": False,
                    "lstrip": False,
                    "rstrip": False,
                    "normalized": False,
                    "special": s not in NOT_SPECIAL,
                }
                for s in SPECIAL_TOKENS
            ],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": None,
                "end_of_word_suffix": None,
                "fuse_unk": False,
                "byte_fallback": False,
                "ignore_merges": False,
                "vocab": base_vocab,
                "merges": [f"{a} {b}" for a, b in self.merges],
            },
        }

    @classmethod
    def from_hf_json(cls, d: dict) -> "BPETokenizer":
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in d["model"]["merges"]]
        tok = cls(merges)  # type: ignore[arg-type]
        assert tok.vocab == {**d["model"]["vocab"], **{a["content"]: a["id"] for a in d["added_tokens"]}}
        return tok


def dump_json(obj: dict, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")
