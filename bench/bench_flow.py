"""Cost of the data-flow stage: labels + ledger trace per call, by session size.

Run: .venv/bin/python bench/bench_flow.py

Target (issue 4): <= 200 µs p50 added per call for a session that has seen
1 MB of untrusted content, measured against the same pipeline without the flow
stage, in the same run. Cases:
- `trace only`: `Ledger.trace` of a typical sink call (address + a 40-word body)
  after the session observed N bytes of untrusted tool output (emails, pages,
  records with addresses and IBANs) — the stage's own work.
- `decision with flow` / `decision without flow`: the full in-process pipeline
  (session path, unsynced audit) with and without the `TraceDataFlow` stage, on
  a session that has seen 1 MB; the difference is the flow stage's cost. The
  pipelines run in alternating blocks of 150 calls (20 each) and each row is
  the median of its blocks' p50 (and p99), so drift of the store over the run
  falls on both sides. Both run without the DLP stage (`InspectArguments`),
  which is reported apart (`decision with flow and DLP`) since it does not
  depend on the session. Every row walks the arguments with DLP once: the
  decision's audit record never keeps a secret, so without the stage the
  record's own redaction walks them; the stage's walk is reused for the record,
  so what it adds is its labels (and can come out at or below zero).
- `observe`: indexing cost per KB of untrusted output (paid once per result,
  after the tool ran, not on the decision path).
The injection detector is left out here (`flow_injection_detector = "off"`):
its cost is per result, and bench/bench_detector.py measures it.
Writes bench/results/flow.json.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, table, write_results

from warrant import flow, warrants
from warrant.enforce import Guard, Pipeline, SessionLedgers, TraceDataFlow, TrustDomain
from warrant.enforce._inspect import InspectArguments
from warrant.types import RiskClass, ToolCall, ToolInfo

WORDS = ("the", "quarterly", "report", "shows", "revenue", "growth", "in", "all", "regions",
         "while", "costs", "stayed", "flat", "please", "review", "the", "attached", "figures",
         "before", "the", "board", "meeting", "next", "week", "and", "send", "comments", "to",
         "the", "finance", "team", "who", "will", "consolidate", "them")


def untrusted_chunk(rng: random.Random) -> dict[str, Any]:
    """One tool result: a record with fields and a free-text body (about 1 KB)."""
    body = " ".join(rng.choice(WORDS) for _ in range(140))
    return {"id": str(rng.randrange(10**6)), "sender": f"user{rng.randrange(10**5)}@corp.example",
            "iban": f"DE{rng.randrange(10**18, 10**19)}0000",
            "subject": "weekly update", "body": body}


def fill(ledger: flow.Ledger, size: int, rng: random.Random) -> None:
    seen = 0
    while seen < size:
        chunk = untrusted_chunk(rng)
        ledger.observe(chunk, flow.Provenance("mail/read_inbox"))
        seen += sum(len(str(v)) for v in chunk.values())


ARGS = {"to": "user42@corp.example",
        "body": " ".join(WORDS[:40])}


def trace_cases() -> list[tuple[str, dict[str, float]]]:
    rows = []
    for size in (0, 10_000, 100_000, 1_000_000):
        ledger = flow.Ledger()
        ledger.add_instruction("Send the weekly summary to alice@corp.example")
        fill(ledger, size, random.Random(7))
        rows.append((f"trace only, session saw {size // 1000} KB",
                     measure(lambda ledger=ledger: ledger.trace(ARGS), n=5_000, warmup=500)))
    return rows


def observe_case() -> tuple[str, dict[str, float]]:
    rng = random.Random(11)
    chunks = [untrusted_chunk(rng) for _ in range(2_000)]
    it = iter(chunks * 3)
    ledger = flow.Ledger()
    return ("observe one ~1 KB result", measure(
        lambda: ledger.observe(next(it), flow.Provenance("mail/read_inbox")), n=4_000,
        warmup=500))


def decision_cases(home: Path) -> list[tuple[str, dict[str, float]]]:
    domain = TrustDomain.init(home, "bench.example", settings={
        "audit_durability": "normal", "flow_injection_detector": "off"})
    domain.store.put_tool(ToolInfo("send_email", RiskClass.EXTERNAL_COMMUNICATION), time.time())
    domain.register_agent("mailer", owner="ops", purpose="sends summaries")
    credential = domain.issue_credential("mailer", ttl_seconds=3600).token
    task_id, warrant = domain.mint(agent="mailer", task="bench", ttl_seconds=3600,
                                   tools=[warrants.parse_tool_spec("send_email")],
                                   instruction="Send the weekly summary to user42@corp.example")
    ledgers = SessionLedgers(domain.store, domain.config)
    fill(ledgers.ledger(task_id), 1_000_000, random.Random(7))
    full = Pipeline(domain, ledgers=ledgers)
    stages = full._stages  # the bench removes stages to price them
    with_flow = Pipeline(domain, ledgers=ledgers, stages=[
        s for s in stages if not isinstance(s, InspectArguments)])
    without = Pipeline(domain, ledgers=ledgers, stages=[
        s for s in stages if not isinstance(s, TraceDataFlow | InspectArguments)])
    call = ToolCall("send_email", ARGS)
    names = ("decision without flow", "decision with flow", "decision with flow and DLP")
    runs = []
    for pipeline in (without, with_flow, full):
        session = Guard(domain, pipeline).session(
            credential=credential, warrant=warrant,
            agent_key=domain.agent_key("mailer")).__enter__()

        def run(session: Any = session) -> object:
            decision = session.check(call)
            assert decision.allowed, decision
            return decision

        runs.append(run)
    # Blocks of the three alternate, so the store's drift (WAL growth, checkpoints)
    # and other load fall on all three alike; a row is the median of its blocks' p50s.
    blocks: list[list[dict[str, float]]] = [[], [], []]
    for _ in range(BLOCKS):
        for i, run in enumerate(runs):
            blocks[i].append(measure(run, n=BLOCK_CALLS, warmup=20))
    domain.close()
    return [(f"{name}, session saw 1 MB", _median_row(rows))
            for name, rows in zip(names, blocks, strict=True)]


BLOCKS, BLOCK_CALLS = 20, 150


def _median_row(rows: list[dict[str, float]]) -> dict[str, float]:
    """The median of each statistic over a case's blocks; `n` is every call timed."""
    median = {key: statistics.median(row[key] for row in rows)
              for key in ("p50_us", "p99_us", "mean_us")}
    return {**median, "n": sum(row["n"] for row in rows)}


def main() -> None:
    rows = trace_cases()
    rows.append(observe_case())
    with tempfile.TemporaryDirectory() as tmp:
        rows += decision_cases(Path(tmp) / "home")
    print(table(rows))
    base, flowed, dlp = (rows[i][1]["p50_us"] for i in (-3, -2, -1))
    added = flowed - base
    print(f"\nflow stage adds {added:.1f} µs p50 per decision at 1 MB "
          f"({flowed / base:.2f}x the pipeline without it); target <= 200 µs. "
          f"The DLP stage adds {dlp - flowed:.1f} µs more (its walk replaces the audit "
          "record's own, so this is the cost of its labels).")
    write_results("flow", {"rows": dict(rows), "added_p50_us": added,
                           "ratio": flowed / base, "dlp_added_p50_us": dlp - flowed})


if __name__ == "__main__":
    main()
