"""The SQLite backing store of memory items (`memory.db`), versioned and append-only.

It holds data only: content, provenance, signature, and the sequence number of
the item's digest in the audit log (the index item → log). The digests
themselves are checked against the log, which lives elsewhere (`state.db`), so
an attacker who can rewrite this file still cannot make a forged item verify.

Rows are never deleted: a delete is a tombstone version, a quarantine copies the
row as found into `quarantine`, and a purge removes content but keeps digest,
provenance and signature (the forensic record).

INVARIANT: every method completes its transaction or raises `MemoryGuardError`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._errors import MemoryGuardError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    namespace TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL,
    content TEXT, provenance TEXT NOT NULL, expires_at REAL NOT NULL,
    deleted INTEGER NOT NULL, restored_from INTEGER, digest TEXT NOT NULL,
    signature BLOB NOT NULL, key_id TEXT NOT NULL, audit_seq INTEGER NOT NULL,
    status TEXT NOT NULL, stored_at REAL NOT NULL,
    PRIMARY KEY (namespace, key, version)
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL, key TEXT NOT NULL,
    version INTEGER NOT NULL, reason TEXT NOT NULL, quarantined_at REAL NOT NULL,
    row TEXT NOT NULL, purged INTEGER NOT NULL DEFAULT 0
);
"""
_COLUMNS = ("namespace, key, version, content, provenance, expires_at, deleted, restored_from, "
            "digest, signature, key_id, audit_seq, status, stored_at")
_INSERT = f"INSERT INTO items ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"  # noqa: S608
_LATEST = (f"SELECT {_COLUMNS} FROM items i WHERE namespace = ? AND version = "  # noqa: S608
           "(SELECT MAX(version) FROM items j WHERE j.namespace = i.namespace AND j.key = i.key)")
_NEWEST_OF_KEY = (f"SELECT {_COLUMNS} FROM items WHERE namespace = ? AND key = ? "  # noqa: S608
                  "ORDER BY version DESC LIMIT 1")

#: Row statuses: served after verification / kept for forensics only / content removed.
OK, QUARANTINED, PURGED = "ok", "quarantined", "purged"


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One row of `items`, exactly as stored (nothing here is verified yet)."""

    namespace: str
    key: str
    version: int
    content: str | None
    provenance: str
    expires_at: float
    deleted: bool
    restored_from: int | None
    digest: str
    signature: bytes
    key_id: str
    audit_seq: int
    status: str
    stored_at: float

    @classmethod
    def from_sql(cls, row: tuple[Any, ...]) -> StoredRow:
        return cls(str(row[0]), str(row[1]), int(row[2]), row[3], str(row[4]), float(row[5]),
                   bool(row[6]), row[7], str(row[8]), bytes(row[9]), str(row[10]),
                   int(row[11]), str(row[12]), float(row[13]))

    def to_sql(self) -> tuple[Any, ...]:
        """The row's values in `_COLUMNS` order (no deep copy, unlike `asdict`)."""
        return (self.namespace, self.key, self.version, self.content, self.provenance,
                self.expires_at, self.deleted, self.restored_from, self.digest, self.signature,
                self.key_id, self.audit_seq, self.status, self.stored_at)

    def forensic_json(self) -> dict[str, Any]:
        """The row as a JSON object (signature as hex) for the quarantine copy."""
        data = asdict(self)
        data["signature"] = self.signature.hex()
        return data


class SqliteMemoryStore:
    """Versioned memory rows in one SQLite file (WAL, like the state store)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise MemoryGuardError(f"cannot open memory database `{path}`: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise MemoryGuardError(f"memory database unavailable: {exc}") from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise MemoryGuardError(f"memory database write failed: {exc}") from exc
                raise

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[StoredRow]:
        with self._lock:
            try:
                return [StoredRow.from_sql(r) for r in self._conn.execute(sql, args)]
            except sqlite3.Error as exc:
                raise MemoryGuardError(f"memory database read failed: {exc}") from exc

    # -- writing ----------------------------------------------------------------------------

    def insert_next(self, namespace: str, key: str,
                    build: Callable[[int], StoredRow]) -> StoredRow:
        """Build the next version of `key` and insert it, in one transaction.

        `build(version)` signs and logs the row; it runs inside the transaction
        so two writers can never both take the same version number.
        """
        with self._tx() as c:
            (current,) = c.execute("SELECT COALESCE(MAX(version), 0) FROM items "
                                   "WHERE namespace = ? AND key = ?", (namespace, key)).fetchone()
            row = build(int(current) + 1)
            c.execute(_INSERT, row.to_sql())
        return row

    def quarantine(self, row: StoredRow, reason: str, now: float) -> None:
        """Keep a forensic copy of `row` as found, and stop serving it."""
        with self._tx() as c:
            c.execute("INSERT INTO quarantine (namespace, key, version, reason, quarantined_at, "
                      "row) VALUES (?,?,?,?,?,?)", (row.namespace, row.key, row.version, reason,
                                                     now, json.dumps(row.forensic_json())))
            c.execute("UPDATE items SET status = ? WHERE namespace = ? AND key = ? AND "
                      "version = ?", (QUARANTINED, row.namespace, row.key, row.version))

    def quarantine_found(self, namespace: str, key: str, reason: str, now: float,
                         found: dict[str, Any]) -> None:
        """Keep a forensic copy of content found outside this store (version 0).

        For items a guarded MCP memory server returned that no signed version
        vouches for: the copy is what the server held, kept as evidence.
        """
        with self._tx() as c:
            c.execute("INSERT INTO quarantine (namespace, key, version, reason, quarantined_at, "
                      "row) VALUES (?,?,0,?,?,?)", (namespace, key, reason, now,
                                                    json.dumps(found, sort_keys=True)))

    def purge(self, namespace: str, key: str, version: int | None) -> int:
        """Remove content (items and quarantine copies); keep digest and provenance."""
        where = "namespace = ? AND key = ?"
        args: tuple[Any, ...] = (namespace, key)
        if version is not None:
            where, args = where + " AND version = ?", (*args, version)
        with self._tx() as c:
            count = c.execute(f"UPDATE items SET content = NULL, status = ? WHERE {where}",  # noqa: S608 - fixed clauses
                              (PURGED, *args)).rowcount
            for qid, text in c.execute(f"SELECT id, row FROM quarantine WHERE {where}",  # noqa: S608
                                       args).fetchall():
                kept = json.loads(text)
                kept["content"] = None
                c.execute("UPDATE quarantine SET row = ?, purged = 1 WHERE id = ?",
                          (json.dumps(kept), qid))
        return int(count)

    # -- reading ----------------------------------------------------------------------------

    def latest_settled(self, namespace: str, key: str) -> StoredRow | None:
        """`latest`, read inside a write transaction: a writer of another process that
        has logged its version but not yet committed its row is waited for."""
        with self._tx() as c:
            rows = [StoredRow.from_sql(r) for r in c.execute(_NEWEST_OF_KEY, (namespace, key))]
        return rows[0] if rows else None

    def latest(self, namespace: str, key: str) -> StoredRow | None:
        rows = self._rows(_NEWEST_OF_KEY, (namespace, key))
        return rows[0] if rows else None

    def latest_all(self, namespace: str) -> list[StoredRow]:
        """The newest version of every key in `namespace`, by key."""
        return self._rows(_LATEST + " ORDER BY key", (namespace,))

    def versions(self, namespace: str, key: str) -> list[StoredRow]:
        """Every version of `key`, oldest first."""
        return self._rows(f"SELECT {_COLUMNS} FROM items WHERE namespace = ? AND key = ? "  # noqa: S608
                          "ORDER BY version", (namespace, key))

    def quarantined(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Quarantine records, oldest first (the row as found, reason, time)."""
        sql = "SELECT id, reason, quarantined_at, row, purged FROM quarantine"
        args: tuple[Any, ...] = ()
        if namespace is not None:
            sql, args = sql + " WHERE namespace = ?", (namespace,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [{"id": r[0], "reason": r[1], "quarantined_at": r[2], "row": json.loads(r[3]),
                 "purged": bool(r[4])} for r in rows]
