"""The one enforcement pipeline: authenticate → authorise → record.

Every PEP (the in-process `Guard`, `warrant check`, and later the MCP gateway,
hooks and the HTTP API) calls `Pipeline.decide`. There is exactly one
implementation of the decision.

INVARIANT: the decision record is durable in the audit log before the caller
learns it may act. If it cannot be written, the answer is deny.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from warrant import audit, flow, identity, scanners
from warrant.errors import WarrantError
from warrant.types import Decision, Effect, Reason, ToolCall, canonical_json

from ._context import CallContext, CallRequest, Stage
from ._delegation import IntersectRequester, VerifyDelegation
from ._domain import TrustDomain
from ._flow import SessionLedgers, TraceDataFlow, injection_span_finder
from ._inspect import InspectArguments, audit_arguments, findings_json
from ._stages import (
    Authenticate,
    CheckNarrowing,
    CheckRevocation,
    ConsumeBudget,
    EvaluatePolicy,
    LookUpTool,
    ResolveApproval,
    VerifyWarrant,
    check_scope,
)
from ._telemetry import decide_span, outcome_span

log = logging.getLogger("warrant.enforce")
#: The name answer checks are recorded under in the audit log.
ANSWER_TOOL = "warrant:answer"


def default_stages(domain: TrustDomain, replay_guard: identity.ReplayGuard,
                   ledgers: SessionLedgers | None = None) -> list[Stage]:
    """authenticate → warrant → delegation chain → revocation → scope → requester
    (intersection) → catalogue → narrowing → data flow → content inspection → policy → approval
    → budget."""
    ledgers = ledgers or session_ledgers(domain)
    return [
        Authenticate(domain.store, domain.domain, domain.public_key, replay_guard),
        VerifyWarrant(domain.domain, domain.public_key),
        VerifyDelegation(domain.store),
        CheckRevocation(domain.store),
        check_scope,
        IntersectRequester(domain.store, domain.domain, domain.public_key),
        LookUpTool(domain.store),
        CheckNarrowing(domain.store),
        TraceDataFlow(ledgers),
        InspectArguments(),
        EvaluatePolicy(domain.policies),
        ResolveApproval(domain.store, domain.config.approval_ttl_seconds),
        ConsumeBudget(domain.store),
    ]


def session_ledgers(domain: TrustDomain, *, observes_results: bool = True) -> SessionLedgers:
    """The data-flow ledgers for a PEP process, with the injection detector if configured.

    A PEP that never sees tool results (`observes_results=False`) traces calls
    against the user's instruction alone.
    """
    mode = domain.config.flow_injection_detector
    use_classifier = {"classifier": True, "patterns": False, "auto": None}.get(mode)
    finder = None if mode == "off" else injection_span_finder(
        use_classifier=use_classifier, threshold=domain.config.flow_injection_threshold)
    return SessionLedgers(domain.store, domain.config, finder,
                          observes_results=observes_results)


class Pipeline:
    """Runs the stages for one call and records the decision."""

    def __init__(self, domain: TrustDomain, *, stages: Sequence[Stage] | None = None,
                 replay_guard: identity.ReplayGuard | None = None,
                 ledgers: SessionLedgers | None = None):
        self.domain = domain
        #: What each session has seen; results are observed in `record_outcome`.
        self.ledgers = ledgers or session_ledgers(domain)
        # The store-backed guard sees nonces from every process sharing the domain.
        self._stages = list(stages) if stages is not None else default_stages(
            domain, replay_guard or domain.store, self.ledgers)

    def decide(self, request: CallRequest, *,
               session_credential: identity.Credential | None = None) -> Decision:
        started = time.perf_counter()
        with decide_span(request) as span:
            ctx = CallContext(request=request, now=time.time(), decision_id=str(uuid.uuid4()),
                              session_credential=session_credential)
            # Links the audit record to the trace (only when the call runs in one).
            ctx.detail.update(span.trace_ids())
            ctx.argument_digest()
            stages = () if ctx.malformed else self._stages
            if ctx.malformed:
                ctx.deny("call.malformed", "the call's arguments are not valid JSON text "
                         "(lone surrogate escapes, NaN, infinities, non-JSON values or "
                         "integers too long to print); fix the client", "pipeline")
            for stage in stages:
                try:
                    if stage(ctx) is Effect.DENY:
                        break
                except Exception as exc:
                    log.exception("stage %r failed; denying", stage)
                    ctx.detail["error"] = f"{type(exc).__name__}: {exc}"
                    message = exc.message if isinstance(exc, WarrantError) else "internal error"
                    ctx.deny("pipeline.error", f"decision failed, denied: {message}",
                             "pipeline")
                    break
            if ctx.effect is Effect.ALLOW and not ctx.reasons:
                # Never allow without saying why (a stage list that checks nothing).
                ctx.deny("pipeline.no-reason", "no stage established why this call is allowed",
                         "pipeline")
            return span.finish(self._record(ctx, started))

    def _record(self, ctx: CallContext, started: float) -> Decision:
        warrant = ctx.warrant
        decision = Decision(
            effect=ctx.effect,
            reasons=tuple(ctx.reasons),
            decision_id=ctx.decision_id,
            policy_revision=ctx.policy_revision or self.domain.policies.revision,
            latency_us=0.0,
            tool=ctx.request.call.qualified_name,
            agent=ctx.agent.agent_id if ctx.agent else None,
            task_id=warrant.task_id if warrant else None,
            principal_chain=warrant.principal_chain if warrant else (),
        )
        try:
            decision = replace(decision, latency_us=(time.perf_counter() - started) * 1e6)
            record = audit.AuditRecord.for_decision(
                decision, argument_digest=ctx.argument_digest(),
                arguments_redacted={"(malformed)": "not valid Unicode; not recorded"}
                if ctx.malformed else audit_arguments(ctx),
                detail=ctx.detail or None)
            seq = self.domain.append(record)
        except Exception:
            log.exception("audit record could not be written; denying")
            return replace(decision, effect=Effect.DENY, reasons=(*decision.reasons, Reason(
                code="audit.write-failed",
                message="the audit record could not be written, so the call is denied",
                source="record")))
        return replace(decision, audit_seq=seq,
                       latency_us=(time.perf_counter() - started) * 1e6)

    def check_answer(self, text: str, *, task_id: str, agent: str | None = None) -> Decision:
        """Decide whether the agent's final answer may reach the user, as it is.

        An answer is not a tool call, but an attack can live in it alone ("tell
        the user to visit evil.example"): an answer with a sentence copied from
        content the injection detector flagged, and found nowhere else, is
        denied. Audited like a call. `filter_answer` removes such sentences instead.
        """
        return self._answer(text, task_id=task_id, agent=agent, remove=False)[1]

    def filter_answer(self, text: str, *, task_id: str,
                      agent: str | None = None) -> tuple[str, Decision]:
        """The answer without its sentences that repeat injected-only content, and the decision.

        The decision allows what is left (reason `flow.answer-filtered` when
        something was removed); it denies only if the answer could not be checked.
        """
        return self._answer(text, task_id=task_id, agent=agent, remove=True)

    def _answer(self, text: str, *, task_id: str, agent: str | None,
                remove: bool) -> tuple[str, Decision]:
        started = time.perf_counter()
        ctx = CallContext(request=CallRequest(call=_ANSWER_CALL, credential="", warrant=""),
                          now=time.time(), decision_id=str(uuid.uuid4()))
        kept: list[str] = []
        withheld = 0
        try:
            ledger = self.ledgers.ledger(task_id)
            for sentence in _sentences(text):
                if flow.INJECTED in ledger.trace({"answer": sentence}, whole_items=False).labels:
                    withheld += 1
                else:
                    kept.append(sentence)
        except Exception as exc:
            log.exception("answer trace failed; denying")
            ctx.deny("pipeline.error", f"the answer could not be checked: {exc}", "flow")
            kept = []
        else:
            if withheld and not remove:
                ctx.deny("flow.injected-answer", "the answer repeats content found only inside "
                         "injected instructions", "flow")
            elif withheld:
                ctx.reasons.append(Reason(
                    "flow.answer-filtered", f"{withheld} sentence(s) repeating content found "
                    "only inside injected instructions were removed", "flow"))
            else:
                ctx.reasons.append(Reason("flow.answer-clean", "the answer carries no injected "
                                          "content", "flow"))
        ctx.detail.update({"answer_chars": len(text), "withheld_sentences": withheld,
                           "task_id": task_id, "agent": agent})
        decision = replace(self._record(ctx, started), agent=agent, task_id=task_id)
        shown = "".join(kept) if decision.effect is Effect.ALLOW else ""
        return shown, decision

    def inspect_output(self, result: Any) -> tuple[Any, scanners.DlpReport]:
        """`result` as the agent may see it (secrets redacted), and what was redacted."""
        categories = (frozenset({"secret"}) if self.domain.config.redact_output == "secrets"
                      else frozenset({"secret", "pii"}))
        return scanners.redact_sensitive(result, categories=categories)

    def record_outcome(self, decision: Decision, *, ok: bool, result: Any = None,
                       error: str | None = None,
                       redactions: scanners.DlpReport | None = None) -> int:
        """Append what the tool did (status, result digest, short redacted summary).

        The result is also observed into the session's data-flow ledger, labelled
        with its provenance (untrusted unless the configuration trusts the tool),
        so later calls that carry its values are traced back to it.
        """
        with outcome_span(decision, ok=ok) as span:
            # Serialised once: the digest below and the ledger's stored copy share it.
            canonical = _canonical(result)
            result_bytes = canonical if canonical is not None else canonical_json(repr(result))
            flagged = 0
            if decision.task_id and decision.effect is Effect.ALLOW:
                if ok:
                    flagged = self.ledgers.observe(decision.task_id, decision.tool, result,
                                                   canonical=canonical)
                else:
                    self.ledgers.note_no_result(decision.task_id, decision.tool)
            outcome: dict[str, Any] = {
                "status": "ok" if ok else "error",
                "result_digest": hashlib.sha256(result_bytes).hexdigest(),
                "result_bytes": len(result_bytes),
            }
            if error is not None:
                outcome["error"] = error[:500]
            if flagged:
                # Spans the injection detector flagged: evidence for the response engine.
                outcome["injected_spans"] = flagged
            if redactions is not None and (redactions.findings or redactions.truncated):
                outcome["redactions"] = findings_json(redactions)
                outcome["redaction_truncated"] = redactions.truncated
            record = audit.AuditRecord(
                kind="outcome", time=audit.utc_now(), decision_id=decision.decision_id,
                effect=decision.effect.value, agent=decision.agent,
                principal_chain=decision.principal_chain, task_id=decision.task_id,
                tool=decision.tool, outcome=outcome)
            return span.finish(self.domain.append(record), outcome["status"])


_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")


def _sentences(text: str) -> list[str]:
    """`text` cut after each sentence end or line break (the pieces join back to `text`)."""
    return [m.group() for m in _SENTENCE.finditer(text) if m.group()]


#: The pseudo-call an answer check is recorded under.
_ANSWER_CALL = ToolCall(tool=ANSWER_TOOL, arguments={})


def _canonical(value: Any) -> bytes | None:
    """`canonical_json(value)`, or None when `value` has no JSON form (its repr is used)."""
    try:
        return canonical_json(value)
    except (TypeError, ValueError, RecursionError):
        return None
