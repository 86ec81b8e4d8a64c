"""DLP scanner: `scan_sensitive` and `redact_sensitive` on strings and argument sets.

Run: .venv/bin/python bench/bench_dlp.py

Cases (text is deterministic pseudo-random, seeded):
- `prose N`: one string of N characters of mail-like prose with a few numbers and
  no findings: the common case of an argument or output that is clean.
- `dense N`: N characters of log-like text where every few words carry digits,
  dates, amounts, an email and a card: every digit-triggered detector runs over
  all of it.
- `args 10 KB`: a tool-call argument set of ~10 KB (recipient list, subject, body,
  metadata) with one email and one IBAN in it.
- `redact args 10 KB`: the same, redacted (rescan of redacted strings included).
- `obfuscated 10 KB`: prose with zero-width characters and fullwidth digits, so every
  string takes the folding path with its offset map.
Writes bench/results/dlp.json.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, table, write_results

from warrant.scanners import redact_sensitive, scan_sensitive

WORDS = ["the", "quarterly", "report", "is", "attached", "please", "review", "before", "we",
         "send", "it", "to", "finance", "on", "Friday", "thanks", "regards", "team", "order",
         "invoice", "3", "items", "shipped", "via", "https://example.com/orders?id=42&x=1"]
DENSE = ["2024-01-15", "10:30:45", "EUR", "1,234.56", "id=8812734", "status=200", "GET",
         "/api/v1/items/123456", "user", "jane@example.com", "4111 1111 1111 1111", "ok"]


def text(size: int, words: list[str], seed: int = 1) -> str:
    rng = random.Random(seed)
    out: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(words)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)[:size]


def arguments() -> dict[str, Any]:
    return {
        "to": [f"team-{i}@example.invalid" for i in range(3)] + ["jane.doe@example.com"],
        "subject": "Quarterly report",
        "body": text(9_000, WORDS) + " Pay to DE89 3704 0044 0532 0130 00.",
        "metadata": {"priority": 2, "labels": ["finance", "q3"], "draft": False},
    }


def bound(fn: Callable[[Any], object], value: Any) -> Callable[[], object]:
    return lambda: fn(value)


def main() -> None:
    cases: list[tuple[str, Callable[[Any], object], Any, int]] = []
    for size, label in ((1_000, "1 KB"), (10_000, "10 KB"), (1_000_000, "1 MB")):
        n = 2_000 if size < 1_000_000 else 20
        prose, dense = text(size, WORDS), text(size, DENSE)
        cases += [(f"prose {label}", scan_sensitive, prose, n),
                  (f"dense {label}", scan_sensitive, dense, n)]
    args = arguments()
    obfuscated = text(10_000, WORDS).replace("e", "e\u200b").replace("3", "\uff13")
    cases += [("args 10 KB", scan_sensitive, args, 2_000),
              ("redact args 10 KB", redact_sensitive, args, 2_000),
              ("obfuscated 10 KB", scan_sensitive, obfuscated, 2_000)]
    assert scan_sensitive(args).kinds == {"pii.email", "pii.iban"}
    assert scan_sensitive(text(10_000, WORDS)).findings == ()

    rows = [(name, measure(bound(fn, value), n=n, warmup=max(2, n // 10)))
            for name, fn, value, n in cases]
    print(table(rows))
    out = write_results("dlp", {"benchmark": "dlp", "cases": dict(rows)})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
