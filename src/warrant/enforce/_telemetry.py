"""OpenTelemetry for decisions: a span per call, W3C trace context in, two metrics out.

`Pipeline.decide` runs inside a `warrant.decide` span and `record_outcome`
inside `warrant.record_outcome`. A call that carries a W3C `traceparent`
(`CallRequest.traceparent`) joins the caller's trace, so an orchestrator's
call and its sub-agents' calls share one trace id: the request id across
agents. Without one, the span's parent is the current OpenTelemetry context
(an in-process `Guard` inside the application's own span joins it for free).
When the decision runs in a valid trace, its `trace_id` and `span_id` are kept
in the audit record's detail, which links the log to the trace.

Metrics: `warrant.decisions` (counter, by `warrant.effect`),
`warrant.decision.duration` (histogram, milliseconds, by `warrant.effect`) and
`warrant.outcomes` (counter, by `warrant.status`).

Nothing is exported unless the application configures OpenTelemetry (or calls
`instrument`): the API's default providers are no-ops, and attributes are set
only on recording spans.

INVARIANT: telemetry never changes a decision. Every OpenTelemetry call here
is guarded; a failing exporter or span processor is logged once and ignored.
"""

from __future__ import annotations

import logging
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from warrant.types import Decision

if TYPE_CHECKING:
    from ._context import CallRequest

log = logging.getLogger("warrant.telemetry")

INSTRUMENTATION = "warrant.enforce"
DECIDE_SPAN = "warrant.decide"
OUTCOME_SPAN = "warrant.record_outcome"
#: A W3C traceparent is 55 characters; anything much longer is not one.
MAX_TRACEPARENT = 128
_LATENCY_BUCKETS_MS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000)
_PROPAGATOR = TraceContextTextMapPropagator()


class _Instruments:
    """The tracer and metric instruments in use (the global providers unless `instrument`)."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None,
                 meter_provider: metrics.MeterProvider | None = None):
        self.tracer = trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)
        meter = metrics.get_meter(INSTRUMENTATION, meter_provider=meter_provider)
        self.decisions = meter.create_counter(
            "warrant.decisions", unit="{decision}", description="Decisions, by effect")
        self.duration = meter.create_histogram(
            "warrant.decision.duration", unit="ms", description="Decision latency, by effect",
            explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS_MS)
        self.outcomes = meter.create_counter(
            "warrant.outcomes", unit="{outcome}", description="Tool outcomes, by status")


class _State:
    instruments = _Instruments()
    warned = False


def instrument(*, tracer_provider: trace.TracerProvider | None = None,
               meter_provider: metrics.MeterProvider | None = None) -> None:
    """Send Warrant's spans and metrics to these providers (None: the global ones)."""
    _State.instruments = _Instruments(tracer_provider, meter_provider)


def _failed(what: str) -> None:
    # Once per process: a broken exporter would otherwise log on every call.
    if not _State.warned:
        _State.warned = True
        log.warning("telemetry failed (%s); decisions are unaffected", what, exc_info=True)


def parent_context(traceparent: str | None) -> otel_context.Context | None:
    """The context a W3C `traceparent` names, or None when absent or malformed."""
    if not traceparent or len(traceparent) > MAX_TRACEPARENT:
        return None
    ctx = _PROPAGATOR.extract({"traceparent": traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span, to hand to a sub-agent's calls."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


class _Span:
    """One span, made current while it runs when it records; every call guarded."""

    __slots__ = ("_span", "_token")

    def __init__(self, name: str, parent: otel_context.Context | None,
                 attributes: dict[str, Any]):
        self._token: Token[otel_context.Context] | None = None
        self._span: trace.Span = trace.INVALID_SPAN
        try:
            self._span = _State.instruments.tracer.start_span(
                name, context=parent, attributes=attributes)
            if self._span.is_recording():
                self._token = otel_context.attach(trace.set_span_in_context(self._span))
        except Exception:
            _failed("start span")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if ev is not None and self._span.is_recording():
                self._span.record_exception(ev)
                self._span.set_status(trace.StatusCode.ERROR, type(ev).__name__)
        except Exception:
            _failed("record exception")
        try:
            if self._token is not None:
                otel_context.detach(self._token)
        except Exception:
            _failed("detach context")
        try:
            self._span.end()
        except Exception:
            _failed("end span")

    def trace_ids(self) -> dict[str, str]:
        """`trace_id` and `span_id` (hex) when the span is in a valid trace, else empty."""
        try:
            ctx = self._span.get_span_context()
            if ctx.is_valid:
                return {"trace_id": trace.format_trace_id(ctx.trace_id),
                        "span_id": trace.format_span_id(ctx.span_id)}
        except Exception:
            _failed("span context")
        return {}

    def set(self, attributes: dict[str, Any]) -> None:
        try:
            if self._span.is_recording():
                self._span.set_attributes(
                    {k: v for k, v in attributes.items() if v is not None})
        except Exception:
            _failed("set attributes")


class DecisionSpan(_Span):
    """The `warrant.decide` span of one call; `finish` records the decision on it."""

    __slots__ = ()

    def finish(self, decision: Decision) -> Decision:
        """Set the decision's attributes and count it; returns `decision` unchanged."""
        self.set({
            "warrant.effect": decision.effect.value,
            "warrant.decision_id": decision.decision_id,
            "warrant.agent": decision.agent,
            "warrant.task_id": decision.task_id,
            "warrant.policy_revision": decision.policy_revision,
            "warrant.reason_codes": [r.code for r in decision.reasons],
            "warrant.principal_chain": list(decision.principal_chain),
            "warrant.audit_seq": decision.audit_seq,
            "warrant.latency_us": round(decision.latency_us, 1),
        })
        try:
            effect = {"warrant.effect": decision.effect.value}
            _State.instruments.decisions.add(1, effect)
            _State.instruments.duration.record(decision.latency_us / 1000, effect)
        except Exception:
            _failed("record metrics")
        return decision


def decide_span(request: CallRequest) -> DecisionSpan:
    """The span `Pipeline.decide` runs in (joins `request.traceparent` when it is valid)."""
    parent = None
    if request.traceparent is not None:
        try:
            parent = parent_context(request.traceparent)
        except Exception:
            _failed("traceparent")
    return DecisionSpan(DECIDE_SPAN, parent, {"warrant.tool": request.call.qualified_name})


class OutcomeSpan(_Span):
    """The `warrant.record_outcome` span; `finish` records the audit seq and counts it."""

    __slots__ = ()

    def finish(self, seq: int, status: str) -> int:
        self.set({"warrant.audit_seq": seq})
        try:
            _State.instruments.outcomes.add(1, {"warrant.status": status})
        except Exception:
            _failed("record metrics")
        return seq


def outcome_span(decision: Decision, *, ok: bool) -> OutcomeSpan:
    """The span `Pipeline.record_outcome` runs in."""
    return OutcomeSpan(OUTCOME_SPAN, None, {
        "warrant.tool": decision.tool, "warrant.decision_id": decision.decision_id,
        "warrant.status": "ok" if ok else "error", "warrant.agent": decision.agent or "",
        "warrant.task_id": decision.task_id or ""})
