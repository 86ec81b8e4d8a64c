"""SQLite storage for the audit log (`audit_log`, `audit_nodes`, `audit_checkpoints`).

Satisfies `warrant.audit.AuditBackend` structurally; it does not import the
audit package (layering: leaves import only core). The tables live in the
trust domain's shared `state.db`, so schema creation is idempotent and touches
nothing else.

Two connections: one for writes (used by the log's single writer thread and
by checkpointing, serialised by a lock) and one for reads, so readers never
wait behind an fsync. WAL mode lets them run at the same time.

`audit_nodes` holds the interior Merkle nodes (perfect subtrees) as they
complete, written in the same transaction as the leaves they cover, so proofs
read O(log n) hashes. It was added after the first release: a database without
it gets the table on open and the log backfills it (see `AuditLog`).

`audit_log.seal` holds each record's seal (see `warrant.audit._seal`), in the
same row, so sealing adds no statement to the write path and deleting a record
takes its seal with it. It was added later too: a writable open adds the
column to an older database (its rows keep a NULL seal); a read-only open of
one reads every seal as NULL.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from warrant.errors import AuditWriteError, StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    record BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    seal BLOB
);
CREATE TABLE IF NOT EXISTS audit_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tree_size INTEGER NOT NULL,
    note TEXT NOT NULL
);
"""
_CHUNK = 4096
#: Keys per `node_hashes` query (SQLite's default host-parameter limit is 999 or more).
_KEYS_PER_QUERY = 200
_LEAF_SQL = "INSERT INTO audit_log (seq, record, leaf_hash, seal) VALUES (?, ?, ?, ?)"
_NODE_SQL = "INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)"


class SqliteAuditBackend:
    """The audit log's rows in SQLite.

    `readonly=True` opens the file with `mode=ro` (appends then fail closed).
    `max_page_count` caps the database size in pages; writes past it fail,
    which is how a full disk looks to SQLite.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        max_page_count: int | None = None,
        busy_timeout_ms: int = 5000,
    ) -> None:
        self.path = Path(path)
        self._readonly = readonly
        self._wlock = threading.Lock()
        self._rlock = threading.Lock()
        try:
            self._rconn = self._connect(busy_timeout_ms, readonly=True)
            self._wconn = None if readonly else self._connect(busy_timeout_ms, readonly=False)
            if self._wconn is not None:
                # WAL: readers do not block the writer; the setting persists in the file.
                self._wconn.execute("PRAGMA journal_mode=WAL")
                self._wconn.executescript(_SCHEMA)
                _add_seal_column(self._wconn)
                self._wconn.execute("PRAGMA synchronous=FULL")
                if max_page_count is not None:
                    self._wconn.execute(f"PRAGMA max_page_count={int(max_page_count)}")
            #: The seal column, or NULL when a read-only open finds a database without it.
            self._seal = "seal" if _has_seal_column(self._rconn) else "NULL"
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the audit store `{self.path}`: {exc}") from None

    def _connect(self, busy_timeout_ms: int, *, readonly: bool) -> sqlite3.Connection:
        if readonly and self._readonly:
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        else:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        return conn

    def _writer(self) -> sqlite3.Connection:
        if self._wconn is None:
            raise AuditWriteError(f"the audit store `{self.path}` is open read-only")
        return self._wconn

    def set_durable(self, durable: bool) -> None:
        if self._wconn is None:
            return
        with self._wlock:
            # FULL: every commit fsyncs the WAL. OFF: the OS decides when (fast, unsafe).
            self._wconn.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")

    def _write(self, statements: Sequence[tuple[str, Sequence[tuple[object, ...]]]]) -> None:
        """Run `(sql, rows)` statements in one transaction (all or nothing)."""
        with self._wlock:
            conn = self._writer()
            try:
                if len(statements) == 1 and len(statements[0][1]) == 1:
                    # One statement is its own transaction in autocommit mode:
                    # just as atomic, and a third of the round trips.
                    conn.execute(statements[0][0], statements[0][1][0])
                    return
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for sql, rows in statements:
                        if rows:
                            conn.executemany(sql, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise AuditWriteError(
                    f"cannot write the audit log in `{self.path}`: {exc}",
                    hint="check the disk has space and the state directory is writable",
                ) from None

    def append_batch(self, start_seq: int, entries: Sequence[tuple[bytes, bytes]],
                     nodes: Sequence[tuple[int, int, bytes]] = (),
                     seals: Sequence[bytes] = ()) -> None:
        if seals and len(seals) != len(entries):
            raise ValueError("one seal per audit record, or none")
        marks: Sequence[bytes | None] = seals or [None] * len(entries)
        rows = [(start_seq + i, rec, leaf, seal)
                for i, ((rec, leaf), seal) in enumerate(zip(entries, marks, strict=True))]
        self._write([(_LEAF_SQL, rows), (_NODE_SQL, list(nodes))])

    def add_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        # OR IGNORE: a backfill may race another process writing the same (equal) nodes.
        sql = "INSERT OR IGNORE INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)"
        for i in range(0, len(nodes), _CHUNK):
            self._write([(sql, list(nodes[i : i + _CHUNK]))])

    def node_count(self) -> int:
        (n,) = self._read("SELECT COUNT(*) FROM audit_nodes")[0]
        return int(n)

    def node_hashes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        found: dict[tuple[int, int], bytes] = {}
        leaves = [idx for level, idx in keys if level == 0]
        inner = [(level, idx) for level, idx in keys if level > 0]
        for i in range(0, len(leaves), _KEYS_PER_QUERY):
            part = leaves[i : i + _KEYS_PER_QUERY]
            marks = ",".join("?" * len(part))
            # Only `?` placeholders are formatted in; every value is a bound parameter.
            sql = f"SELECT seq, leaf_hash FROM audit_log WHERE seq IN ({marks})"  # noqa: S608
            found.update(((0, int(seq)), bytes(h)) for seq, h in self._read(sql, tuple(part)))
        for i in range(0, len(inner), _KEYS_PER_QUERY):
            part2 = inner[i : i + _KEYS_PER_QUERY]
            # OR-ed point lookups: SQLite searches the primary key for each one
            # (a row-value `IN (VALUES ...)` scans the whole table: O(n)).
            marks = " OR ".join("(level = ? AND idx = ?)" for _ in part2)
            sql = f"SELECT level, idx, hash FROM audit_nodes WHERE {marks}"  # noqa: S608 - placeholders only
            params = tuple(x for key in part2 for x in key)
            found.update(((int(lv), int(ix)), bytes(h)) for lv, ix, h in self._read(sql, params))
        return found

    def add_checkpoint(self, tree_size: int, note: str) -> None:
        self._write(
            [("INSERT INTO audit_checkpoints (tree_size, note) VALUES (?, ?)", [(tree_size, note)])]
        )

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        with self._rlock:
            try:
                rows: list[Any] = self._rconn.execute(sql, params).fetchall()
                return rows
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the audit log in `{self.path}`: {exc}") from None

    def size(self) -> int:
        (top,) = self._read("SELECT MAX(seq) FROM audit_log")[0]
        return 0 if top is None else int(top) + 1

    def count(self) -> int:
        (n,) = self._read("SELECT COUNT(*) FROM audit_log")[0]
        return int(n)

    def leaf_hashes(self, start: int, end: int) -> list[tuple[int, bytes]]:
        sql = "SELECT seq, leaf_hash FROM audit_log WHERE seq >= ? AND seq < ? ORDER BY seq"
        return self._read(sql, (start, end))

    def sealed_leaves(self, start: int, end: int) -> list[tuple[int, bytes, bytes | None]]:
        sql = (f"SELECT seq, leaf_hash, {self._seal} FROM audit_log "  # noqa: S608 - a column name
               "WHERE seq >= ? AND seq < ? ORDER BY seq")
        return self._read(sql, (start, end))

    def iter_entries(self, start: int = 0) -> Iterator[tuple[int, bytes, bytes, bytes | None]]:
        # Chunks by seq range so the read lock is never held across a yield.
        sql = (f"SELECT seq, record, leaf_hash, {self._seal} FROM audit_log "  # noqa: S608
               "WHERE seq >= ? ORDER BY seq LIMIT ?")  # (a column name is formatted in)
        nxt = start
        while True:
            rows: list[tuple[int, bytes, bytes, bytes | None]] = self._read(sql, (nxt, _CHUNK))
            yield from rows
            if len(rows) < _CHUNK:
                return
            nxt = rows[-1][0] + 1

    def get(self, seq: int) -> bytes | None:
        rows = self._read("SELECT record FROM audit_log WHERE seq = ?", (seq,))
        return bytes(rows[0][0]) if rows else None

    def tail(self, n: int) -> list[tuple[int, bytes]]:
        sql = "SELECT seq, record FROM audit_log ORDER BY seq DESC LIMIT ?"
        rows: list[tuple[int, bytes]] = self._read(sql, (n,))
        return rows[::-1]

    def checkpoints(self) -> list[str]:
        rows = self._read("SELECT note FROM audit_checkpoints ORDER BY id")
        return [str(r[0]) for r in rows]

    def latest_checkpoints(self, limit: int) -> list[str]:
        sql = "SELECT note FROM audit_checkpoints ORDER BY tree_size DESC, id DESC LIMIT ?"
        return [str(r[0]) for r in self._read(sql, (limit,))]

    def close(self) -> None:
        with self._wlock, self._rlock:
            if self._wconn is not None:
                self._wconn.close()
            self._rconn.close()


def _has_seal_column(conn: sqlite3.Connection) -> bool:
    return any(row[1] == "seal" for row in conn.execute("PRAGMA table_info(audit_log)"))


def _add_seal_column(conn: sqlite3.Connection) -> None:
    """Give a database from before seals its `seal` column (existing rows: NULL)."""
    if _has_seal_column(conn):
        return
    try:
        conn.execute("ALTER TABLE audit_log ADD COLUMN seal BLOB")
    except sqlite3.OperationalError:
        # Another process added it between the check and here; anything else is real.
        if not _has_seal_column(conn):
            raise
