"""The data-flow stage: every call's arguments traced through the session ledger.

One `Ledger` per task (session), kept by `SessionLedgers` in the PEP's process:
results are observed into it after each allowed call runs
(`Pipeline.record_outcome`), and before policy each call's arguments are traced
through it. The trace's labels reach Cedar in `context.labels`; the default
pack's flow rules decide with them (see `policy/pack/flow.cedar`).

Every observed result is also appended to the store (`observations`), so a
ledger new to this process — a restarted gateway, the next one-shot Claude Code
hook process, a session evicted to bound memory — is rebuilt by replaying them
in order.

Fail closed: a rebuilt ledger that has fewer observations than the task made
calls (a result that was never recorded, or one too large to keep), or that
overflowed, cannot vouch for anything, so its traces say `ledger-incomplete`;
a detector that crashes flags the whole text it was given.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from warrant import flow, scanners
from warrant.config import DomainConfig
from warrant.errors import StoreError
from warrant.store import StateStore
from warrant.types import Effect, RiskClass, canonical_json

from ._context import CallContext
from ._inspect import SECRETS

log = logging.getLogger("warrant.flow")

#: Sessions kept per process; the least recently used beyond this is dropped
#: (and a later call of that task is traced as `ledger-incomplete`).
MAX_SESSIONS = 1024
#: How long observed results are kept for rebuilding ledgers (no warrant lives longer).
RETENTION_SECONDS = 24 * 3600
#: Results larger than this are not kept: a ledger rebuilt without them is incomplete.
MAX_KEPT_RESULT_CHARS = 4 * 1024 * 1024
_TOO_LARGE = ""  # the payload of a result that was observed but not kept


class SessionLedgers:
    """The ledgers of the sessions this process enforces, one per task id."""

    def __init__(self, store: StateStore, config: DomainConfig,
                 find_spans: flow.SpanFinder | None = None, *,
                 observes_results: bool = True, max_sessions: int = MAX_SESSIONS,
                 persist: bool = True):
        self._store = store
        #: False for one-shot PEPs that never see results (a pre-tool-use hook,
        #: `warrant check`): their ledgers hold only the user's instruction, so
        #: any destination not in it is unverified.
        self.observes_results = observes_results
        self._trusted = frozenset(config.flow_trusted_tools)
        self._secret = frozenset(config.flow_secret_tools)
        self._find_spans = find_spans
        self._max = max_sessions
        #: Observations go to the store too, and ledgers new to this process replay them.
        self.persist = persist
        self._ledgers: OrderedDict[str, flow.Ledger] = OrderedDict()
        self._lock = threading.Lock()

    def ledger(self, task_id: str) -> flow.Ledger:
        with self._lock:
            found = self._ledgers.get(task_id)
            if found is not None:
                self._ledgers.move_to_end(task_id)
                return found
            ledger = self._rebuild(task_id)
            self._ledgers[task_id] = ledger
            while len(self._ledgers) > self._max:
                self._ledgers.popitem(last=False)  # rebuilt from the store when needed again
            return ledger

    def _rebuild(self, task_id: str) -> flow.Ledger:
        """The task's ledger from its instruction and every observation kept in the store."""
        ledger = flow.Ledger()
        instruction = self._store.get_instruction(task_id)
        if instruction:
            ledger.add_instruction(instruction)
        seen = self._store.observations.list(task_id) if self.persist else []
        for observation in seen:
            if observation.payload == _TOO_LARGE:
                ledger.mark_incomplete(f"a result of `{observation.tool}` was too large to keep")
            elif observation.payload is not None:
                self._index(ledger, observation.tool, json.loads(observation.payload))
        if self.observes_results and self._store.budget_used(task_id) > len(seen):
            ledger.mark_incomplete(
                "this task made calls whose results this process has not seen")
        return ledger

    def refused_tools(self, task_id: str) -> list[str]:
        """The tools of the task's calls a human refused (from the store: approvals are
        decided in other processes). Raises `StoreError`."""
        return self._store.approvals.refused_tools(task_id)

    def provenance(self, qualified: str) -> flow.Provenance:
        """Labels for results of `qualified` (`server/tool` or `tool`), from the config."""
        names = {qualified, qualified.rpartition("/")[2]}
        return flow.Provenance(
            source=qualified,
            integrity=flow.Integrity.TRUSTED if names & self._trusted
            else flow.Integrity.UNTRUSTED,
            confidentiality=flow.Confidentiality.SECRET if names & self._secret
            else flow.Confidentiality.INTERNAL)

    def observe(self, task_id: str, tool: str, result: Any, *,
                canonical: bytes | None = None) -> int:
        """Index what `tool` (qualified name) returned into its session's ledger.

        `canonical` is `canonical_json(result)` when the caller has it already
        (it is what the store keeps; a large result is not serialised twice).
        Returns how many spans the injection detector flagged. If indexing fails
        the ledger can no longer vouch for the session.
        """
        ledger = self.ledger(task_id)
        with self._lock:  # one writer at a time per process keeps each ledger consistent
            flagged = self._index(ledger, tool, result)
        self._keep(task_id, tool, result, canonical)
        return flagged

    def note_no_result(self, task_id: str, tool: str) -> None:
        """An allowed call ran but returned nothing to index (it failed): count it."""
        self._keep(task_id, tool, None)

    def _index(self, ledger: flow.Ledger, tool: str, result: Any) -> int:
        try:
            return ledger.observe(result, self.provenance(tool), self._find_spans)
        except Exception as exc:
            log.exception("could not index a result of %s", tool)
            ledger.mark_incomplete(f"a result of `{tool}` could not be indexed: {exc}")
            return 0

    def _keep(self, task_id: str, tool: str, result: Any,
              canonical: bytes | None = None) -> None:
        if not self.persist:
            return
        payload: str | None = None
        if canonical is not None:
            payload = canonical.decode()
        elif result is not None:
            try:
                payload = canonical_json(result).decode()
            except (TypeError, ValueError):
                payload = json.dumps(repr(result))
            if len(payload) > MAX_KEPT_RESULT_CHARS:
                payload = _TOO_LARGE
        now = time.time()
        try:
            self._store.observations.append(task_id, tool, payload, now=now,
                                            expires_at=now + RETENTION_SECONDS)
        except StoreError:
            # Another process rebuilding this ledger will count one observation too
            # few and mark it incomplete: fail closed there, keep serving here.
            log.exception("could not keep a result of %s for other processes", tool)


class TraceDataFlow:
    """Trace the call's arguments through the session ledger; policy reads the labels."""

    def __init__(self, ledgers: SessionLedgers):
        self._ledgers = ledgers

    def __call__(self, ctx: CallContext) -> Effect | None:
        assert ctx.warrant is not None
        ledger = self._ledgers.ledger(ctx.warrant.task_id)
        refused: list[str] | None = []
        if ctx.tool is not None and ctx.tool.risk_class is not RiskClass.READ_ONLY:
            # An agent acting on another agent's message inherits that agent's record:
            # a refusal there makes what it asked for suspect here too.
            tasks = [ctx.warrant.task_id]
            if ctx.requester is not None and ctx.requester.task_id not in tasks:
                tasks.append(ctx.requester.task_id)
            try:
                refused = [tool for task in tasks for tool in self._ledgers.refused_tools(task)]
            except StoreError:
                # Unknown whether the agent was caught acting against its user: the
                # trace says the ledger cannot vouch (fail closed), this call only.
                log.exception("could not read the refused approvals of a task")
                refused = None
        trace = ledger.trace(ctx.arguments(), refused=refused)
        ctx.flow = trace
        ctx.labels |= trace.labels
        if not trace.clean:
            ctx.detail["flow"] = _audited(trace)
        return None


def _audited(trace: flow.FlowTrace) -> dict[str, Any]:
    """The trace as the audit record and the approval queue show it, without secrets.

    Notes quote what could not be traced (a URL, a path with its keys) and the
    argument names are the caller's: both are redacted. Labels and sources are
    Warrant's own words (and catalogue names), so they skip the scan.
    """
    names = sorted(trace.arguments)
    shown, _ = scanners.redact_sensitive(
        {"names": dict.fromkeys(names, 0), "notes": list(trace.notes)}, categories=SECRETS)
    assert isinstance(shown, dict)
    return {
        "labels": sorted(trace.labels),
        "arguments": {shown_name: sorted(trace.arguments[name])
                      for name, shown_name in zip(names, shown["names"], strict=True)},
        "sources": sorted(trace.sources),
        "notes": shown["notes"],
    }


def injection_span_finder(*, use_classifier: bool | None,
                          threshold: float | None = None) -> flow.SpanFinder:
    """Spans of untrusted text the injection detector judges to be instructions."""
    detector = scanners.InjectionDetector(use_classifier=use_classifier, threshold=threshold)

    def find(text: str) -> Sequence[tuple[int, int]]:
        verdict = detector.scan(text)
        if not verdict.flagged:
            return ()
        return verdict.spans or ((0, len(text)),)

    return find

