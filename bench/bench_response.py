"""Response engine: time to contain, event throughput, decision-path overhead, in one run.

Run: .venv/bin/python bench/bench_response.py

- `time to contain (canary, inline)`: the clock starts when the offending call's
  decision starts and stops when a following call by the same agent is denied
  `revoked`. Critical single-record detections contain on the appending thread,
  so the very next call is already denied.
- `time to contain (5 denials, worker)`: the same for the stateful detection (the
  fifth denied call starts the clock). Two agents: one that calls again every
  millisecond (`paced`; an LLM agent is far slower), and one that calls again
  back to back without pause (`busy`), which keeps the GIL from the worker.
- `event throughput`: records per second through the engine with every default
  detection enabled (listener → queue → worker), on many agents.
- `decision overhead`: the in-process session decision with the engine off vs on
  (default detections, a canary configured), same process, same domain, one
  engine whose listener is switched on and off (`Switch`) for alternating
  blocks of 200 decisions, 40 cycles in ABBA order (a shared machine's load
  drifts over seconds and hits both alike); the slowdown is the median over
  cycles of p50(on)/p50(off) - 1, also given pooled over all samples, and the
  CPU time of the whole process (decision thread + engine worker) per decision.
Writes bench/results/response.json. Uses `audit_durability = "normal"` (unsynced).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import table, timings, write_results

from warrant import audit, warrants
from warrant.enforce import Guard, TrustDomain
from warrant.response import DetectionConfig, ResponseEngine, parse_playbook
from warrant.types import RiskClass, ToolCall, ToolInfo

CANARY = "CANARY-bench-1"
REVOKE_ONLY = parse_playbook("""
id: bench-revoke
match: {severities: [critical, high]}
steps: [{action: revoke_task}]
""")


def open_domain(home: Path) -> TrustDomain:
    domain = TrustDomain.init(home, "bench.example", settings={"audit_durability": "normal"})
    domain.store.put_tool(ToolInfo("read_file", RiskClass.READ_ONLY), time.time())
    domain.store.put_tool(ToolInfo("drop_table", RiskClass.DESTRUCTIVE), time.time())
    domain.register_agent("payer", owner="finance", purpose="bench")
    return domain


def task(domain: TrustDomain) -> str:
    return domain.mint(agent="payer", task="bench", ttl_seconds=3600, total_budget=10**9,
                       tools=[warrants.parse_tool_spec("read_file@1000000000")])[1]


def quartiles(values: list[float]) -> str:
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{q1:+.1%} .. {q3:+.1%}"


def pct(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": ordered[len(ordered) // 2] * 1000,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
            "max_ms": ordered[-1] * 1000, "n": len(ordered)}


def time_to_contain(domain: TrustDomain, *, canary: bool, rounds: int,
                    pause: float = 0.001) -> dict[str, float]:
    guard = Guard(domain)
    credential = domain.issue_credential("payer", ttl_seconds=3600).token
    key = domain.agent_key("payer")
    samples = []
    for _ in range(rounds):
        token = task(domain)
        with guard.session(credential=credential, warrant=token, agent_key=key) as session:
            for _ in range(0 if canary else 4):
                session.check(ToolCall("drop_table", {}))
            offending = (ToolCall("read_file", {"path": CANARY}) if canary
                         else ToolCall("drop_table", {}))
            start = time.perf_counter()
            session.check(offending)
            while True:
                after = session.check(ToolCall("read_file", {"path": "x"}))
                if any(r.code == "revoked" for r in after.reasons):
                    break
                if pause:
                    time.sleep(pause)
            samples.append(time.perf_counter() - start)
    return pct(samples)


def throughput(domain: TrustDomain, engine: ResponseEngine, n: int) -> dict[str, Any]:
    records = [audit.AuditRecord(
        kind="decision", time=audit.utc_now(), effect="allow" if i % 500 else "deny",
        agent=f"spiffe://bench.example/agent/a{i % 50}", task_id=f"task-{i % 50}",
        tool="read_file", arguments_redacted={"path": f"/data/{i}.txt", "n": i},
        reasons=({"code": "policy.permit", "message": "m", "source": "policy"},))
        for i in range(n)]
    start = time.perf_counter()
    for seq, record in enumerate(records):
        engine._on_record(seq, record)
    assert engine.drain(120)
    elapsed = time.perf_counter() - start
    return {"events": n, "seconds": elapsed, "events_per_s": n / elapsed,
            "dropped": engine.dropped}


class Switch:
    """The domain as the engine sees it, with the engine's listener behind an on/off switch.

    The engine subscribes through `subscribe` below; "off" costs one attribute
    test per record, so on and off blocks can alternate every few hundred
    decisions in one process, with one engine and one worker thread, and share
    the machine's load as it drifts (a shared 2-CPU machine's p50 moves by 2x
    between blocks a minute apart).
    """

    def __init__(self, domain: TrustDomain):
        self.domain, self.on = domain, False
        self._listeners: list[Callable[[int, audit.AuditRecord], None]] = []
        domain.subscribe(self._publish)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.domain, name)

    def subscribe(self, listener: Callable[[int, audit.AuditRecord], None]) -> None:
        self._listeners.append(listener)

    def _publish(self, seq: int, record: audit.AuditRecord) -> None:
        if self.on:
            for listener in self._listeners:
                listener(seq, record)


def overhead(domain: TrustDomain, *, cycles: int = 40, block: int = 200) -> dict[str, Any]:
    guard = Guard(domain)
    credential = domain.issue_credential("payer", ttl_seconds=3600).token
    opened = guard.session(credential=credential, warrant=task(domain),
                           agent_key=domain.agent_key("payer"))
    session = opened.__enter__()
    call = ToolCall("read_file", {"path": "/data/report.txt"})
    switch = Switch(domain)
    engine = ResponseEngine(switch, config=DetectionConfig(canaries=(CANARY,)),
                            playbooks=[REVOKE_ONLY], queue_size=1_000_000).start()
    samples: dict[str, list[int]] = {"off": [], "on": []}
    cpu = {"off": 0.0, "on": 0.0}
    ratios = []
    try:
        for mode in (True, False):  # warm both paths
            switch.on = mode
            timings(lambda: session.check(call), n=block, warmup=block)
        for cycle in range(cycles):
            p50 = {}
            # ABBA order: a load trend within a cycle hits on and off alike.
            for mode in (("off", "on") if cycle % 2 else ("on", "off")):
                switch.on = mode == "on"
                started = time.process_time()
                got = timings(lambda: session.check(call), n=block, warmup=0)
                if switch.on:
                    assert engine.drain(60)  # the worker's share is part of the cost
                cpu[mode] += time.process_time() - started
                samples[mode].extend(got)
                p50[mode] = got[block // 2]
            ratios.append(p50["on"] / p50["off"] - 1)
    finally:
        engine.stop()
        opened.__exit__(None, None, None)

    def summary(ns: list[int]) -> dict[str, float]:
        ordered = sorted(ns)
        return {"p50_us": ordered[len(ordered) // 2] / 1000,
                "p99_us": ordered[int(len(ordered) * 0.99)] / 1000,
                "mean_us": statistics.fmean(ordered) / 1000, "n": len(ordered)}

    off, on = summary(samples["off"]), summary(samples["on"])
    return {"cycles": cycles, "block": block, "off": off, "on": on,
            "pooled_slowdown_p50": on["p50_us"] / off["p50_us"] - 1,
            "cycle_ratios_p50": ratios, "slowdown_p50": statistics.median(ratios),
            "slowdown_cpu": cpu["on"] / cpu["off"] - 1,
            "cpu_us_per_decision": {k: v / (cycles * block) * 1e6 for k, v in cpu.items()}}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        domain = open_domain(Path(tmp) / "home")
        try:
            result: dict[str, Any] = {"overhead": overhead(domain)}
            engine = ResponseEngine(domain, config=DetectionConfig(canaries=(CANARY,)),
                                    playbooks=[REVOKE_ONLY]).start()
            try:
                result["ttc_canary_inline"] = time_to_contain(domain, canary=True, rounds=200)
                result["ttc_denials_worker"] = time_to_contain(domain, canary=False, rounds=200)
                result["ttc_denials_worker_busy"] = time_to_contain(domain, canary=False,
                                                                    rounds=200, pause=0)
            finally:
                engine.stop()
            engine = ResponseEngine(domain, config=DetectionConfig(canaries=(CANARY,)),
                                    playbooks=[REVOKE_ONLY], queue_size=200_000,
                                    prime_records=0).start()
            try:
                result["throughput"] = throughput(domain, engine, 50_000)
            finally:
                engine.stop()
        finally:
            try:
                domain.close()
            except Exception as exc:  # reported, see the closing note of issue 7
                print(f"domain close failed: {exc}")
    o = result["overhead"]
    print(table([("decision, engine off (all off blocks)", o["off"]),
                 ("decision, engine on (all on blocks)", o["on"])]))
    print(f"decision slowdown with detections on, {o['cycles']} alternating blocks of "
          f"{o['block']}: p50 {o['slowdown_p50']:+.1%} (median of per-cycle ratios; "
          f"quartiles {quartiles(o['cycle_ratios_p50'])}), pooled p50 "
          f"{o['pooled_slowdown_p50']:+.1%}, process CPU per decision {o['slowdown_cpu']:+.1%} "
          "(target <= 10%)")
    for name in ("ttc_canary_inline", "ttc_denials_worker", "ttc_denials_worker_busy"):
        r = result[name]
        print(f"{name}: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max "
              f"{r['max_ms']:.2f} ms (targets p50 <= 50, p99 <= 200)")
    t = result["throughput"]
    print(f"throughput: {t['events_per_s']:,.0f} events/s over {t['events']} events, "
          f"dropped {t['dropped']} (target >= 5,000/s)")
    print(f"wrote {write_results('response', result)}")


if __name__ == "__main__":
    main()
