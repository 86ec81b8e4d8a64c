"""Benchmark `CompiledPolicy.evaluate` against a raw `cedarpy.is_authorized`.

Run: .venv/bin/python bench/bench_policy.py
Prints a table and writes bench/results/policy.json. The baseline calls cedarpy
with pre-parsed PolicySet, Schema-free evaluation and a pre-parsed Entities
handle on the same request; `encode only` is Warrant's Python-side work.
"""

from __future__ import annotations

import gc
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cedarpy

from warrant.policy import PolicyRequest, default_pack_sources, load_policy_set
from warrant.policy._request import encode
from warrant.types import RiskClass

N = 20_000
WARMUP = 2_000


def measure(fn: Callable[[], object], n: int = N) -> dict[str, float]:
    for _ in range(WARMUP):
        fn()
    samples = []
    gc.disable()
    try:
        for _ in range(n):
            start = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - start)
    finally:
        gc.enable()
    samples.sort()
    return {
        "p50_us": samples[n // 2] / 1000,
        "p99_us": samples[int(n * 0.99)] / 1000,
        "mean_us": statistics.fmean(samples) / 1000,
    }


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
        "warrant evaluate()": measure(lambda: policy.evaluate(request)),
        "encode only (python side)": measure(lambda: encode(request)),
        "raw cedarpy, handles, same request": measure(
            lambda: cedarpy.is_authorized(raw_dict_ctx, policy.policies, entities)
        ),
        "raw cedarpy, handles + schema": measure(
            lambda: cedarpy.is_authorized(raw_dict_ctx, policy.policies, entities, policy.schema)
        ),
        "raw cedarpy, handles, empty context": measure(
            lambda: cedarpy.is_authorized(empty_ctx, policy.policies, entities)
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

    out = Path(__file__).parent / "results" / "policy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "policy.evaluate",
                "n": N,
                "policies": len(policy),
                "revision": policy.revision,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cedarpy": "4.12.2",
                "rows": rows,
                "cedar_phases_median_us": inside,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
