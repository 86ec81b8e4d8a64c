"""OpenTelemetry: a span per decision, trace context across agents, metrics, and no harm done."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id, format_trace_id

from tests.conftest import AgentKit, make_agent
from warrant.enforce import Pipeline, TrustDomain, current_traceparent, instrument
from warrant.types import Effect, ToolCall


@dataclass
class Telemetry:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider

    def finished(self, name: str = "warrant.decide") -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name == name]

    def points(self, metric: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        return [p for rm in data.resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics if m.name == metric for p in m.data.data_points]


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    instrument(tracer_provider=tracer_provider,
               meter_provider=MeterProvider(metric_readers=[reader]))
    yield Telemetry(spans, reader, tracer_provider)
    instrument()  # back to the global (no-op) providers


def test_each_decision_is_one_span_with_its_attributes(
        telemetry: Telemetry, domain: TrustDomain, agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    allowed = pipeline.decide(agent.request("read_file", path="a"))
    denied = pipeline.decide(agent.request("drop_table"))

    spans = telemetry.finished()
    assert len(spans) == 2
    for span, decision in zip(spans, (allowed, denied), strict=True):
        attrs = span.attributes or {}
        assert attrs["warrant.tool"] == decision.tool
        assert attrs["warrant.agent"] == agent.agent_id
        assert attrs["warrant.task_id"] == agent.task_id
        assert attrs["warrant.effect"] == decision.effect.value
        assert attrs["warrant.decision_id"] == decision.decision_id
        assert attrs["warrant.policy_revision"] == decision.policy_revision
        assert list(attrs["warrant.reason_codes"]) == [r.code for r in decision.reasons]  # type: ignore[arg-type]
        assert attrs["warrant.audit_seq"] == decision.audit_seq
    assert denied.effect is Effect.DENY


def test_the_audit_record_names_the_trace_it_ran_in(
        telemetry: Telemetry, domain: TrustDomain, agent: AgentKit) -> None:
    decision = Pipeline(domain).decide(agent.request("read_file", path="a"))
    span = telemetry.finished()[0]
    assert decision.audit_seq is not None
    detail = domain.audit.get(decision.audit_seq).record.detail or {}
    assert detail["trace_id"] == format_trace_id(span.context.trace_id)
    assert detail["span_id"] == format_span_id(span.context.span_id)


def test_a_traceparent_joins_the_callers_trace_across_sub_agents(
        telemetry: Telemetry, domain: TrustDomain, agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    helper = make_agent(domain, "helper", tools=("read_file",))
    tracer = telemetry.tracer_provider.get_tracer("orchestrator")
    with tracer.start_as_current_span("plan") as parent:
        traceparent = current_traceparent()
    assert traceparent is not None
    # The orchestrator's call and its sub-agent's call carry the same trace context.
    pipeline.decide(replace(agent.request("read_file", path="a"), traceparent=traceparent))
    pipeline.decide(replace(helper.request("read_file", path="b"), traceparent=traceparent))

    spans = telemetry.finished()
    assert len(spans) == 2
    for span in spans:
        assert span.context.trace_id == parent.get_span_context().trace_id
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id


def test_without_a_traceparent_the_decision_joins_the_current_span(
        telemetry: Telemetry, domain: TrustDomain, agent: AgentKit) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("agent step") as parent:
        Pipeline(domain).decide(agent.request("read_file", path="a"))
    [span] = telemetry.finished()
    assert span.context.trace_id == parent.get_span_context().trace_id


@pytest.mark.parametrize("traceparent", ["garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01",
                                         "00-" + "a" * 5000])
def test_a_malformed_traceparent_starts_a_new_trace_and_changes_nothing(
        telemetry: Telemetry, domain: TrustDomain, agent: AgentKit, traceparent: str) -> None:
    decision = Pipeline(domain).decide(
        replace(agent.request("read_file", path="a"), traceparent=traceparent))
    assert decision.allowed
    [span] = telemetry.finished()
    assert span.parent is None


def test_decisions_are_counted_by_effect_with_their_latency(
        telemetry: Telemetry, domain: TrustDomain, agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    for _ in range(3):
        pipeline.decide(agent.request("read_file", path="a"))
    pipeline.decide(agent.request("drop_table"))

    counts = {p.attributes["warrant.effect"]: p.value
              for p in telemetry.points("warrant.decisions")}
    assert counts == {"allow": 3, "deny": 1}
    histograms = telemetry.points("warrant.decision.duration")
    assert all(isinstance(p, HistogramDataPoint) for p in histograms)
    assert sum(p.count for p in histograms) == 4
    assert all(p.min > 0 for p in histograms)


def test_record_outcome_is_its_own_span(
        telemetry: Telemetry, domain: TrustDomain, agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    decision = pipeline.decide(agent.request("read_file", path="a"))
    seq = pipeline.record_outcome(decision, ok=True, result={"text": "hello"})
    [span] = telemetry.finished("warrant.record_outcome")
    attrs = span.attributes or {}
    assert attrs["warrant.decision_id"] == decision.decision_id
    assert attrs["warrant.status"] == "ok"
    assert attrs["warrant.audit_seq"] == seq
    assert {p.attributes["warrant.status"]: p.value
            for p in telemetry.points("warrant.outcomes")} == {"ok": 1}


class _BrokenExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise RuntimeError("collector is down")


class _BrokenProcessor(SpanProcessor):
    """A span processor that fails everywhere (the SDK does not guard these calls)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        raise RuntimeError("processor broke on start")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("processor broke on end")


def test_a_failing_exporter_or_processor_never_changes_a_decision(
        domain: TrustDomain, agent: AgentKit) -> None:
    pipeline = Pipeline(domain)
    baseline = [pipeline.decide(agent.request(tool, path="a")).effect
                for tool in ("read_file", "drop_table")]
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_BrokenExporter()))
    provider.add_span_processor(_BrokenProcessor())
    instrument(tracer_provider=provider)
    try:
        effects = [pipeline.decide(agent.request(tool, path="a")).effect
                   for tool in ("read_file", "drop_table")]
        decision = pipeline.decide(agent.request("read_file", path="b"))
        assert pipeline.record_outcome(decision, ok=True, result="x") > 0
    finally:
        instrument()
    assert effects == baseline == [Effect.ALLOW, Effect.DENY]


def test_without_telemetry_configured_records_carry_no_trace(
        domain: TrustDomain, agent: AgentKit) -> None:
    decision = Pipeline(domain).decide(agent.request("read_file", path="a"))
    assert decision.audit_seq is not None
    detail = domain.audit.get(decision.audit_seq).record.detail or {}
    assert "trace_id" not in detail
    assert current_traceparent() is None


def test_a_sub_agent_handed_work_in_a_sealed_message_joins_the_orchestrators_trace(
        telemetry: Telemetry, domain: TrustDomain) -> None:
    from warrant import warrants
    from warrant.enforce import Envelope, Guard, GuardSession
    from warrant.errors import InvalidEnvelope

    guard = Guard(domain)
    orchestrator = make_agent(domain, "orchestrator", tools=("read_file",))
    helper = make_agent(domain, "helper", tools=("read_file",))
    orchestrator.warrant = domain.mint(agent="orchestrator", task="t", max_depth=1,
                                       tools=[warrants.parse_tool_spec("read_file")])[1]
    sender = GuardSession(guard, credential=orchestrator.credential,
                          warrant=orchestrator.warrant, agent_key=orchestrator.key)
    tracer = telemetry.tracer_provider.get_tracer("agent")
    with tracer.start_as_current_span("orchestrator turn") as parent:
        envelope = sender.seal("helper", "summarise a", delegate=[
            warrants.parse_tool_spec("read_file")])
    assert envelope.traceparent is not None
    message = guard.receive(Envelope.from_json(envelope.to_json()), "summarise a",
                            recipient="helper")
    assert message.delegated is not None
    with guard.session(credential=helper.credential, warrant=message.delegated,
                       agent_key=helper.key, traceparent=message.traceparent) as session:
        session.check(ToolCall(tool="read_file", arguments={"path": "a"}))
    [span] = telemetry.finished()
    assert span.context is not None and span.parent is not None
    assert span.context.trace_id == parent.get_span_context().trace_id
    # The trace context is sealed: moving the message to another trace is tampering.
    other = Envelope(seal=envelope.seal, credential=envelope.credential,
                     warrant=envelope.warrant, delegated=envelope.delegated,
                     traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    with pytest.raises(InvalidEnvelope) as refused:
        guard.receive(other, "summarise a", recipient="helper")
    assert refused.value.reason == "delegation.tampered"
