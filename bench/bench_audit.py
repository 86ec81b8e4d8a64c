"""Audit log throughput: appends (unsynced, durable with and without group commit) and verify.

Run: `.venv/bin/python bench/bench_audit.py [--quick]`. Prints a table and writes
`bench/results/audit.json`. Records are built before timing: what is measured
is the log's own cost (serialise, hash, commit, fsync), not record construction.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import write_results

from warrant.audit import AuditLog, AuditRecord
from warrant.store._audit import SqliteAuditBackend

KEY = Ed25519PrivateKey.generate()


def record(i: int) -> AuditRecord:
    return AuditRecord(
        kind="decision",
        time="2025-01-02T03:04:05.678Z",
        decision_id=f"dec-{i:08d}",
        effect="allow",
        agent="spiffe://bench.example/agent/a",
        principal_chain=("spiffe://bench.example/user/alice",),
        task_id="task-1",
        tool="fs.read",
        argument_digest="ab" * 32,
        arguments_redacted={"path": f"/data/{i}"},
        reasons=({"code": "policy.permit", "message": "permitted", "source": "policy"},),
        policy_revision="rev-1",
        latency_us=12.5,
    )


def open_log(tmp: Path, name: str, *, durable: bool, max_batch: int = 1024) -> AuditLog:
    backend = SqliteAuditBackend(tmp / f"{name}.db")
    return AuditLog(
        backend, KEY, origin="bench.example/audit", durable=durable, max_batch=max_batch
    )


def appends_single(tmp: Path, n: int) -> float:
    records = [record(i) for i in range(n)]
    with open_log(tmp, "unsynced", durable=False) as log:
        start = time.perf_counter()
        for r in records:
            log.append(r)
        return n / (time.perf_counter() - start)


def appends_threaded(
    tmp: Path, name: str, threads: int, per_thread: int, max_batch: int, *, durable: bool = True
) -> float:
    records = [[record(t * per_thread + i) for i in range(per_thread)] for t in range(threads)]
    barrier = threading.Barrier(threads + 1)
    with open_log(tmp, name, durable=durable, max_batch=max_batch) as log:

        def worker(mine: list[AuditRecord]) -> None:
            barrier.wait()
            for r in mine:
                log.append(r)

        pool = [threading.Thread(target=worker, args=(rs,)) for rs in records]
        for th in pool:
            th.start()
        barrier.wait()
        start = time.perf_counter()
        for th in pool:
            th.join()
        return threads * per_thread / (time.perf_counter() - start)


def verify_rate(tmp: Path, n: int) -> float:
    with open_log(tmp, "verify", durable=False) as log:
        batch = 5000
        for lo in range(0, n, batch):
            log.append_many([record(i) for i in range(lo, min(n, lo + batch))])
            if lo % 50_000 == 0:
                log.checkpoint()
        log.checkpoint()
    # A fresh log: nothing cached, every leaf recomputed from stored bytes.
    with open_log(tmp, "verify", durable=False) as reader:
        start = time.perf_counter()
        report = reader.verify()
        elapsed = time.perf_counter() - start
    assert report.size == n
    return n / elapsed


def proof_rate(tmp: Path, n: int) -> float:
    """Inclusion proofs per second on the log `verify_rate` built (O(log n) stored nodes)."""
    with open_log(tmp, "verify", durable=False) as log:
        size = log.head()[0]
        assert size == n
        seqs = [(i * 7919) % size for i in range(500)]
        start = time.perf_counter()
        for seq in seqs:
            log.inclusion_proof(seq, size)
        return len(seqs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (CI smoke)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        results = {
            "appends_per_s_unsynced_1_thread": appends_single(tmp, 30_000 // scale),
            "appends_per_s_unsynced_group_commit_16_threads": appends_threaded(
                tmp, "unsynced-group", 16, 3_000 // scale, max_batch=1024, durable=False
            ),
            "appends_per_s_durable_group_commit_16_threads": appends_threaded(
                tmp, "group", 16, 1_000 // scale, max_batch=1024
            ),
            "appends_per_s_durable_no_group_commit_16_threads": appends_threaded(
                tmp, "single", 16, 150 // scale, max_batch=1
            ),
            "verify_records_per_s_200k": verify_rate(tmp, 200_000 // scale),
        }
        results["inclusion_proofs_per_s_200k"] = proof_rate(tmp, 200_000 // scale)
    targets = {
        "appends_per_s_unsynced_1_thread": 20_000,
        "appends_per_s_unsynced_group_commit_16_threads": 20_000,
        "appends_per_s_durable_group_commit_16_threads": 5_000,
        "appends_per_s_durable_no_group_commit_16_threads": None,
        "verify_records_per_s_200k": 100_000,
        "inclusion_proofs_per_s_200k": None,
    }
    print(f"{'measure':<52} {'per second':>12} {'target':>9}")
    for name, value in results.items():
        target = targets[name]
        mark = "" if target is None else ("  ok" if value >= target else "  BELOW")
        print(f"{name:<52} {value:>12,.0f} {target or '-':>9}{mark}")
    payload = {
        "results": {k: round(v) for k, v in results.items()},
        "targets": targets,
        "quick": args.quick,
    }
    write_results("audit", payload)


if __name__ == "__main__":
    main()
