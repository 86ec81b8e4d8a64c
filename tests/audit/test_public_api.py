"""The SQLite backend satisfies the audit log's backend protocol."""

from __future__ import annotations

from pathlib import Path

import warrant.audit
from warrant.store import SqliteAuditBackend


def test_the_sqlite_backend_satisfies_the_backend_protocol(tmp_path: Path) -> None:
    backend: warrant.audit.AuditBackend = SqliteAuditBackend(tmp_path / "s.db")
    backend.close()
