"""Incidents, their alerts and timelines: what the response engine found and did.

An alert is one detection firing; alerts that share a correlation key (agent +
detection) within a window join one incident. Every alert is triaged (its
`triaged_at` is set once evidence and a disposition were written), so coverage
= triaged / total is a query. Times are UNIX seconds (floats).

The tables are created idempotently in the file given (the response engine
uses `incidents.db` in the domain home), behind this class's own connection:
the engine writes them from its own thread without touching the decision
path's connection, lock or database file.

INVARIANT: every method either completes its transaction or raises `StoreError`.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warrant.errors import StoreError

from ._transaction import transaction

INCIDENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    incident_id TEXT PRIMARY KEY, correlation_key TEXT NOT NULL, opened_at REAL NOT NULL,
    updated_at REAL NOT NULL, severity TEXT NOT NULL, status TEXT NOT NULL, agent TEXT,
    task_id TEXT, title TEXT NOT NULL, detections TEXT NOT NULL, evidence TEXT NOT NULL,
    disposition TEXT NOT NULL, first_event_at REAL NOT NULL, contained_at REAL,
    acked_at REAL, acked_by TEXT, closed_at REAL, closed_by TEXT
);
CREATE INDEX IF NOT EXISTS incidents_key ON incidents(correlation_key, status, updated_at);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY, incident_id TEXT NOT NULL, detection TEXT NOT NULL,
    severity TEXT NOT NULL, at REAL NOT NULL, event_at REAL NOT NULL, agent TEXT,
    task_id TEXT, seqs TEXT NOT NULL, summary TEXT NOT NULL, triaged_at REAL
);
CREATE INDEX IF NOT EXISTS alerts_incident ON alerts(incident_id);
CREATE TABLE IF NOT EXISTS incident_timeline (
    incident_id TEXT NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timeline_incident ON incident_timeline(incident_id, at);
"""

STATUSES = ("open", "acked", "contained", "closed")


@dataclass(frozen=True, slots=True)
class Incident:
    """One incident row, its alerts and its timeline (each a JSON-ready dict)."""

    incident_id: str
    opened_at: float
    updated_at: float
    severity: str
    status: str
    agent: str | None
    task_id: str | None
    title: str
    detections: list[str]
    evidence: dict[str, Any]
    disposition: dict[str, Any]
    first_event_at: float
    contained_at: float | None
    acked_at: float | None
    acked_by: str | None
    closed_at: float | None
    closed_by: str | None
    alerts: list[dict[str, Any]]
    timeline: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


_INCIDENT_COLUMNS = (
    "incident_id, opened_at, updated_at, severity, status, agent, task_id, title, detections, "
    "evidence, disposition, first_event_at, contained_at, acked_at, acked_by, closed_at, "
    "closed_by")
_ALERT_COLUMNS = ("alert_id", "incident_id", "detection", "severity", "at", "event_at", "agent",
                  "task_id", "seqs", "summary", "triaged_at")


class SqliteIncidents:
    """Incident, alert and timeline rows in one SQLite file (normally `incidents.db`)."""

    def __init__(self, path: Path | str):
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout = 10000")
            if str(path) != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.executescript(INCIDENTS_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the incident tables in `{path}`: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._conn, self._lock, "incident store")

    # -- writing -----------------------------------------------------------------------------

    def open_or_join(self, *, key: str, window_seconds: float, now: float, severity: str,
                     severity_rank: Mapping[str, int], agent: str | None, task_id: str | None,
                     title: str, detection: str, event_at: float) -> tuple[str, bool, bool]:
        """The incident for `key` updated within the window (not closed), or a new one.

        Returns `(incident_id, opened, escalated)`; joining raises the incident's
        severity to the alert's when the alert's is higher.
        """
        with self._tx() as c:
            row = c.execute(
                "SELECT incident_id, severity, detections FROM incidents WHERE correlation_key = ?"
                " AND status != 'closed' AND updated_at >= ? ORDER BY updated_at DESC LIMIT 1",
                (key, now - window_seconds)).fetchone()
            if row is None:
                incident_id = f"inc-{uuid.uuid4().hex[:12]}"
                c.execute("INSERT INTO incidents (correlation_key, "  # noqa: S608 - constant
                          f"{_INCIDENT_COLUMNS}) VALUES (?,?,?,?,?, 'open', ?,?,?,?, '{{}}', "
                          "'{}', ?, NULL, NULL, NULL, NULL, NULL)",
                          (key, incident_id, now, now, severity, agent, task_id, title,
                           json.dumps([detection]), event_at))
                return incident_id, True, False
            incident_id, current, detections = str(row[0]), str(row[1]), json.loads(row[2])
            escalated = severity_rank.get(severity, 0) > severity_rank.get(current, 0)
            if detection not in detections:
                detections.append(detection)
            c.execute("UPDATE incidents SET updated_at = ?, severity = ?, detections = ? "
                      "WHERE incident_id = ?",
                      (now, severity if escalated else current, json.dumps(detections),
                       incident_id))
            return incident_id, False, escalated

    def add_alert(self, *, incident_id: str, detection: str, severity: str, at: float,
                  event_at: float, agent: str | None, task_id: str | None, seqs: list[int],
                  summary: str) -> str:
        alert_id = f"alr-{uuid.uuid4().hex[:12]}"
        with self._tx() as c:
            c.execute("INSERT INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?, NULL)",
                      (alert_id, incident_id, detection, severity, at, event_at, agent, task_id,
                       json.dumps(seqs), summary[:500]))
        return alert_id

    def add_timeline(self, incident_id: str, at: float, kind: str,
                     detail: Mapping[str, Any]) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO incident_timeline VALUES (?,?,?,?)",
                      (incident_id, at, kind, json.dumps(dict(detail), default=str)))

    def set_triage(self, incident_id: str, alert_ids: list[str], *, at: float,
                   evidence: Mapping[str, Any], disposition: Mapping[str, Any]) -> None:
        """Write the incident's evidence and disposition and mark its alerts triaged."""
        with self._tx() as c:
            c.execute("UPDATE incidents SET evidence = ?, disposition = ? WHERE incident_id = ?",
                      (json.dumps(dict(evidence), default=str),
                       json.dumps(dict(disposition), default=str), incident_id))
            c.executemany("UPDATE alerts SET triaged_at = ? WHERE alert_id = ?",
                          [(at, a) for a in alert_ids])

    def mark_contained(self, incident_id: str, at: float) -> bool:
        """Set `contained_at` once (the first containment); False if it was already set."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE incidents SET contained_at = ?, status = CASE WHEN status = 'closed' "
                "THEN status ELSE 'contained' END WHERE incident_id = ? AND contained_at IS NULL",
                (at, incident_id))
            return cur.rowcount == 1

    def set_status(self, incident_id: str, status: str, *, by: str, at: float) -> Incident:
        """A human acknowledges (`acked`) or closes (`closed`) an incident."""
        if status not in ("acked", "closed"):
            raise StoreError(f"an incident can be set to `acked` or `closed`, not `{status}`")
        with self._tx() as c:
            row = c.execute("SELECT status FROM incidents WHERE incident_id = ?",
                            (incident_id,)).fetchone()
            if row is None:
                raise StoreError(f"no incident `{incident_id}`")
            if row[0] == "closed":
                raise StoreError(f"incident `{incident_id}` is already closed")
            if status == "acked":
                # A contained incident stays `contained`; the ack is recorded either way.
                c.execute("UPDATE incidents SET acked_at = COALESCE(acked_at, ?), acked_by = "
                          "COALESCE(acked_by, ?), status = CASE WHEN status = 'open' THEN "
                          "'acked' ELSE status END WHERE incident_id = ?", (at, by, incident_id))
            else:
                c.execute("UPDATE incidents SET closed_at = ?, closed_by = ?, status = 'closed',"
                          " acked_at = COALESCE(acked_at, ?), acked_by = COALESCE(acked_by, ?)"
                          " WHERE incident_id = ?", (at, by, at, by, incident_id))
            c.execute("INSERT INTO incident_timeline VALUES (?,?,?,?)",
                      (incident_id, at, status, json.dumps({"by": by})))
        found = self.get(incident_id)
        assert found is not None
        return found

    # -- reading -----------------------------------------------------------------------------

    def _query(self, sql: str,
               params: tuple[object, ...] = ()) -> builtins.list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"incident store read failed: {exc}") from exc

    def get(self, incident_id: str) -> Incident | None:
        rows = self._query(f"SELECT {_INCIDENT_COLUMNS} FROM incidents "  # noqa: S608 - constant
                           "WHERE incident_id = ?", (incident_id,))
        return self._incident(rows[0]) if rows else None

    def list(self, *, status: str | None = None, limit: int = 100) -> list[Incident]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = self._query(f"SELECT {_INCIDENT_COLUMNS} FROM incidents {where} "  # noqa: S608 - constant
                           "ORDER BY opened_at DESC LIMIT ?", (*params, limit))
        return [self._incident(r) for r in rows]

    def alerts(self, incident_id: str | None = None) -> builtins.list[dict[str, Any]]:
        where, params = ("WHERE incident_id = ?", (incident_id,)) if incident_id else ("", ())
        rows = self._query(f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts {where} "  # noqa: S608 - constant
                           "ORDER BY at", params)
        return [{**dict(zip(_ALERT_COLUMNS, r, strict=True)), "seqs": json.loads(r[8])}
                for r in rows]

    def _incident(self, row: tuple[Any, ...]) -> Incident:
        timeline = [{"at": at, "kind": kind, "detail": json.loads(detail)}
                    for at, kind, detail in self._query(
                        "SELECT at, kind, detail FROM incident_timeline WHERE incident_id = ? "
                        "ORDER BY at, rowid", (row[0],))]
        return Incident(
            incident_id=row[0], opened_at=row[1], updated_at=row[2], severity=row[3],
            status=row[4], agent=row[5], task_id=row[6], title=row[7],
            detections=json.loads(row[8]), evidence=json.loads(row[9]),
            disposition=json.loads(row[10]), first_event_at=row[11], contained_at=row[12],
            acked_at=row[13], acked_by=row[14], closed_at=row[15], closed_by=row[16],
            alerts=self.alerts(row[0]), timeline=timeline)
