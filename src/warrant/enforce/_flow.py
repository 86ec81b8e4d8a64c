"""The data-flow stage: every call's arguments traced through the session ledger.

One `Ledger` per task (session), kept by `SessionLedgers` in the PEP's process:
results are observed into it after each allowed call runs
(`Pipeline.record_outcome`), and before policy each call's arguments are traced
through it. The trace's labels reach Cedar in `context.labels`; the default
pack's flow rules decide with them (see `policy/pack/flow.cedar`).

Fail closed: a ledger that is new to this process while the task already made
calls (a restarted gateway), that overflowed, or
that was evicted cannot vouch for anything, so its traces say
`ledger-incomplete`; a detector that crashes flags the whole text it was given.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from warrant import flow, scanners
from warrant.config import DomainConfig
from warrant.store import StateStore
from warrant.types import Effect

from ._context import CallContext

log = logging.getLogger("warrant.flow")

#: Sessions kept per process; the least recently used beyond this is dropped
#: (and a later call of that task is traced as `ledger-incomplete`).
MAX_SESSIONS = 1024
_MAX_FORGOTTEN = 65_536


class SessionLedgers:
    """The ledgers of the sessions this process enforces, one per task id."""

    def __init__(self, store: StateStore, config: DomainConfig,
                 find_spans: flow.SpanFinder | None = None, *,
                 observes_results: bool = True, max_sessions: int = MAX_SESSIONS):
        self._store = store
        #: False for one-shot PEPs that never see results (a pre-tool-use hook,
        #: `warrant check`): their ledgers hold only the user's instruction, so
        #: any destination not in it is unverified.
        self.observes_results = observes_results
        self._trusted = frozenset(config.flow_trusted_tools)
        self._secret = frozenset(config.flow_secret_tools)
        self._find_spans = find_spans
        self._max = max_sessions
        self._ledgers: OrderedDict[str, flow.Ledger] = OrderedDict()
        self._forgotten: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def ledger(self, task_id: str) -> flow.Ledger:
        with self._lock:
            found = self._ledgers.get(task_id)
            if found is not None:
                self._ledgers.move_to_end(task_id)
                return found
            ledger = flow.Ledger()
            instruction = self._store.get_instruction(task_id)
            if instruction:
                ledger.add_instruction(instruction)
            if task_id in self._forgotten:
                ledger.mark_incomplete("this session's ledger was dropped to bound memory")
            elif self.observes_results and self._store.budget_used(task_id) > 0:
                ledger.mark_incomplete(
                    "this task made calls this process did not see (its ledger starts empty)")
            self._ledgers[task_id] = ledger
            while len(self._ledgers) > self._max:
                old, _ = self._ledgers.popitem(last=False)
                self._forgotten[old] = None
                while len(self._forgotten) > _MAX_FORGOTTEN:
                    self._forgotten.popitem(last=False)
            return ledger

    def provenance(self, qualified: str) -> flow.Provenance:
        """Labels for results of `qualified` (`server/tool` or `tool`), from the config."""
        names = {qualified, qualified.rpartition("/")[2]}
        return flow.Provenance(
            source=qualified,
            integrity=flow.Integrity.TRUSTED if names & self._trusted
            else flow.Integrity.UNTRUSTED,
            confidentiality=flow.Confidentiality.SECRET if names & self._secret
            else flow.Confidentiality.INTERNAL)

    def observe(self, task_id: str, tool: str, result: Any) -> int:
        """Index what `tool` (qualified name) returned into its session's ledger.

        Returns how many spans the injection detector flagged. If indexing fails
        the ledger can no longer vouch for the session.
        """
        ledger = self.ledger(task_id)
        with self._lock:  # one writer at a time per process keeps each ledger consistent
            try:
                return ledger.observe(result, self.provenance(tool), self._find_spans)
            except Exception as exc:
                log.exception("could not index a result of %s", tool)
                ledger.mark_incomplete(f"a result of `{tool}` could not be indexed: {exc}")
                return 0


class TraceDataFlow:
    """Trace the call's arguments through the session ledger; policy reads the labels."""

    def __init__(self, ledgers: SessionLedgers):
        self._ledgers = ledgers

    def __call__(self, ctx: CallContext) -> Effect | None:
        assert ctx.warrant is not None
        ledger = self._ledgers.ledger(ctx.warrant.task_id)
        trace = ledger.trace(ctx.arguments())
        ctx.flow = trace
        ctx.labels |= trace.labels
        if not trace.clean:
            ctx.detail["flow"] = {
                "labels": sorted(trace.labels),
                "arguments": {k: sorted(v) for k, v in sorted(trace.arguments.items())},
                "sources": sorted(trace.sources),
                "notes": list(trace.notes),
            }
        return None


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

