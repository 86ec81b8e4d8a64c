"""Pending human approvals for calls that policy marked `needs-approval`.

An approval is bound to the exact call: agent, task, qualified tool name and
the SHA-256 of the canonical arguments. It is used at most once: the retried
call that matches an approved entry consumes it atomically.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from warrant.errors import StoreError

from ._transaction import transaction

APPROVALS_SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    approval_id TEXT PRIMARY KEY, created_at REAL NOT NULL, expires_at REAL NOT NULL,
    agent_id TEXT NOT NULL, task_id TEXT NOT NULL, tool TEXT NOT NULL,
    argument_digest TEXT NOT NULL, arguments TEXT NOT NULL, reasons TEXT NOT NULL,
    decision_id TEXT NOT NULL, status TEXT NOT NULL, decided_by TEXT, decided_at REAL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS approvals_call
    ON approvals(agent_id, task_id, tool, argument_digest, status);
CREATE INDEX IF NOT EXISTS approvals_task ON approvals(task_id, status);
"""

STATUSES = ("pending", "approved", "denied", "used")


@dataclass(frozen=True, slots=True)
class Approval:
    """One held call and what a human decided about it."""

    approval_id: str
    created_at: float
    expires_at: float
    agent_id: str
    task_id: str
    tool: str
    argument_digest: str
    arguments: dict[str, Any]
    reasons: list[dict[str, str]]
    decision_id: str
    status: str
    decided_by: str | None
    decided_at: float | None
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class SqliteApprovals:
    """Approval rows in the shared state database (uses the store's connection)."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock):
        self._conn, self._lock = conn, lock

    def hold(self, *, agent_id: str, task_id: str, tool: str, argument_digest: str,
             arguments: dict[str, Any], reasons: list[dict[str, str]], decision_id: str,
             now: float, ttl_seconds: float) -> Approval:
        """The pending approval for this exact call, created if there is none yet."""
        with transaction(self._conn, self._lock, "approval store") as c:
            row = c.execute(
                "SELECT * FROM approvals WHERE agent_id = ? AND task_id = ? AND tool = ? "
                "AND argument_digest = ? AND status = 'pending' AND expires_at > ?",
                (agent_id, task_id, tool, argument_digest, now)).fetchone()
            if row is None:
                approval_id = f"apr-{uuid.uuid4().hex[:12]}"
                c.execute(
                    "INSERT INTO approvals VALUES (?,?,?,?,?,?,?,?,?,?, 'pending', "
                    "NULL, NULL, NULL)",
                    (approval_id, now, now + ttl_seconds, agent_id, task_id, tool,
                     argument_digest, json.dumps(arguments), json.dumps(reasons),
                     decision_id))
                row = c.execute("SELECT * FROM approvals WHERE approval_id = ?",
                                (approval_id,)).fetchone()
        return _from_row(row)

    def consume(self, *, agent_id: str, task_id: str, tool: str, argument_digest: str,
                now: float) -> Approval | None:
        """Use an approved, unexpired approval for exactly this call, once; None if none."""
        with self._lock:
            try:
                row = self._conn.execute(
                    "UPDATE approvals SET status = 'used' WHERE approval_id = ("
                    "  SELECT approval_id FROM approvals WHERE agent_id = ? AND task_id = ? "
                    "  AND tool = ? AND argument_digest = ? AND status = 'approved' "
                    "  AND expires_at > ? ORDER BY decided_at LIMIT 1) RETURNING *",
                    (agent_id, task_id, tool, argument_digest, now)).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"approval could not be read: {exc}") from exc
        return None if row is None else _from_row(row)

    def decide(self, approval_id: str, *, approve: bool, by: str, now: float,
               note: str | None) -> Approval:
        """Approve or deny a pending approval. Only an unexpired one can be approved; an
        expired one can still be denied, so the refusal counts (it raises the guard on
        the rest of the task: `refused_tools`)."""
        status = "approved" if approve else "denied"
        # An expired hold can never be approved, only refused: a denial has no cut-off.
        not_before = now if approve else float("-inf")
        with self._lock:
            try:
                row = self._conn.execute(
                    "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, note = ? "
                    "WHERE approval_id = ? AND status = 'pending' AND expires_at > ? RETURNING *",
                    (status, by, now, note, approval_id, not_before)).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"approval could not be updated: {exc}") from exc
        if row is None:
            current = self.get(approval_id)
            if current is None:
                raise StoreError(f"no approval `{approval_id}`")
            state = "expired" if current.expires_at <= now else current.status
            raise StoreError(f"approval `{approval_id}` is {state}, not pending")
        return _from_row(row)

    def refused_tools(self, task_id: str) -> list[str]:
        """The tools of `task_id`'s calls a human refused, oldest first (each once)."""
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT tool FROM approvals WHERE task_id = ? AND status = 'denied' "
                    "GROUP BY tool ORDER BY MIN(decided_at)", (task_id,)).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"approvals could not be read: {exc}") from exc
        return [str(row[0]) for row in rows]

    def get(self, approval_id: str) -> Approval | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM approvals WHERE approval_id = ?",
                                     (approval_id,)).fetchone()
        return None if row is None else _from_row(row)

    def list(self, *, pending_only: bool, now: float) -> list[Approval]:
        sql = "SELECT * FROM approvals"
        params: tuple[Any, ...] = ()
        if pending_only:
            sql += " WHERE status = 'pending' AND expires_at > ?"
            params = (now,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY created_at", params).fetchall()
        return [_from_row(r) for r in rows]


def _from_row(row: tuple[Any, ...]) -> Approval:
    (approval_id, created_at, expires_at, agent_id, task_id, tool, argument_digest, arguments,
     reasons, decision_id, status, decided_by, decided_at, note) = row
    return Approval(
        approval_id=str(approval_id), created_at=float(created_at),
        expires_at=float(expires_at), agent_id=str(agent_id), task_id=str(task_id),
        tool=str(tool), argument_digest=str(argument_digest), arguments=json.loads(arguments),
        reasons=json.loads(reasons), decision_id=str(decision_id), status=str(status),
        decided_by=None if decided_by is None else str(decided_by),
        decided_at=None if decided_at is None else float(decided_at),
        note=None if note is None else str(note))
