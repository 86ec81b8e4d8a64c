"""The audit log over real SQLite: append, read, prove, and catch every kind of tampering."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warrant.audit import AuditLog, AuditRecord, leaf_hash, utc_now
from warrant.errors import AuditError, AuditIntegrityError
from warrant.store._audit import SqliteAuditBackend

from .conftest import ORIGIN, OpenLog, make_record


def fill(log: AuditLog, n: int) -> list[int]:
    return log.append_many([make_record(i) for i in range(n)])


def test_appends_get_contiguous_seqs_from_zero(open_log: OpenLog) -> None:
    log = open_log()
    assert log.append(make_record(0)) == 0
    assert log.append_many([make_record(1), make_record(2)]) == [1, 2]
    assert log.get(1).record == make_record(1)
    assert [e.seq for e in log.tail(2)] == [1, 2]
    assert log.verify().size == 3


def test_a_missing_seq_is_an_audit_error(open_log: OpenLog) -> None:
    with pytest.raises(AuditError):
        open_log().get(0)


def test_a_reopened_log_continues_where_it_stopped(open_log: OpenLog) -> None:
    first = open_log()
    fill(first, 5)
    cp = first.checkpoint()
    first.close()
    second = open_log()
    assert second.append(make_record(5)) == 5
    report = second.verify(trusted=[cp])
    assert (report.size, report.checkpoints_checked) == (6, 2)


def test_the_audit_tables_share_a_database_with_other_components(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE agents (name TEXT PRIMARY KEY)")
    for _ in range(2):  # schema creation is idempotent
        SqliteAuditBackend(db_path).close()
    with sqlite3.connect(db_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"agents", "audit_log", "audit_checkpoints"} <= tables


def test_proofs_from_the_log_verify_against_signed_checkpoints(open_log: OpenLog) -> None:
    log = open_log()
    fill(log, 11)
    old = log.checkpoint()
    log.append_many([make_record(i) for i in range(11, 30)])
    new = log.checkpoint()
    for seq in (0, 10, 29):
        proof = log.inclusion_proof(seq)
        AuditLog.verify_inclusion(log.get(seq).record, proof, new.root)
    AuditLog.verify_inclusion(log.get(3).record, log.inclusion_proof(3, size=11), old.root)
    consistency = log.consistency_proof(old.tree_size, new.tree_size)
    AuditLog.verify_consistency(consistency, old.root, new.root)
    with pytest.raises(AuditIntegrityError):
        AuditLog.verify_inclusion(make_record(999), log.inclusion_proof(3), new.root)


@pytest.mark.claim("audit.tamper-evident")
def test_concurrent_appends_from_eight_threads_get_distinct_contiguous_seqs(
    open_log: OpenLog,
) -> None:
    log = open_log()
    seqs: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(t: int) -> None:
        start.wait(timeout=10)
        for i in range(40):
            seq = log.append(make_record(t * 1000 + i))
            with lock:
                seqs.append(seq)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert sorted(seqs) == list(range(320))
    log.checkpoint()
    assert log.verify().size == 320


# -- tampering ---------------------------------------------------------------


def tamper(db_path: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute(sql, params)


def checkpointed(open_log: OpenLog, n: int = 10) -> None:
    log = open_log()
    fill(log, n)
    log.checkpoint()
    log.close()


@pytest.mark.claim("audit.tamper-evident")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(min_value=1, max_value=20), data=st.data())
def test_append_then_verify_always_passes_and_any_flipped_byte_is_caught(
    n: int, data: st.DataObject
) -> None:
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        log = AuditLog(SqliteAuditBackend(path), key, origin=ORIGIN, durable=False)
        fill(log, n)
        assert log.verify().size == n
        log.close()
        seq = data.draw(st.integers(min_value=0, max_value=n - 1), label="seq")
        record = make_record(seq).to_bytes()
        pos = data.draw(st.integers(min_value=0, max_value=len(record) - 1), label="pos")
        flipped = record[:pos] + bytes([record[pos] ^ 0x01]) + record[pos + 1 :]
        tamper(path, "UPDATE audit_log SET record = ? WHERE seq = ?", flipped, seq)
        reopened = AuditLog(SqliteAuditBackend(path), key, origin=ORIGIN)
        with pytest.raises(AuditIntegrityError, match=f"record {seq} does not match"):
            reopened.verify()
        reopened.close()


@pytest.mark.claim("audit.tamper-evident")
def test_a_rewritten_record_with_a_matching_leaf_hash_breaks_the_checkpoint(
    open_log: OpenLog, db_path: Path
) -> None:
    checkpointed(open_log)
    forged = make_record(4, payload="nothing to see").to_bytes()
    tamper(
        db_path, "UPDATE audit_log SET record = ?, leaf_hash = ? WHERE seq = 4",
        forged, leaf_hash(forged),
    )  # fmt: skip
    with pytest.raises(AuditIntegrityError, match="stored checkpoint #0"):
        open_log().verify()


@pytest.mark.claim("audit.tamper-evident")
def test_a_deleted_row_is_reported_as_missing(open_log: OpenLog, db_path: Path) -> None:
    checkpointed(open_log)
    tamper(db_path, "DELETE FROM audit_log WHERE seq = 3")
    with pytest.raises(AuditIntegrityError, match="record 3 is missing"):
        open_log().verify()


@pytest.mark.claim("audit.tamper-evident")
def test_two_swapped_rows_break_the_checkpoint(open_log: OpenLog, db_path: Path) -> None:
    checkpointed(open_log)
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE audit_log SET seq = -1 WHERE seq = 2")
        conn.execute("UPDATE audit_log SET seq = 2 WHERE seq = 6")
        conn.execute("UPDATE audit_log SET seq = 6 WHERE seq = -1")
    with pytest.raises(AuditIntegrityError, match="first 10 records do not match"):
        open_log().verify()


@pytest.mark.claim("audit.tamper-evident")
def test_truncation_after_a_checkpoint_is_detected(open_log: OpenLog, db_path: Path) -> None:
    checkpointed(open_log)
    tamper(db_path, "DELETE FROM audit_log WHERE seq >= 7")
    with pytest.raises(
        AuditIntegrityError, match="has 7 records but stored checkpoint #0 covers 10"
    ):
        open_log().verify()


@pytest.mark.claim("audit.tamper-evident")
def test_truncation_hidden_by_deleting_checkpoints_is_caught_by_a_trusted_checkpoint(
    open_log: OpenLog, db_path: Path
) -> None:
    log = open_log()
    fill(log, 10)
    kept_elsewhere = log.checkpoint()
    log.close()
    tamper(db_path, "DELETE FROM audit_log WHERE seq >= 7")
    tamper(db_path, "DELETE FROM audit_checkpoints")
    with pytest.raises(AuditIntegrityError, match="trusted checkpoint at size 10"):
        open_log().verify(trusted=[kept_elsewhere])


@pytest.mark.claim("audit.tamper-evident")
def test_tampering_after_the_last_checkpoint_is_caught_by_the_running_log(
    open_log: OpenLog, db_path: Path
) -> None:
    log = open_log()
    fill(log, 5)
    tamper(db_path, "DELETE FROM audit_log WHERE seq = 4")
    with pytest.raises(AuditIntegrityError, match="head this process wrote"):
        log.verify()


@pytest.mark.claim("audit.tamper-evident")
def test_a_forged_checkpoint_is_rejected(open_log: OpenLog, db_path: Path) -> None:
    checkpointed(open_log)
    with sqlite3.connect(db_path) as conn:
        (note,) = conn.execute("SELECT note FROM audit_checkpoints").fetchone()
        conn.execute("UPDATE audit_checkpoints SET note = ?", (note.replace("\n10\n", "\n9\n"),))
    with pytest.raises(AuditIntegrityError, match=r"stored checkpoint #0: .*invalid signature"):
        open_log().verify()


@pytest.mark.claim("audit.tamper-evident")
def test_two_processes_appending_to_one_log_interleave_without_losing_records(
        tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    first = AuditLog(SqliteAuditBackend(tmp_path / "state.db"), key, origin="o")
    second = AuditLog(SqliteAuditBackend(tmp_path / "state.db"), key, origin="o")
    seqs = []
    for i in range(6):
        log = first if i % 2 == 0 else second
        seqs.append(log.append(AuditRecord(kind="admin", time=utc_now(), tool=f"step-{i}")))
    assert seqs == list(range(6))
    assert first.head() == second.head()
    first.checkpoint()
    assert second.verify().size == 6
    first.close()
    second.close()


@pytest.mark.claim("audit.tamper-evident")
def test_readers_catching_up_during_appends_never_count_a_record_twice(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    log = AuditLog(SqliteAuditBackend(tmp_path / "state.db"), key, origin="o", durable=False)
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            log.head()

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        seqs = [log.append(AuditRecord(kind="admin", time=utc_now(), tool=f"r{i}"))
                for i in range(400)]
    finally:
        stop.set()
        for t in readers:
            t.join(timeout=30)
    assert seqs == list(range(400))
    assert log.head()[0] == 400
    log.checkpoint()
    assert log.verify().size == 400
    log.close()
