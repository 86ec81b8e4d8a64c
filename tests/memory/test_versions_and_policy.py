"""Versions roll back to a point in time; purge keeps the forensic record; policy isolates."""

from __future__ import annotations

import pytest

from warrant.enforce import GuardedMemory, TrustDomain
from warrant.memory import MemoryDenied, MemoryGuardError, MemoryIntegrityError, MemoryNotFound

from .conftest import Clock, admin_events, raw_db


def test_rollback_restores_the_version_current_at_a_point_in_time(
        memory: GuardedMemory, clock: Clock) -> None:
    memory.put("billing", "agent:billing", "limit", {"max": 100})
    clock.advance(60)
    good_time = clock.now
    clock.advance(60)
    memory.put("billing", "agent:billing", "limit", {"max": 100000})
    memory.put("billing", "agent:billing", "payee", "attacker")
    clock.advance(60)

    restored = memory.rollback("agent:billing", good_time, by="user:alice")

    assert memory.get("billing", "agent:billing", "limit").content == {"max": 100}
    with pytest.raises(MemoryNotFound):  # did not exist at that time
        memory.get("billing", "agent:billing", "payee")
    assert sorted(i.key for i in restored) == ["limit", "payee"]
    history = memory.history("agent:billing", "limit")
    assert [v.version for v in history] == [1, 2, 3]
    assert history[-1].restored_from == 1


def test_rollback_of_one_key_recovers_from_a_quarantined_version(
        memory: GuardedMemory, clock: Clock) -> None:
    memory.put("billing", "agent:billing", "limit", {"max": 100})
    clock.advance(10)
    memory.put("billing", "agent:billing", "limit", {"max": 200})
    with raw_db(memory) as db:
        db.execute("UPDATE items SET content = '{\"max\":9999}' WHERE version = 2")
    with pytest.raises(MemoryIntegrityError):
        memory.get("billing", "agent:billing", "limit")

    memory.rollback("agent:billing", clock.now, by="user:alice", key="limit")

    item = memory.get("billing", "agent:billing", "limit")
    assert (item.content, item.restored_from) == ({"max": 100}, 1)


def test_a_deleted_item_comes_back_by_rollback(memory: GuardedMemory, clock: Clock) -> None:
    memory.put("billing", "agent:billing", "note", "keep me")
    before = clock.now
    clock.advance(10)
    memory.delete("billing", "agent:billing", "note")
    memory.rollback("agent:billing", before, by="user:alice", key="note")
    assert memory.get("billing", "agent:billing", "note").content == "keep me"


def test_purge_removes_content_but_keeps_the_forensic_record(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    first = memory.put("billing", "agent:billing", "leak", "customer phone +49 30 1234567")
    memory.quarantine("agent:billing", "leak", by="user:alice", reason="pii")

    assert memory.purge("agent:billing", "leak", by="user:alice") == 1

    with pytest.raises(MemoryNotFound):
        memory.get("billing", "agent:billing", "leak")
    [version] = memory.history("agent:billing", "leak")
    assert (version.status, version.digest) == ("purged", first.digest)
    assert version.provenance == first.provenance
    [kept] = memory.quarantined("agent:billing")
    assert kept["purged"] and kept["row"]["content"] is None
    assert kept["row"]["digest"] == first.digest
    with raw_db(memory) as db:
        assert "1234567" not in str(db.execute("SELECT * FROM items").fetchall())
    assert admin_events(memory_domain, "memory.purge")[0]["by"] == "user:alice"


@pytest.mark.claim("memory.namespace-isolation")
def test_policy_keeps_an_agent_out_of_another_agents_namespace(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    memory.put("billing", "agent:billing", "secret-plan", "pay on Friday")

    with pytest.raises(MemoryDenied):
        memory.get("intruder", "agent:billing", "secret-plan")
    with pytest.raises(MemoryDenied):
        memory.search("intruder", "agent:billing", "Friday")
    with pytest.raises(MemoryDenied):
        memory.put("intruder", "agent:billing", "secret-plan", "pay the intruder")

    [denied, _, _] = admin_events(memory_domain, "memory.denied")
    assert denied["policy_ids"] == ["test.billing-namespace-is-private"]
    assert memory.get("billing", "agent:billing", "secret-plan").content == "pay on Friday"


@pytest.mark.claim("memory.namespace-isolation")
def test_unknown_and_retired_agents_get_no_memory(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    with pytest.raises(MemoryDenied):
        memory.get("nobody", "agent:nobody", "x")
    memory_domain.retire_agent("intruder")
    with pytest.raises(MemoryDenied):
        memory.put("intruder", "agent:intruder", "x", 1)


def test_namespaces_and_keys_are_checked(memory: GuardedMemory) -> None:
    with pytest.raises(MemoryGuardError):
        memory.put("billing", "global", "x", 1)
    with pytest.raises(MemoryGuardError):
        memory.put("billing", "agent:billing", "has space", 1)
