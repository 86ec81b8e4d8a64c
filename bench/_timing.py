"""One way to time things for every benchmark: warm up, GC off, per-call nanoseconds."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def timings(fn: Callable[[], object], n: int, warmup: int) -> list[int]:
    """Sorted nanoseconds of `n` calls of `fn()` after `warmup` calls, GC off."""
    for _ in range(warmup):
        fn()
    samples: list[int] = []
    gc.disable()
    try:
        for _ in range(n):
            start = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - start)
    finally:
        gc.enable()
    samples.sort()
    return samples


def measure(fn: Callable[[], object], n: int = 20_000, warmup: int = 2_000) -> dict[str, float]:
    """p50/p99/mean in µs of `fn()` over `n` calls after `warmup` calls."""
    samples = timings(fn, n, warmup)
    return {
        "p50_us": samples[n // 2] / 1000,
        "p99_us": samples[min(n - 1, int(n * 0.99))] / 1000,
        "mean_us": statistics.fmean(samples) / 1000,
        "n": n,
    }


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]}


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, sort_keys=True) + "\n")
    return path


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    width = max(len(name) for name, _ in rows)
    lines = [f"{'case':<{width}}  {'p50 µs':>9}  {'p99 µs':>9}"]
    lines += [f"{name:<{width}}  {r['p50_us']:>9.1f}  {r['p99_us']:>9.1f}" for name, r in rows]
    return "\n".join(lines)
