"""What each task's agent has seen: the tool results its data-flow ledger indexed.

The session ledger lives in the memory of the process that enforces calls; a
restarted gateway or a one-shot hook process (Claude Code runs one per tool
use) starts without it. Each observed result is therefore also appended here,
so another process rebuilds the same ledger by replaying them in order. A row
with no payload records that an allowed call ran and returned nothing to
index (it failed): the count of rows is how a rebuilding process knows whether
it has seen every call the task made.

Rows hold raw tool results (what the ledger must match against), so they live
only as long as the task's warrant (`expires_at`) and are purged after it.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass

from ._transaction import transaction

OBSERVATIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS flow_observations (
    task_id TEXT NOT NULL, seq INTEGER NOT NULL, tool TEXT NOT NULL, payload TEXT,
    observed_at REAL NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY (task_id, seq)
);
CREATE INDEX IF NOT EXISTS flow_observations_expiry ON flow_observations(expires_at);
"""


@dataclass(frozen=True, slots=True)
class Observation:
    """One result a task's agent saw: the tool and the result's canonical JSON (or None)."""

    seq: int
    tool: str
    payload: str | None


class SqliteObservations:
    """The `flow_observations` table of `state.db`."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock):
        self._conn, self._lock = conn, lock
        self._appends = 0

    def append(self, task_id: str, tool: str, payload: str | None, *, now: float,
               expires_at: float) -> int:
        """Record one observation after the task's last; returns its sequence number."""
        with transaction(self._conn, self._lock, "state database") as c:
            row = c.execute("SELECT COALESCE(MAX(seq), 0) FROM flow_observations "
                            "WHERE task_id = ?", (task_id,)).fetchone()
            seq = int(row[0]) + 1
            c.execute("INSERT INTO flow_observations VALUES (?,?,?,?,?,?)",
                      (task_id, seq, tool, payload, now, expires_at))
            self._appends += 1
            if self._appends % 256 == 0:
                # Expired tasks' results are not kept: they were only ever for enforcement.
                c.execute("DELETE FROM flow_observations WHERE expires_at < ?", (now,))
            return seq

    def list(self, task_id: str) -> list[Observation]:
        with transaction(self._conn, self._lock, "state database") as c:
            rows = c.execute("SELECT seq, tool, payload FROM flow_observations "
                             "WHERE task_id = ? ORDER BY seq", (task_id,)).fetchall()
        return [Observation(int(seq), str(tool), None if payload is None else str(payload))
                for seq, tool, payload in rows]

    def purge_expired(self, now: float) -> int:
        with transaction(self._conn, self._lock, "state database") as c:
            return int(c.execute("DELETE FROM flow_observations WHERE expires_at < ?",
                                 (now,)).rowcount)
