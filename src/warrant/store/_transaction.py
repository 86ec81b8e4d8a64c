"""The one way store modules write: an IMMEDIATE transaction that commits whole or not at all."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from warrant.errors import StoreError


@contextmanager
def transaction(conn: sqlite3.Connection, lock: threading.RLock,
                what: str = "state database") -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT under `lock`; on any error ROLLBACK, sqlite errors → StoreError.

    `conn` must be in autocommit mode (`isolation_level=None`) so the explicit
    BEGIN is the only transaction.
    """
    with lock:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"{what} unavailable: {exc}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            # If ROLLBACK fails the transaction is already gone; the original error matters.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{what} write failed: {exc}") from exc
            raise
