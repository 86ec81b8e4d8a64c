"""Each item is signed with its writer's own key; a rotated key still verifies old items."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.exceptions import InvalidSignature

from warrant import identity
from warrant.enforce import GuardedMemory, TrustDomain
from warrant.memory import (
    MemoryDenied,
    MemoryIntegrityError,
    MemoryQuarantined,
    Provenance,
)
from warrant.memory._model import signing_payload
from warrant.memory._ports import SIGNING_CONTEXT
from warrant.memory._store import StoredRow

from .conftest import BILLING, Clock, admin_events, raw_db


def _thumbprint(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _payload(row: StoredRow, provenance: Provenance, content_text: str, key_id: str) -> bytes:
    """The exact bytes a writer signs for `row` (what an attacker would have to forge)."""
    return signing_payload(
        namespace=row.namespace, key=row.key, version=row.version, content_text=content_text,
        provenance=provenance, expires_at=row.expires_at, deleted=row.deleted,
        restored_from=row.restored_from, stored_at=row.stored_at, signed_by=BILLING,
        key_id=key_id)


@pytest.mark.claim("memory.verified-reads")
def test_an_item_is_signed_with_the_writing_agents_own_registered_key(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    registered = memory_domain.agent("billing").public_key
    item = memory.put("billing", "agent:billing", "payee", {"iban": "DE00 1234"})

    assert item.provenance.key_kind == "agent"
    assert item.provenance.key_id == _thumbprint(registered)
    detail = memory_domain.audit.get(item.audit_seq).record.detail
    assert detail is not None
    assert detail["writer"] == BILLING and detail["public_key"] == registered.hex()
    # The signature is the agent's, not the domain's.
    [row] = memory.store.versions("agent:billing", "payee")
    signed = SIGNING_CONTEXT + _payload(row, item.provenance, row.content or "", row.key_id)
    identity.public_from_raw(registered).verify(row.signature, signed)
    with pytest.raises(InvalidSignature):
        memory_domain.public_key.verify(row.signature, signed)


@pytest.mark.claim("memory.verified-reads")
def test_an_item_whose_writer_is_swapped_to_another_agent_is_rejected_and_quarantined(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    memory.put("billing", "agent:billing", "limit", {"max": 100})
    intruder = memory_domain.agent("intruder").agent_id
    with raw_db(memory) as db:
        db.execute("UPDATE items SET provenance = replace(provenance, ?, ?)", (BILLING, intruder))

    with pytest.raises(MemoryIntegrityError) as caught:
        memory.get("billing", "agent:billing", "limit")

    assert "signed it" in (caught.value.detail or "")
    [event] = admin_events(memory_domain, "memory.integrity-failure")
    assert event["key"] == "limit"
    [kept] = memory.quarantined("agent:billing")
    assert json.loads(kept["row"]["provenance"])["writer"] == intruder  # as found
    with pytest.raises(MemoryQuarantined):
        memory.get("billing", "agent:billing", "limit")


@pytest.mark.claim("memory.verified-reads")
def test_an_item_re_signed_by_another_agents_key_is_rejected(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    """The attacker holds the intruder's key and rewrites the row to name it: the log disagrees."""
    memory.put("billing", "agent:billing", "limit", {"max": 100})
    intruder_key = memory_domain.agent_key("intruder")
    intruder_raw = identity.raw_public(intruder_key.public_key())
    [row] = memory.store.versions("agent:billing", "limit")
    prov = json.loads(row.provenance)
    prov["key_id"] = _thumbprint(intruder_raw)
    payload = _payload(row, Provenance.from_json(prov), '{"max":100000}', prov["key_id"])
    forged = intruder_key.sign(SIGNING_CONTEXT + payload)
    with raw_db(memory) as db:
        db.execute("UPDATE items SET content = ?, provenance = ?, signature = ?, key_id = ?",
                   ('{"max":100000}', json.dumps(prov), forged, prov["key_id"]))

    with pytest.raises(MemoryIntegrityError) as caught:
        memory.get("billing", "agent:billing", "limit")
    assert "does not name" in (caught.value.detail or "")


def test_old_items_still_verify_after_the_writers_key_is_rotated(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    old_key = memory_domain.agent_key("billing")
    before = memory.put("billing", "agent:billing", "note", "written with the first key")
    memory_domain.rotate_agent_key("billing")

    assert memory.get("billing", "agent:billing", "note").content == before.content
    after = memory.put("billing", "agent:billing", "note2", "written with the new key")
    assert after.provenance.key_id != before.provenance.key_id
    assert memory.get("billing", "agent:billing", "note2").content == "written with the new key"
    # The retired key can no longer sign anything new.
    with pytest.raises(MemoryDenied, match="registered key"):
        memory.use_agent_key("billing", old_key)


def test_an_agent_without_a_key_here_cannot_write(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    own = identity.generate_key()
    memory_domain.register_agent("enrolled", owner="finance", purpose="brings its own key",
                                 public_key=own.public_key())
    with pytest.raises(MemoryDenied, match="no signing key"):
        memory.put("enrolled", "agent:enrolled", "k", "v")
    with pytest.raises(MemoryDenied, match="registered key"):
        memory.use_agent_key("enrolled", identity.generate_key())

    memory.use_agent_key("enrolled", own)
    item = memory.put("enrolled", "agent:enrolled", "k", "v")
    assert memory.get("enrolled", "agent:enrolled", "k").provenance.key_id == item.provenance.key_id


def test_a_rollback_by_a_person_is_signed_with_the_domain_key_labelled_as_such(
        memory: GuardedMemory, memory_domain: TrustDomain, clock: Clock) -> None:
    memory.put("billing", "agent:billing", "limit", {"max": 100})
    clock.advance(10)
    at = clock.now
    clock.advance(10)
    memory.put("billing", "agent:billing", "limit", {"max": 9})

    [restored] = memory.rollback("agent:billing", at, by="user:alice")

    detail = memory_domain.audit.get(restored.audit_seq).record.detail
    assert detail is not None
    assert (detail["writer"], detail["key_kind"]) == ("user:alice", "domain")
    assert detail["public_key"] == identity.raw_public(memory_domain.public_key).hex()
    item = memory.get("billing", "agent:billing", "limit")
    assert item.content == {"max": 100} and item.provenance.writer == BILLING  # kept


def test_a_domain_signed_item_claiming_an_agent_signer_is_rejected(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    """Only people sign with the domain key: a log entry pairing it with an agent is refused."""
    with pytest.raises(MemoryDenied, match="no memory signing key"):
        memory.rollback("agent:billing", 0.0, by="robot")
    keys = memory._keys  # the composer's key rules, checked directly
    domain_raw = identity.raw_public(memory_domain.public_key)
    with pytest.raises(MemoryIntegrityError):
        keys.vouch(BILLING, "domain", domain_raw)
    with pytest.raises(MemoryIntegrityError):
        keys.vouch("user:alice", "domain", memory_domain.agent("billing").public_key)
    keys.vouch("user:alice", "domain", domain_raw)


def test_a_retired_agent_is_refused_on_its_next_call(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    memory.put("billing", "agent:billing", "k", "v")
    memory.get("billing", "agent:billing", "k")  # the agent's record is now cached
    memory_domain.retire_agent("billing")
    with pytest.raises(MemoryDenied, match="retired"):
        memory.get("billing", "agent:billing", "k")


def test_a_suspended_agent_or_revoked_task_is_refused_on_its_next_call(
        memory: GuardedMemory, memory_domain: TrustDomain) -> None:
    from warrant.types import RevocationKind

    memory.put("billing", "agent:billing", "k", "v", task_id="task-memo")
    memory.get("billing", "agent:billing", "k")  # the agent is cached as allowed
    memory_domain.revoke(RevocationKind.TASK, "task-memo", "contained by playbook")
    with pytest.raises(MemoryDenied, match="contained by playbook"):
        memory.put("billing", "agent:billing", "k", "w", task_id="task-memo")
    assert memory.get("billing", "agent:billing", "k").content == "v"
    memory_domain.revoke(RevocationKind.AGENT, "spiffe://acme.example/agent/billing",
                         "suspended")
    with pytest.raises(MemoryDenied, match="suspended"):
        memory.get("billing", "agent:billing", "k")
