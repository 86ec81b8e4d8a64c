"""Fixtures for audit-log tests: a domain key and logs over real SQLite files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warrant.audit import AuditLog, AuditRecord
from warrant.store._audit import SqliteAuditBackend

ORIGIN = "test.example/audit"


def make_record(i: int, *, payload: str = "") -> AuditRecord:
    """A distinct, realistic decision record."""
    return AuditRecord(
        kind="decision",
        time="2025-01-02T03:04:05.678Z",
        decision_id=f"dec-{i}",
        effect="allow" if i % 3 else "deny",
        agent="spiffe://test.example/agent/a",
        principal_chain=("spiffe://test.example/user/alice",),
        task_id="task-1",
        tool="fs.read",
        argument_digest="ab" * 32,
        arguments_redacted={"path": f"/data/{i}", "payload": payload},
        reasons=({"code": "policy.permit", "message": "permitted", "source": "policy"},),
        policy_revision="rev-1",
        latency_us=float(i),
    )


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


class OpenLog(Protocol):
    def __call__(
        self,
        *,
        durable: bool = True,
        readonly: bool = False,
        max_page_count: int | None = None,
        max_batch: int = 1024,
    ) -> AuditLog: ...


@pytest.fixture
def open_log(db_path: Path, key: Ed25519PrivateKey) -> Iterator[OpenLog]:
    """Open (and later close) audit logs over `db_path`, signed by `key`."""
    logs: list[AuditLog] = []

    def _open(
        *,
        durable: bool = True,
        readonly: bool = False,
        max_page_count: int | None = None,
        max_batch: int = 1024,
    ) -> AuditLog:
        backend = SqliteAuditBackend(db_path, readonly=readonly, max_page_count=max_page_count)
        log = AuditLog(backend, key, origin=ORIGIN, durable=durable, max_batch=max_batch)
        logs.append(log)
        return log

    yield _open
    for log in logs:
        log.close()
