"""First-pass triage: the evidence bundle and a drafted disposition for every incident.

Evidence is what an investigator would fetch first: the related audit records
with RFC 9162 inclusion proofs against one tree head (verifiable offline with
the domain's public key), the principal chain, the task and what its warrant
grants. The disposition drafts what happened, the blast radius and the next
step; a human decides the rest.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from warrant.audit import AuditRecord
from warrant.store import Incident

from ._model import ResponseDomain

#: Evidence keeps the most recent related records (each with an O(log n) proof).
MAX_EVIDENCE_RECORDS = 8
#: Tasks the book remembers; the least recently minted or looked-up go first.
MAX_TASKS = 50_000


class TaskBook:
    """Open tasks per agent and the tools their warrants grant, learned from the stream.

    Fed with `warrant.mint` and `revoke` admin records (primed from the log's
    tail at start), so triage can state a blast radius without new store queries.
    INVARIANT: at most `max_tasks` tasks are kept (least recently used evicted),
    so a long-running engine's memory stays bounded however many tasks are minted.
    """

    def __init__(self, max_tasks: int = MAX_TASKS) -> None:
        if max_tasks < 1:
            raise ValueError("a task book must hold at least one task")
        self._lock = threading.Lock()
        self._max = max_tasks
        self._tasks: OrderedDict[str, tuple[str, tuple[str, ...]]] = OrderedDict()
        # What every task's warrant granted, revoked or not: evidence states what
        # the incident's task could do, even after containment revoked it.
        self._granted: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._granted)

    def observe(self, record: AuditRecord) -> None:
        if record.kind != "admin" or not record.detail:
            return
        detail = record.detail
        if record.tool == "warrant.mint" and isinstance(detail.get("task_id"), str):
            tools = tuple(str(t) for t in detail.get("tools") or ())
            task = str(detail["task_id"])
            with self._lock:
                self._tasks[task] = (str(detail.get("agent")), tools)
                self._granted[task] = tools
                self._tasks.move_to_end(task)
                self._granted.move_to_end(task)
                for book in (self._tasks, self._granted):
                    while len(book) > self._max:
                        book.popitem(last=False)
        elif record.tool == "revoke":
            kind, value = detail.get("kind"), str(detail.get("value"))
            with self._lock:
                if kind == "task":
                    self._tasks.pop(value, None)
                elif kind == "agent":
                    for task in [t for t, v in self._tasks.items() if v[0] == value]:
                        del self._tasks[task]

    def tools_of(self, task_id: str | None) -> list[str]:
        """The tools the task's warrant granted (also after it was revoked)."""
        with self._lock:
            tools = self._granted.get(task_id or "")
            if tools is None:
                return []
            self._granted.move_to_end(task_id or "")  # an incident's task stays remembered
            return list(tools)

    def open_tasks(self, agent: str | None) -> list[str]:
        with self._lock:
            return sorted(t for t, (a, _) in self._tasks.items() if a == agent)


def gather_evidence(domain: ResponseDomain, seqs: Iterable[int],
                    tasks: TaskBook, task_id: str | None) -> dict[str, Any]:
    """Related records with inclusion proofs against the current tree head."""
    size, root = domain.audit.head()
    records: list[dict[str, Any]] = []
    chain: list[str] = []
    for seq in sorted({s for s in seqs if 0 <= s < size})[-MAX_EVIDENCE_RECORDS:]:
        record = domain.audit.get(seq).record
        proof = domain.audit.inclusion_proof(seq, size)
        chain = chain or list(record.principal_chain)
        records.append({"seq": seq, "record": record.to_json(),
                        "inclusion_proof": {"tree_size": proof.tree_size,
                                            "hashes": [h.hex() for h in proof.hashes]}})
    return {"tree_size": size, "root": root.hex(), "records": records,
            "principal_chain": chain, "task_id": task_id,
            "warrant": {"task_id": task_id, "tools": tasks.tools_of(task_id)}}


#: Detections whose subject is a tool the catalogue has quarantined, not an agent.
_TOOL_DETECTIONS = frozenset({"response.tool-quarantined"})


def draft_disposition(incident: Incident, tasks: TaskBook,
                      pending: Iterable[str]) -> dict[str, Any]:
    """What happened, how far it could reach, and the suggested next step."""
    alerts = incident.alerts
    actions = [t["detail"] for t in incident.timeline if t["kind"] == "action"]
    pending = sorted(set(pending))
    open_tasks = tasks.open_tasks(incident.agent)
    tools_only = incident.agent is None and set(incident.detections) <= _TOOL_DETECTIONS
    if tools_only:  # the catalogue already contained it: no agent to revoke or suspend
        next_step = ("the tool is quarantined (calls are denied): compare its definitions "
                     "with `warrant tools show`, then `warrant tools approve` the new one "
                     "or keep it quarantined")
    elif incident.contained_at is None and incident.severity in ("high", "critical"):
        next_step = "contain now: revoke the task or suspend the agent (nothing was revoked)"
    elif pending:
        next_step = f"decide the steps waiting for approval: {', '.join(pending)}"
    elif incident.contained_at is not None:
        next_step = ("review the evidence, rotate any secret the agent could reach, then close;"
                     " re-issue credentials only after the cause is fixed")
    else:
        next_step = "review the evidence and acknowledge, or close as benign"
    return {
        "what_happened": "; ".join(dict.fromkeys(a["summary"] for a in alerts))[:1000],
        "detections": incident.detections,
        "severity": incident.severity,
        "blast_radius": {"agent": incident.agent, "task_id": incident.task_id,
                         "tools_granted": tasks.tools_of(incident.task_id),
                         "open_tasks": open_tasks},
        "containment": [a.get("outcome") for a in actions if isinstance(a, Mapping)],
        "pending_approval": pending,
        "suggested_next_step": next_step,
    }
