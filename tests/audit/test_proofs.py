"""Proofs from stored Merkle nodes: exact for every size and index, O(log n) reads, fail closed."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warrant.audit import AuditLog, leaf_hash, verify_checkpoint
from warrant.audit._merkle import (
    consistency_path,
    consistency_ranges,
    inclusion_path,
    inclusion_ranges,
    range_plan,
    range_root,
    root_from_leaf_hashes,
)
from warrant.errors import AuditIntegrityError
from warrant.store._audit import SqliteAuditBackend

from .conftest import ORIGIN, OpenLog, make_record


class CountingBackend(SqliteAuditBackend):
    """The real SQLite backend, counting how many hashes proofs read."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.node_reads = 0
        self.leaf_reads = 0

    def node_hashes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        self.node_reads += len(keys)
        return super().node_hashes(keys)

    def leaf_hashes(self, start: int, end: int) -> list[tuple[int, bytes]]:
        self.leaf_reads += end - start
        return super().leaf_hashes(start, end)


def stored_leaves(log: AuditLog, size: int) -> list[bytes]:
    return [leaf_hash(log.get(i).record.to_bytes()) for i in range(size)]


def test_range_roots_match_the_rfc_tree_for_every_range_a_proof_uses() -> None:
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(70)]
    for size in range(1, 71):
        for lo, hi in [r for i in range(size) for r in inclusion_ranges(i, size)] + [
                r for m in range(size + 1) for r in consistency_ranges(m, size)]:
            plan = range_plan(lo, hi)
            nodes = {(lv, ix): root_from_leaf_hashes(hashes[ix << lv:(ix + 1) << lv])
                     for lv, ix in plan}
            assert range_root(lo, hi, nodes) == root_from_leaf_hashes(hashes[lo:hi])


def test_proofs_for_every_index_of_many_sizes_verify_against_signed_checkpoints(
        open_log: OpenLog, key: Ed25519PrivateKey) -> None:
    log = open_log(durable=False)
    checkpoints = []
    for size in range(1, 41):
        log.append(make_record(size - 1))
        checkpoints.append(log.checkpoint())
    leaves = stored_leaves(log, 40)
    for cp in checkpoints:
        verify_checkpoint(cp, key.public_key())
        for seq in range(cp.tree_size):
            proof = log.inclusion_proof(seq, cp.tree_size)
            assert list(proof.hashes) == inclusion_path(seq, leaves[:cp.tree_size])
            AuditLog.verify_inclusion(log.get(seq).record, proof, cp.root)
        for old in checkpoints[: cp.tree_size - 1]:
            cproof = log.consistency_proof(old.tree_size, cp.tree_size)
            assert list(cproof.hashes) == consistency_path(old.tree_size, leaves[:cp.tree_size])
            AuditLog.verify_consistency(cproof, old.root, cp.root)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batches=st.lists(st.integers(1, 40), min_size=1, max_size=8), data=st.data())
def test_any_proof_from_a_log_built_in_any_batches_verifies(
        key: Ed25519PrivateKey, batches: list[int], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(SqliteAuditBackend(Path(tmp) / "s.db"), key, origin=ORIGIN,
                       durable=False)
        try:
            checkpoints, n = [], 0
            for count in batches:
                log.append_many([make_record(n + i) for i in range(count)])
                n += count
                checkpoints.append(log.checkpoint())
            cp = data.draw(st.sampled_from(checkpoints))
            verify_checkpoint(cp, key.public_key())
            seq = data.draw(st.integers(0, cp.tree_size - 1))
            AuditLog.verify_inclusion(log.get(seq).record, log.inclusion_proof(seq, cp.tree_size),
                                      cp.root)
            old = data.draw(st.sampled_from([c for c in checkpoints
                                             if c.tree_size <= cp.tree_size]))
            AuditLog.verify_consistency(log.consistency_proof(old.tree_size, cp.tree_size),
                                        old.root, cp.root)
            with pytest.raises(AuditIntegrityError):
                AuditLog.verify_inclusion(make_record(10_000), log.inclusion_proof(seq), cp.root)
        finally:
            log.close()


def test_a_proof_reads_a_logarithmic_number_of_hashes(
        tmp_path: Path, key: Ed25519PrivateKey) -> None:
    backend = CountingBackend(tmp_path / "s.db")
    log = AuditLog(backend, key, origin=ORIGIN, durable=False)
    try:
        log.append_many([make_record(i) for i in range(3000)])
        cp = log.checkpoint()
        backend.node_reads = backend.leaf_reads = 0
        for seq in (0, 1234, 2047, 2048, 2999):
            AuditLog.verify_inclusion(log.get(seq).record, log.inclusion_proof(seq), cp.root)
        # 3000 leaves: a path is at most 12 hashes, each from at most 12 stored nodes
        # in the ragged case; reading the leaves would be 3000 per proof.
        assert backend.node_reads <= 5 * 2 * 12
        assert backend.leaf_reads == 0
    finally:
        log.close()


def test_a_log_written_before_nodes_were_stored_is_backfilled_and_proves_the_same(
        db_path: Path, open_log: OpenLog) -> None:
    log = open_log(durable=False)
    log.append_many([make_record(i) for i in range(100)])
    cp = log.checkpoint()
    expected = [log.inclusion_proof(s) for s in range(100)]
    log.close()
    with sqlite3.connect(db_path) as conn:  # what an older release left on disk
        conn.execute("DROP TABLE audit_nodes")

    reopened = open_log(durable=False)
    assert reopened.head() == (cp.tree_size, cp.root)
    assert [reopened.inclusion_proof(s) for s in range(100)] == expected
    with sqlite3.connect(db_path) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM audit_nodes").fetchone()
    assert count == 100 - (100).bit_count()
    assert reopened.verify(trusted=[cp]).size == 100


def test_a_read_only_log_without_nodes_still_proves_exactly(
        db_path: Path, open_log: OpenLog) -> None:
    log = open_log(durable=False)
    log.append_many([make_record(i) for i in range(37)])
    cp = log.checkpoint()
    log.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("DELETE FROM audit_nodes")
    readonly = open_log(readonly=True)
    assert readonly.head() == (cp.tree_size, cp.root)
    for seq in range(37):
        AuditLog.verify_inclusion(readonly.get(seq).record, readonly.inclusion_proof(seq),
                                  cp.root)


def test_a_tampered_stored_node_makes_proofs_fail_not_forge(
        db_path: Path, open_log: OpenLog) -> None:
    log = open_log(durable=False)
    log.append_many([make_record(i) for i in range(64)])
    cp = log.checkpoint()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE audit_nodes SET hash = ? WHERE level = 5 AND idx = 1",
                     (b"\x00" * 32,))
    with pytest.raises(AuditIntegrityError):
        AuditLog.verify_inclusion(log.get(3).record, log.inclusion_proof(3), cp.root)


def test_proofs_past_the_stored_log_are_refused(open_log: OpenLog) -> None:
    log = open_log(durable=False)
    log.append_many([make_record(i) for i in range(5)])
    with pytest.raises(AuditIntegrityError):
        log.inclusion_proof(1, size=6)
    with pytest.raises(AuditIntegrityError):
        log.consistency_proof(2, 9)
    with pytest.raises(ValueError, match="outside"):
        log.inclusion_proof(5, size=5)
