"""Memory guard: verified read and signed write vs. the unguarded SQLite store, in one run.

Run: .venv/bin/python bench/bench_memory.py

Cases, same machine, same process, same SQLite schema and settings (WAL,
synchronous=NORMAL; the audit log unsynced, as in bench_decision's session case):
- `unguarded write` / `unguarded read`: `SqliteMemoryStore` alone — insert a row /
  load the newest row and parse its JSON; no policy, signing, log or verification.
- `signed write (guard)`: `GuardedMemory.put` — policy (memoised per hour), secret
  check, canonical payload, Ed25519 signature, digest appended to the audit log,
  row inserted.
- `verified read (guard)`: `GuardedMemory.get` — agent status, policy (memoised per
  hour), row load, payload digest recomputed from the row, signature checked
  (Ed25519, memoised per (signature, digest)), digest compared with the audit log's
  entry for that version (memoised per seq: log records are immutable).
- `verified read, cold (no memo)`: the same with every memo cleared before each
  call: a Cedar evaluation, an Ed25519 verify and an audit-record parse per read.
Writes bench/results/memory.json.
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, table, write_results

from warrant.enforce import TrustDomain
from warrant.enforce._memory import GuardedMemory
from warrant.memory import SqliteMemoryStore
from warrant.memory._store import StoredRow

CONTENT = {"customer": "ACME GmbH", "preference": "email on Tuesdays", "open_invoices": [42, 43]}


def open_domain(home: Path) -> TrustDomain:
    domain = TrustDomain.init(home, "bench.example", settings={"audit_durability": "normal"})
    domain.register_agent("helper", owner="ops", purpose="remembers things")
    return domain


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        domain = open_domain(Path(tmp) / "home")
        guarded = GuardedMemory(domain)
        plain = SqliteMemoryStore(Path(tmp) / "plain.db")
        text = json.dumps(CONTENT)
        counter = itertools.count()

        def plain_write() -> object:
            key = f"k{next(counter) % 500}"
            return plain.insert_next("agent:helper", key, lambda v: StoredRow(
                "agent:helper", key, v, text, "{}", 0.0, False, None, "", b"", "", 0, "ok", 0.0))

        def plain_read() -> object:
            row = plain.latest("agent:helper", "k7")
            assert row is not None
            assert row.content is not None
            return json.loads(row.content)

        def signed_write() -> object:
            return guarded.put("helper", "agent:helper", f"k{next(counter) % 500}", CONTENT)

        def verified_read() -> object:
            return guarded.get("helper", "agent:helper", "k7")

        # Bench-only peeks at the memos, to time a cold read (first sight of a version).
        memos = (guarded._authz._memo, guarded._log._memo,  # type: ignore[attr-defined]
                 guarded._verified)

        def verified_read_cold() -> object:
            for memo in memos:
                memo.clear()
            return guarded.get("helper", "agent:helper", "k7")

        rows = [
            ("unguarded write", measure(plain_write, n=5_000, warmup=500)),
            ("signed write (guard)", measure(signed_write, n=5_000, warmup=500)),
            ("unguarded read", measure(plain_read, n=20_000)),
            ("verified read (guard)", measure(verified_read, n=20_000)),
            ("verified read, cold (no memo)", measure(verified_read_cold, n=5_000)),
        ]
        guarded.close()
        plain.close()
        domain.close()
    print(table(rows))
    path = write_results("memory", dict(rows))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
