"""The audit package's public surface is pinned."""

from __future__ import annotations

from pathlib import Path

import warrant.audit
from warrant.store._audit import SqliteAuditBackend


def test_the_public_surface_is_exactly_this_sorted_list() -> None:
    assert warrant.audit.__all__ == sorted(warrant.audit.__all__)
    assert set(warrant.audit.__all__) == {
        "AuditBackend",
        "AuditLog",
        "AuditRecord",
        "Checkpoint",
        "ConsistencyProof",
        "EMPTY_ROOT",
        "Entry",
        "InclusionProof",
        "SCHEMA",
        "VerifyReport",
        "key_id",
        "leaf_hash",
        "node_hash",
        "root_from_leaf_hashes",
        "sign_checkpoint",
        "utc_now",
        "verify_checkpoint",
    }


def test_the_sqlite_backend_satisfies_the_backend_protocol(tmp_path: Path) -> None:
    backend: warrant.audit.AuditBackend = SqliteAuditBackend(tmp_path / "s.db")
    backend.close()
