"""OpenTelemetry overhead on the decision path: tracing off vs on, in one run.

Run: .venv/bin/python bench/bench_telemetry.py

- `decision, telemetry off`: the in-process session decision with OpenTelemetry's
  default (no-op) providers, as every deployment that does not configure it runs.
- `decision, telemetry on`: the same call with the SDK's `TracerProvider`
  (`SimpleSpanProcessor` into an `InMemorySpanExporter`) and a `MeterProvider`
  with an `InMemoryMetricReader`: a recording span, attributes, two metrics.
- `decision, telemetry on, traceparent`: the same with a W3C traceparent to join.
- `helpers alone`: `decide_span(...)` + `finish(...)` without a decision, off and
  on, which is the whole cost telemetry adds (the decision rows are noisy).
Off is measured before and after on; the smaller is the baseline.
Writes bench/results/telemetry.json. Uses `audit_durability = "normal"` (unsynced).
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, table, write_results
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from warrant import warrants
from warrant.enforce import CallRequest, Guard, TrustDomain, instrument
from warrant.enforce._telemetry import decide_span
from warrant.types import Decision, Effect, Reason, RiskClass, ToolCall, ToolInfo

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def open_domain(home: Path) -> TrustDomain:
    domain = TrustDomain.init(home, "bench.example", settings={"audit_durability": "normal"})
    domain.store.put_tool(ToolInfo("read_file", RiskClass.READ_ONLY), time.time())
    domain.register_agent("payer", owner="finance", purpose="bench")
    return domain


def switch_on() -> InMemorySpanExporter:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    instrument(tracer_provider=provider,
               meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]))
    return spans


def helpers(request: CallRequest) -> dict[str, float]:
    decision = Decision(Effect.ALLOW, (Reason("policy.permit", "m", "policy"),), "d-1",
                        "sha256:x", 500.0, "read_file", "spiffe://bench.example/agent/payer",
                        "task-1", ("user:a",), 7)

    def once() -> None:
        with decide_span(request) as span:
            span.trace_ids()
            span.finish(decision)

    return measure(once, n=50_000, warmup=5_000)


def main() -> None:
    n = 5_000
    with tempfile.TemporaryDirectory() as tmp, open_domain(Path(tmp) / "home") as domain:
        token = domain.mint(agent="payer", task="bench", ttl_seconds=3600, total_budget=10**9,
                            tools=[warrants.parse_tool_spec("read_file@1000000000")])[1]
        guard = Guard(domain)
        credential = domain.issue_credential("payer", ttl_seconds=3600).token
        opened = guard.session(credential=credential, warrant=token,
                               agent_key=domain.agent_key("payer"))
        session = opened.__enter__()
        call = ToolCall("read_file", {"path": "/data/report.txt"})
        request = CallRequest(call=call, credential="", warrant="")
        traced = replace(request, traceparent=TRACEPARENT)

        def decide() -> None:
            session.check(call)

        rows: dict[str, dict[str, Any]] = {}
        rows["helpers alone, off"] = helpers(request)
        rows["decision, telemetry off"] = measure(decide, n=n, warmup=n // 10)
        spans = switch_on()
        try:
            rows["helpers alone, on"] = helpers(request)
            rows["helpers alone, on, traceparent"] = helpers(traced)
            spans.clear()
            rows["decision, telemetry on"] = measure(decide, n=n, warmup=n // 10)
            finished = len(spans.get_finished_spans())
        finally:
            instrument()
        rows["decision, telemetry off (again)"] = measure(decide, n=n, warmup=n // 10)
        opened.__exit__(None, None, None)

    off = min(rows["decision, telemetry off"]["p50_us"],
              rows["decision, telemetry off (again)"]["p50_us"])
    on = rows["decision, telemetry on"]["p50_us"]
    summary = {
        "decision_p50_added_us": on - off,
        "decision_p50_slowdown": on / off - 1,
        "helpers_off_p50_us": rows["helpers alone, off"]["p50_us"],
        "helpers_on_p50_us": rows["helpers alone, on"]["p50_us"],
        "spans_finished": finished,
    }
    print(table(list(rows.items())))
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()})
    path = write_results("telemetry", {"rows": rows, "summary": summary})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
