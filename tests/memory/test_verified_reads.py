"""Every read verifies signature and logged digest; tampering is caught, quarantined, recorded."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warrant.enforce import GuardedMemory, TrustDomain
from warrant.memory import (
    MemoryIntegrityError,
    MemoryNotFound,
    MemoryQuarantined,
    Trust,
)
from warrant.types import JsonValue

from .conftest import BILLING, admin_events, raw_db


def test_an_item_round_trips_with_its_provenance(memory: GuardedMemory) -> None:
    memory.put("billing", "agent:billing", "invoice-42", {"status": "paid", "amount": 120},
               task_id="task-1")
    item = memory.get("billing", "agent:billing", "invoice-42")
    assert item.content == {"status": "paid", "amount": 120}
    assert item.provenance.writer == BILLING
    assert item.provenance.task_id == "task-1"
    assert item.provenance.trust is Trust.TRUSTED
    assert not item.is_data


def test_the_audit_log_keeps_the_digest_and_never_the_content(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    item = memory.put("billing", "agent:billing", "note", "the customer prefers Tuesdays")
    record = memory_domain.audit.get(item.audit_seq).record
    assert record.kind == "event"
    assert record.tool == "memory.write"
    assert record.detail is not None and record.detail["digest"] == item.digest
    assert "Tuesdays" not in record.to_bytes().decode()


@pytest.mark.claim("memory.verified-reads")
def test_content_rewritten_in_the_backing_store_is_caught_and_quarantined(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    memory.put("billing", "agent:billing", "payee", {"iban": "DE00 1234"})
    with raw_db(memory) as db:
        db.execute("UPDATE items SET content = ? WHERE key = 'payee'",
                   (json.dumps({"iban": "XX99 6666"}),))

    with pytest.raises(MemoryIntegrityError) as caught:
        memory.get("billing", "agent:billing", "payee")

    assert "signature" in (caught.value.detail or "")
    [event] = admin_events(memory_domain, "memory.integrity-failure")
    assert event["key"] == "payee"
    [kept] = memory.quarantined("agent:billing")
    assert json.loads(kept["row"]["content"]) == {"iban": "XX99 6666"}  # forensic copy as found
    with pytest.raises(MemoryQuarantined):
        memory.get("billing", "agent:billing", "payee")


@pytest.mark.claim("memory.verified-reads")
def test_a_rewritten_trust_level_is_caught(memory: GuardedMemory) -> None:
    memory.put("billing", "agent:billing", "page", "fetched text", trust="untrusted",
               source="web.fetch")
    with raw_db(memory) as db:
        db.execute("UPDATE items SET provenance = replace(provenance, 'untrusted', 'trusted')")
    with pytest.raises(MemoryIntegrityError):
        memory.get("billing", "agent:billing", "page")


@pytest.mark.claim("memory.verified-reads")
def test_an_item_replayed_into_another_namespace_is_rejected(memory: GuardedMemory) -> None:
    memory.put("billing", "agent:billing", "limit", {"max": 100})
    with raw_db(memory) as db:
        db.execute("INSERT INTO items SELECT 'user:alice', key, version, content, provenance, "
                   "expires_at, deleted, restored_from, digest, signature, key_id, audit_seq, "
                   "status, stored_at FROM items WHERE namespace = 'agent:billing'")

    with pytest.raises(MemoryIntegrityError):
        memory.get("billing", "user:alice", "limit")
    assert memory.get("billing", "agent:billing", "limit").content == {"max": 100}


@pytest.mark.claim("memory.verified-reads")
def test_an_old_signed_version_replayed_as_the_newest_is_rejected(
        memory: GuardedMemory) -> None:
    memory.put("billing", "agent:billing", "limit", {"max": 100})
    memory.put("billing", "agent:billing", "limit", {"max": 5})
    with raw_db(memory) as db:  # the attacker re-numbers the old, validly signed version
        db.execute("UPDATE items SET version = 3 WHERE key = 'limit' AND version = 1")
    with pytest.raises(MemoryIntegrityError):
        memory.get("billing", "agent:billing", "limit")


@pytest.mark.claim("memory.verified-reads")
def test_newer_versions_deleted_from_the_store_are_caught_not_rolled_back_to(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    memory.put("billing", "agent:billing", "supplier", {"iban": "DE00 1111"})
    memory.put("billing", "agent:billing", "supplier", {"iban": "DE00 2222"})
    memory.put("billing", "agent:billing", "other", "kept")
    assert memory.get("billing", "agent:billing", "supplier").content == {"iban": "DE00 2222"}
    with raw_db(memory) as db:  # the attacker deletes the newest row: version 1 is signed
        db.execute("DELETE FROM items WHERE key = 'supplier' AND version = 2")

    with pytest.raises(MemoryIntegrityError) as caught:
        memory.get("billing", "agent:billing", "supplier")
    assert "newer versions were removed" in (caught.value.detail or "")
    assert [i.key for i in memory.list("billing", "agent:billing")] == ["other"]
    [event] = admin_events(memory_domain, "memory.integrity-failure")
    assert event["key"] == "supplier" and event["version"] == 1
    with pytest.raises(MemoryQuarantined):
        memory.get("billing", "agent:billing", "supplier")


def test_a_version_logged_by_a_writer_elsewhere_while_reading_is_not_taken_for_a_rollback(
        memory: GuardedMemory, memory_domain: TrustDomain,
        monkeypatch: pytest.MonkeyPatch) -> None:
    memory.put("billing", "agent:billing", "supplier", {"iban": "DE00 1111"})
    stale = memory.store.latest("agent:billing", "supplier")
    memory.put("billing", "agent:billing", "supplier", {"iban": "DE00 2222"})
    # The first read sees the store as it was before the other writer's row committed
    # (its version already logged): the guard waits for it and reads the new version.
    reads = iter([stale])
    real = memory.store.latest
    monkeypatch.setattr(memory.store, "latest", lambda ns, key: next(reads, None) or real(ns, key))
    assert memory.get("billing", "agent:billing", "supplier").content == {"iban": "DE00 2222"}
    assert admin_events(memory_domain, "memory.integrity-failure") == []


@pytest.mark.claim("memory.verified-reads")
def test_a_row_pointing_at_another_log_entry_is_rejected(memory: GuardedMemory) -> None:
    first = memory.put("billing", "agent:billing", "a", "one")
    memory.put("billing", "agent:billing", "b", "two")
    with raw_db(memory) as db:
        db.execute("UPDATE items SET audit_seq = ? WHERE key = 'b'", (first.audit_seq,))
    with pytest.raises(MemoryIntegrityError) as caught:
        memory.get("billing", "agent:billing", "b")
    assert "audit log" in (caught.value.detail or "")


@pytest.mark.claim("memory.verified-reads")
def test_a_tampered_item_is_left_out_of_list_and_search_but_the_rest_is_served(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    memory.put("billing", "agent:billing", "good", "invoice paid")
    memory.put("billing", "agent:billing", "bad", "invoice due")
    with raw_db(memory) as db:
        db.execute("UPDATE items SET content = '\"invoice overdue: pay now\"' WHERE key = 'bad'")

    assert [i.key for i in memory.search("billing", "agent:billing", "INVOICE")] == ["good"]
    assert [i.key for i in memory.list("billing", "agent:billing")] == ["good"]
    assert len(admin_events(memory_domain, "memory.integrity-failure")) == 1


def test_a_deleted_item_is_not_found(memory: GuardedMemory) -> None:
    memory.put("billing", "agent:billing", "temp", 1)
    memory.delete("billing", "agent:billing", "temp")
    with pytest.raises(MemoryNotFound):
        memory.get("billing", "agent:billing", "temp")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=20)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=JSON)
def test_put_then_get_returns_any_json_content_unchanged(memory: GuardedMemory,
                                                         content: JsonValue) -> None:
    memory.put("billing", "agent:billing", "prop", content)
    assert memory.get("billing", "agent:billing", "prop").content == content
