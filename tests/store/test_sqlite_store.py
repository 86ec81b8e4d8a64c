"""The embedded SQLite store: atomic budgets, revocations, and clear errors for bad state."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from warrant.errors import IdentityError, StoreError
from warrant.store import SqliteStore
from warrant.types import AgentRecord, RevocationKind


def test_a_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        SqliteStore(tmp_path / "nope.db")


def test_a_file_that_is_not_a_database_is_reported_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"not a database|corrupt"):
        SqliteStore(path)


def test_a_database_from_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path, create=True)
    store._conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    store.close()
    with pytest.raises(StoreError, match="schema version 99"):
        SqliteStore(path)


@pytest.mark.claim("budget.enforced")
def test_budgets_are_never_overspent_by_concurrent_callers(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SqliteStore(path, create=True).close()
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        store = SqliteStore(path)
        for _ in range(20):
            ok = store.consume_budget("task-1", "transfer", 25, None) is None
            with lock:
                allowed.append(ok)
        store.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert allowed.count(True) == 25
    assert SqliteStore(path).budget_used("task-1", "transfer") == 25


def test_an_exhausted_budget_counts_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", create=True)
    assert store.consume_budget("t", "a", None, 1) is None
    assert store.consume_budget("t", "b", 5, 1) == "total call budget exhausted (1 of 1 calls used)"
    assert store.budget_used("t", "b") == 0


def test_revocations_are_found_by_task_agent_credential_or_kill_switch(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", create=True)

    def ask() -> str | None:
        return store.revoked(task_id="t1", agent_id="spiffe://a/agent/x", credential_id="c1")

    assert ask() is None
    assert store.revoke(RevocationKind.CREDENTIAL, "c1", time.time(), "leaked")
    assert not store.revoke(RevocationKind.CREDENTIAL, "c1", time.time(), "leaked")
    assert ask() == "credential `c1` revoked (leaked)"
    assert store.revoked(task_id="t2", agent_id="other", credential_id="c2") is None
    store.revoke(RevocationKind.ALL, "*", time.time(), "incident")
    assert store.revoked(task_id="t2", agent_id="other", credential_id="c2") is not None


def test_registering_the_same_agent_twice_is_refused(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", create=True)
    record = AgentRecord(agent_id="spiffe://a.example/agent/x", name="x", owner="o",
                         purpose="p", public_key=b"k" * 32, created_at=time.time())
    store.add_agent(record)
    with pytest.raises(IdentityError, match="already registered"):
        store.add_agent(record)


def test_agents_of_a_chain_are_read_in_one_go_with_their_current_keys(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", create=True)
    ids = [f"spiffe://a.example/agent/{n}" for n in ("a", "b", "c")]
    for agent_id in ids:
        store.add_agent(AgentRecord(agent_id=agent_id, name=agent_id[-1], owner="o",
                                    purpose="p", public_key=b"k" * 32,
                                    created_at=time.time()))
    store.rotate_agent_key(ids[1], b"n" * 32, time.time())
    found = store.get_agents([ids[0], ids[1], ids[1], "spiffe://a.example/agent/unknown"])
    assert sorted(found) == ids[:2]  # duplicates once, unknown agents absent
    assert found[ids[1]].public_key == b"n" * 32
    assert found[ids[0]] == store.get_agent(ids[0])
    assert store.get_agents([]) == {}


@pytest.mark.claim("store.fail-closed")
def test_a_read_only_database_refuses_writes_with_a_store_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", create=True)
    # Root ignores file modes, so make the connection itself read-only.
    store._conn.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreError, match=r"write failed|unavailable"):
        store.revoke(RevocationKind.TASK, "t", time.time(), "x")
    assert store.revoked(task_id="t", agent_id=None, credential_id=None) is None


def test_the_sqlite_store_implements_the_state_store_interface(tmp_path: Path) -> None:
    from warrant.store import StateStore

    store: StateStore = SqliteStore(tmp_path / "s.db", create=True)  # checked by mypy
    assert store.list_agents() == []
