"""Pinned MCP tool definitions and their quarantine state (rug-pull and poisoning defence).

A pin is the SHA-256 of a tool's canonical definition (name, description, input
schema, annotations) as first seen, with the definition itself so a person can
compare. Next to it sits the definition the gateway saw last, the status
(`active` or `quarantined`), why, and the scanner's findings.

The gateway writes here; `warrant tools approve|quarantine` writes here too, from
another process, so the gateway reads the status on every call rather than
caching it. The table lives in the shared `state.db` and is created idempotently.

INVARIANT: a changed definition never becomes the pin without `approve`, which
the CLI only calls for a person (and audits first).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warrant.errors import StoreError

from ._transaction import transaction

PINS_SCHEMA = """
CREATE TABLE IF NOT EXISTS tool_pins (
    qualified_name TEXT PRIMARY KEY, pinned_digest TEXT NOT NULL, pinned_definition TEXT NOT NULL,
    seen_digest TEXT NOT NULL, seen_definition TEXT NOT NULL, status TEXT NOT NULL,
    reason TEXT NOT NULL, findings TEXT NOT NULL, pinned_at REAL NOT NULL,
    updated_at REAL NOT NULL, decided_by TEXT
);
"""

ACTIVE, QUARANTINED = "active", "quarantined"


@dataclass(frozen=True, slots=True)
class ToolPin:
    """One pinned tool: the accepted definition, the last one seen, and its status."""

    qualified_name: str
    pinned_digest: str
    pinned_definition: dict[str, Any]
    seen_digest: str
    seen_definition: dict[str, Any]
    status: str
    reason: str
    findings: list[dict[str, str]]
    pinned_at: float
    updated_at: float
    decided_by: str | None

    @property
    def quarantined(self) -> bool:
        return self.status != ACTIVE

    @property
    def changed(self) -> bool:
        """The last definition seen differs from the pinned one."""
        return self.seen_digest != self.pinned_digest

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class SqlitePins:
    """Tool pins in the shared state database, on their own connection."""

    def __init__(self, path: Path):
        if not path.exists():
            raise StoreError(f"state database `{path}` does not exist",
                             hint="run `warrant init` first, or check --home / $WARRANT_HOME")
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(f"file:{path}", uri=True, timeout=10.0,
                                         isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout = 10000")
            self._conn.executescript(PINS_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot prepare tool pins in `{path}`: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._conn, self._lock, "state database")

    def get(self, qualified_name: str) -> ToolPin | None:
        with self._lock:
            try:
                row = self._conn.execute("SELECT * FROM tool_pins WHERE qualified_name = ?",
                                         (qualified_name,)).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"state database read failed: {exc}") from exc
        return _pin(row) if row else None

    def status(self, qualified_name: str) -> tuple[str, str] | None:
        """(status, reason) of a pinned tool, or None if it was never seen (hot path)."""
        with self._lock:
            try:
                row = self._conn.execute(
                    "SELECT status, reason FROM tool_pins WHERE qualified_name = ?",
                    (qualified_name,)).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"state database read failed: {exc}") from exc
        return (str(row[0]), str(row[1])) if row else None

    def all(self) -> list[ToolPin]:
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT * FROM tool_pins ORDER BY qualified_name").fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"state database read failed: {exc}") from exc
        return [_pin(r) for r in rows]

    def observe(self, qualified_name: str, *, digest: str, definition: dict[str, Any],
                findings: list[dict[str, str]], now: float) -> tuple[ToolPin, bool]:
        """Record a definition the gateway just saw; returns (pin, newly quarantined).

        First sight pins it (quarantined at once when there are findings). A
        digest different from the pin quarantines it. The same digest changes
        nothing: a quarantined tool stays quarantined until a person decides.
        """
        text = json.dumps(definition, sort_keys=True)
        with self._tx() as c:
            row = c.execute("SELECT * FROM tool_pins WHERE qualified_name = ?",
                            (qualified_name,)).fetchone()
            if row is None:
                status, reason = ((QUARANTINED, "poisoning findings in its definition")
                                  if findings else (ACTIVE, "pinned at first sight"))
                c.execute("INSERT INTO tool_pins VALUES (?,?,?,?,?,?,?,?,?,?,NULL)",
                          (qualified_name, digest, text, digest, text, status, reason,
                           json.dumps(findings), now, now))
                return self._get_in(c, qualified_name), status == QUARANTINED
            pin = _pin(row)
            if digest == pin.seen_digest:
                return pin, False
            if digest == pin.pinned_digest:
                # Back to the accepted version; a quarantine still waits for a person.
                c.execute("UPDATE tool_pins SET seen_digest = ?, seen_definition = ?, "
                          "updated_at = ? WHERE qualified_name = ?",
                          (digest, text, now, qualified_name))
                return self._get_in(c, qualified_name), False
            reason = "its definition changed since it was pinned"
            if findings:
                reason += ", and the new one has poisoning findings"
            c.execute("UPDATE tool_pins SET seen_digest = ?, seen_definition = ?, status = ?, "
                      "reason = ?, findings = ?, updated_at = ? WHERE qualified_name = ?",
                      (digest, text, QUARANTINED, reason, json.dumps(findings), now,
                       qualified_name))
            return self._get_in(c, qualified_name), not pin.quarantined

    def approve(self, qualified_name: str, *, by: str, now: float) -> ToolPin:
        """Accept the last definition seen as the new pin and lift the quarantine."""
        with self._tx() as c:
            if c.execute("SELECT 1 FROM tool_pins WHERE qualified_name = ?",
                         (qualified_name,)).fetchone() is None:
                raise StoreError(f"no pinned tool `{qualified_name}`")
            c.execute("UPDATE tool_pins SET pinned_digest = seen_digest, "
                      "pinned_definition = seen_definition, status = ?, reason = ?, "
                      "pinned_at = ?, updated_at = ?, decided_by = ? WHERE qualified_name = ?",
                      (ACTIVE, f"approved by {by}", now, now, by, qualified_name))
            return self._get_in(c, qualified_name)

    def quarantine(self, qualified_name: str, *, by: str, reason: str, now: float) -> ToolPin:
        """Quarantine a tool by hand; calls are denied until someone approves it."""
        with self._tx() as c:
            cur = c.execute("UPDATE tool_pins SET status = ?, reason = ?, updated_at = ?, "
                            "decided_by = ? WHERE qualified_name = ?",
                            (QUARANTINED, reason, now, by, qualified_name))
            if cur.rowcount == 0:
                raise StoreError(f"no pinned tool `{qualified_name}`")
            return self._get_in(c, qualified_name)

    @staticmethod
    def _get_in(c: sqlite3.Connection, qualified_name: str) -> ToolPin:
        return _pin(c.execute("SELECT * FROM tool_pins WHERE qualified_name = ?",
                              (qualified_name,)).fetchone())


def _pin(row: tuple[Any, ...]) -> ToolPin:
    (name, pinned_digest, pinned_def, seen_digest, seen_def, status, reason, findings,
     pinned_at, updated_at, decided_by) = row
    return ToolPin(qualified_name=str(name), pinned_digest=str(pinned_digest),
                   pinned_definition=json.loads(pinned_def), seen_digest=str(seen_digest),
                   seen_definition=json.loads(seen_def), status=str(status), reason=str(reason),
                   findings=json.loads(findings), pinned_at=float(pinned_at),
                   updated_at=float(updated_at),
                   decided_by=None if decided_by is None else str(decided_by))
