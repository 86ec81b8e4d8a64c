"""The lexical channel of the injection classifier: hashed n-grams into a linear model.

Word unigrams and bigrams and character 3- to 5-grams of the lowercased,
whitespace-collapsed text are hashed into `2**bits` buckets, weighted
`log(1 + count)`, L2-normalised and scored by a logistic regression
(`data/injection_lexical.npz`, written by `scripts/train_injection_head.py`).

Hashing is a polynomial hash of code points modulo 2**64 followed by the
splitmix64 finaliser, computed for every n-gram at once in numpy from prefix
sums. Python's `hash()` is salted per process and would give every process
different buckets.

INVARIANT: a text's buckets depend on its code points only: the same in every
process, on every platform, for every run.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

#: Characters of a text that are looked at; the detector's segments are far shorter.
MAX_CHARS = 4096
CHAR_NGRAMS = (3, 4, 5)
_P = 0x100000001B3  # the 64-bit FNV prime: odd, so invertible modulo 2**64
_MASK = (1 << 64) - 1
_POWERS = np.cumprod(np.full(MAX_CHARS + 3, _P, np.uint64), dtype=np.uint64)
_POWERS = np.concatenate([np.ones(1, np.uint64), _POWERS])  # _POWERS[i] = P**i
_INVERSE = pow(_P, -1, 1 << 64)
# _DOWN[i] = P**-(i + 1): prefix sums of c[k] * P**-(k + 1) give every substring hash.
_DOWN = np.cumprod(np.full(MAX_CHARS + 3, _INVERSE, np.uint64), dtype=np.uint64)
#: One salt per kind of feature, so a word and a 4-gram of the same letters differ.
_SALT = {"word": 0x9E3779B97F4A7C15, "bigram": 0xD1B54A32D192ED03,
         **{f"char{n}": (0x8CB92BA72F3D8DD7 * n) & _MASK for n in CHAR_NGRAMS}}
_NON_WORD = re.compile(r"[\W_]+")

Array = npt.NDArray[np.float32]
Index = npt.NDArray[np.int64]
Hashes = npt.NDArray[np.uint64]


def _mix(h: Hashes) -> Hashes:
    """The splitmix64 finaliser: every input bit reaches every output bit."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    result: Hashes = h ^ (h >> np.uint64(31))
    return result


def _prefix(text: str) -> Hashes:
    """prefix[i] = hash of text[:i]; hash of text[i:j] = prefix[j] - prefix[i] * P**(j - i)."""
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), "<u4").astype(np.uint64)
    scaled = np.cumsum(points * _DOWN[: len(points)], dtype=np.uint64)
    prefix = np.zeros(len(points) + 1, np.uint64)
    prefix[1:] = scaled * _POWERS[1 : len(points) + 1]
    return prefix


def _spans(prefix: Hashes, start: npt.NDArray[np.intp], end: npt.NDArray[np.intp]) -> Hashes:
    result: Hashes = prefix[end] - prefix[start] * _POWERS[end - start]
    return result


def _bucket(h: Hashes, kind: str, bits: int) -> Index:
    return (_mix(h + np.uint64(_SALT[kind])) >> np.uint64(64 - bits)).astype(np.int64)


def features(text: str, bits: int) -> tuple[Index, Array]:
    """Sorted distinct buckets of `text` and their L2-normalised `log(1 + count)` weights."""
    if not 1 <= bits <= 32:
        raise ValueError(f"buckets must be 2**1..2**32, not 2**`{bits}`")
    lower = " ".join(text[:MAX_CHARS].lower().split())
    found: list[Index] = []
    chars = _prefix(f" {lower} ")
    for n in CHAR_NGRAMS:
        if (count := len(chars) - n) > 0:
            start = np.arange(count)
            found.append(_bucket(_spans(chars, start, start + n), f"char{n}", bits))
    words_text = f" {_NON_WORD.sub(' ', lower)} "
    words = _prefix(words_text)
    space = np.frombuffer(words_text.encode("utf-32-le", "surrogatepass"), "<u4") == 32
    starts = np.flatnonzero(space[:-1] & ~space[1:]) + 1
    ends = np.flatnonzero(~space[:-1] & space[1:]) + 1
    if len(starts):
        hashes = _spans(words, starts, ends)
        found.append(_bucket(hashes, "word", bits))
        if len(hashes) > 1:
            found.append(_bucket(_mix(hashes[:-1]) * np.uint64(_P) + hashes[1:], "bigram", bits))
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    buckets, counts = np.unique(np.concatenate(found), return_counts=True)
    weights = np.log1p(counts).astype(np.float32)
    weights /= np.float32(np.linalg.norm(weights))
    return buckets, weights


@dataclass(frozen=True, slots=True)
class LexicalModel:
    """`logit = bias + features(text) . weights`, plus how it is combined with the head.

    The classifier's score is `sigmoid(mix * head_logit + (1 - mix) * logit)`,
    flagged at `threshold` (chosen at 1% FPR on validation data).
    """

    weights: Array
    bias: float
    #: Weight of the embedding head's logit in the combined logit (0..1).
    mix: float
    threshold: float

    def __post_init__(self) -> None:
        size = len(self.weights)
        if self.weights.ndim != 1 or size < 2 or size & (size - 1):
            raise ValueError("the lexical model's weights must be one vector of 2**bits values")
        if not (np.isfinite(self.weights).all() and np.isfinite(self.bias)
                and 0.0 <= self.mix <= 1.0 and 0.0 <= self.threshold <= 1.0):
            raise ValueError("the lexical model's parameters are not finite or out of range")

    @property
    def bits(self) -> int:
        return len(self.weights).bit_length() - 1

    def logits(self, texts: list[str]) -> Array:
        out = np.empty(len(texts), np.float32)
        for i, text in enumerate(texts):
            buckets, weights = features(text, self.bits)
            out[i] = self.bias + float(self.weights[buckets] @ weights)
        return out

    def save(self, path: Path) -> None:
        np.savez_compressed(path, weights=self.weights.astype(np.float16),
                            bias=np.float32(self.bias), mix=np.float32(self.mix),
                            threshold=np.float32(self.threshold))

    @classmethod
    def load(cls, path: Path | Any) -> LexicalModel:
        """Raises `ValueError` (or `OSError`) when the file is not a valid model."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(weights=data["weights"].astype(np.float32), bias=float(data["bias"]),
                           mix=float(data["mix"]), threshold=float(data["threshold"]))
        except (KeyError, EOFError, TypeError, ValueError, zipfile.BadZipFile) as error:
            raise ValueError(f"the lexical model file is not valid: {error}") from error
