"""Benchmark `CompiledPolicy.evaluate` against a raw `cedarpy.is_authorized`.

Run: .venv/bin/python bench/bench_policy.py
Prints a table and writes bench/results/policy.json. The baseline calls cedarpy
with pre-parsed PolicySet, Schema-free evaluation and a pre-parsed Entities
handle on the same request; `encode only` is Warrant's Python-side work.
"""

from __future__ import annotations

import json
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cedarpy

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, write_results

from warrant.policy import PolicyRequest, default_pack_sources, load_policy_set
from warrant.policy._request import encode
from warrant.types import RiskClass

N = 20_000


def main() -> None:
    policy = load_policy_set(default_pack_sources())
    request = PolicyRequest(
        agent="spiffe://example.org/agent/payments",
        agent_attrs={"owner": "alice", "risk_tier": "standard"},
        tool="transfer",
        server="bank",
        risk_class=RiskClass.MONEY_MOVEMENT,
        toolsets=("finance",),
        arguments={"amount": 250, "to": "acct-42", "memo": "invoice 7"},
        task_id="task-1",
        chain=("spiffe://example.org/agent/root",),
        labels=frozenset({"internal"}),
        now=datetime(2025, 1, 6, 10, tzinfo=UTC),
    )
    assert policy.evaluate(request).allowed
    cedar_request, entities_json = encode(request)
    entities = cedarpy.Entities.from_json_str(entities_json)
    context = json.loads(cedar_request["context"])
    raw_dict_ctx = {**cedar_request, "context": context}
    empty_ctx = {k: v for k, v in cedar_request.items() if k != "context"}

    rows: dict[str, dict[str, Any]] = {
        "warrant evaluate()": measure(lambda: policy.evaluate(request), n=N),
        "encode only (python side)": measure(lambda: encode(request), n=N),
        "raw cedarpy, handles, same request": measure(
            lambda: cedarpy.is_authorized(raw_dict_ctx, policy.policies, entities), n=N
        ),
        "raw cedarpy, handles + schema": measure(
            lambda: cedarpy.is_authorized(raw_dict_ctx, policy.policies, entities, policy.schema),
            n=N,
        ),
        "raw cedarpy, handles, empty context": measure(
            lambda: cedarpy.is_authorized(empty_ctx, policy.policies, entities), n=N
        ),
    }
    metrics = [
        cedarpy.is_authorized(raw_dict_ctx, policy.policies, entities).metrics for _ in range(500)
    ]
    inside = {k: statistics.median(m[k] for m in metrics) for k in metrics[0] if "micros" in k}

    print(f"{'case':40} {'p50 µs':>9} {'p99 µs':>9} {'mean µs':>9}")
    for name, row in rows.items():
        print(f"{name:40} {row['p50_us']:9.1f} {row['p99_us']:9.1f} {row['mean_us']:9.1f}")
    print("cedar-reported phases (median µs, raw call):", inside)

    out = write_results(
        "policy",
        {
            "benchmark": "policy.evaluate",
            "n": N,
            "policies": len(policy),
            "revision": policy.revision,
            "cedarpy": "4.12.2",
            "rows": rows,
            "cedar_phases_median_us": inside,
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
