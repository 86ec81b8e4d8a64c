"""Record seals: whoever can write the database but lacks the domain key cannot get a
record signed, and `verify` names every record Warrant did not append itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warrant.audit import AuditLog, leaf_hash, root_from_leaf_hashes, sign_checkpoint
from warrant.audit._seal import Sealer
from warrant.errors import AuditIntegrityError, AuditWriteError
from warrant.store._audit import SqliteAuditBackend

from .conftest import ORIGIN, OpenLog, make_record


def stored_checkpoints(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        (n,) = conn.execute("SELECT COUNT(*) FROM audit_checkpoints").fetchone()
    return int(n)


def forge(db_path: Path, seq: int, *, seal: bytes | None = None) -> None:
    """Insert a well-formed record with a correct leaf hash, as an attacker with the file can."""
    data = make_record(seq, payload="planted").to_bytes()
    with sqlite3.connect(db_path) as conn:
        if seal is None:  # the statement every Warrant before seals used
            conn.execute("INSERT INTO audit_log (seq, record, leaf_hash) VALUES (?, ?, ?)",
                         (seq, data, leaf_hash(data)))
        else:
            conn.execute("INSERT INTO audit_log (seq, record, leaf_hash, seal) "
                         "VALUES (?, ?, ?, ?)", (seq, data, leaf_hash(data), seal))


def signed_log(open_log: OpenLog, n: int) -> AuditLog:
    log = open_log()
    log.append_many([make_record(i) for i in range(n)])
    log.checkpoint()
    return log


@pytest.mark.claim("audit.sealed")
@pytest.mark.parametrize("seal", [None, b"\x00" * 32], ids=["no seal", "made-up seal"])
def test_a_forged_record_at_the_tail_is_never_signed_and_verify_names_it(
        open_log: OpenLog, db_path: Path, seal: bytes | None) -> None:
    signed_log(open_log, 5).close()
    forge(db_path, 5, seal=seal)
    writer = open_log()  # the next Warrant process: appends after the forgery, then closes
    assert writer.append(make_record(6)) == 6
    with pytest.raises(AuditIntegrityError, match=r"refusing to sign.*audit record 5 "):
        writer.checkpoint()
    assert stored_checkpoints(db_path) == 1  # nothing new was signed
    with pytest.raises(AuditIntegrityError, match=r"^audit record 5 (has no seal|has a seal)"):
        writer.verify()


@pytest.mark.claim("audit.sealed")
def test_a_sealed_record_copied_to_another_seq_does_not_verify(
        open_log: OpenLog, db_path: Path) -> None:
    signed_log(open_log, 5).close()
    with sqlite3.connect(db_path) as conn:  # a genuine sealed row, replayed at the tail
        conn.execute("INSERT INTO audit_log (seq, record, leaf_hash, seal) "
                     "SELECT 5, record, leaf_hash, seal FROM audit_log WHERE seq = 2")
    log = open_log()
    with pytest.raises(AuditIntegrityError, match="record 5 has a seal that does not match"):
        log.checkpoint()
    with pytest.raises(AuditIntegrityError, match="record 5 has a seal that does not match"):
        log.verify()


@pytest.mark.claim("audit.sealed")
def test_sealed_records_swapped_before_they_are_signed_are_named(
        open_log: OpenLog, db_path: Path) -> None:
    log = signed_log(open_log, 3)
    log.append_many([make_record(i) for i in range(3, 6)])  # sealed, not yet signed
    log.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE audit_log SET seq = -1 WHERE seq = 3")
        conn.execute("UPDATE audit_log SET seq = 3 WHERE seq = 4")
        conn.execute("UPDATE audit_log SET seq = 4 WHERE seq = -1")
    reopened = open_log()
    with pytest.raises(AuditIntegrityError, match="records 3, 4 have a seal that does not"):
        reopened.checkpoint()


@pytest.mark.claim("audit.sealed")
@pytest.mark.parametrize("strip", [
    "UPDATE audit_log SET seal = NULL",
    "ALTER TABLE audit_log DROP COLUMN seal",  # the next writable open adds it back, empty
])
def test_stripping_every_seal_does_not_make_unsigned_records_pass_as_old_ones(
        open_log: OpenLog, db_path: Path, strip: str) -> None:
    log = signed_log(open_log, 5)
    log.append_many([make_record(i) for i in range(5, 8)])  # sealed, not yet signed
    log.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(strip)
    reopened = open_log()
    with pytest.raises(AuditIntegrityError, match="records 5, 6, 7 have no seal"):
        reopened.checkpoint()
    with pytest.raises(AuditIntegrityError, match="records 5, 6, 7 have no seal"):
        reopened.verify()
    assert stored_checkpoints(db_path) == 1


@pytest.mark.claim("audit.sealed")
def test_a_rewritten_signed_record_is_not_blessed_by_the_next_checkpoint(
        open_log: OpenLog, db_path: Path) -> None:
    signed_log(open_log, 8).close()
    forged = make_record(2, payload="nothing to see").to_bytes()
    with sqlite3.connect(db_path) as conn:  # leaf hash and seal column left consistent-looking
        conn.execute("UPDATE audit_log SET record = ?, leaf_hash = ? WHERE seq = 2",
                     (forged, leaf_hash(forged)))
    log = open_log()
    log.append(make_record(8))
    with pytest.raises(AuditIntegrityError, match="do not extend its signed checkpoint at size 8"):
        log.checkpoint()
    assert stored_checkpoints(db_path) == 1


@pytest.mark.claim("audit.sealed")
def test_a_log_cut_below_its_signed_checkpoint_is_not_signed_again(
        open_log: OpenLog, db_path: Path) -> None:
    signed_log(open_log, 8).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq >= 6")
        conn.execute("DELETE FROM audit_nodes")
    with pytest.raises(AuditIntegrityError, match="holds 6 records but a signed checkpoint"):
        open_log().checkpoint()


@pytest.mark.claim("audit.sealed")
def test_two_writers_on_one_database_seal_and_sign_each_others_records(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    first = AuditLog(SqliteAuditBackend(tmp_path / "state.db"), key, origin=ORIGIN)
    second = AuditLog(SqliteAuditBackend(tmp_path / "state.db"), key, origin=ORIGIN)
    try:
        for i in range(12):
            writer = first if i % 2 == 0 else second
            assert writer.append(make_record(i)) == i
            if i % 3 == 2:
                (second if i % 2 == 0 else first).checkpoint()
        cp = first.checkpoint()
        report = second.verify(trusted=[cp])
        assert (report.size, report.seals_checked, report.unsealed_signed) == (12, True, 0)
    finally:
        first.close()
        second.close()


# -- logs from before seals ----------------------------------------------------

def legacy_log(db_path: Path, key: Ed25519PrivateKey, n: int, signed: int) -> None:
    """What an older release left: no seal column, `n` records, a checkpoint at `signed`."""
    records = [make_record(i).to_bytes() for i in range(n)]
    leaves = [leaf_hash(r) for r in records]
    cp = sign_checkpoint(key, ORIGIN, signed, root_from_leaf_hashes(leaves[:signed]))
    with sqlite3.connect(db_path) as conn:
        conn.executescript("""
            CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, record BLOB NOT NULL,
                                    leaf_hash BLOB NOT NULL);
            CREATE TABLE audit_checkpoints (id INTEGER PRIMARY KEY AUTOINCREMENT,
                                            tree_size INTEGER NOT NULL, note TEXT NOT NULL);
        """)
        conn.executemany("INSERT INTO audit_log VALUES (?, ?, ?)",
                         [(i, r, h) for i, (r, h) in enumerate(zip(records, leaves, strict=True))])
        conn.execute("INSERT INTO audit_checkpoints (tree_size, note) VALUES (?, ?)",
                     (signed, cp.to_note()))


@pytest.mark.claim("audit.sealed")
def test_a_signed_log_from_before_seals_opens_verifies_and_goes_on_sealed(
        open_log: OpenLog, db_path: Path, key: Ed25519PrivateKey) -> None:
    legacy_log(db_path, key, 6, signed=6)
    readonly = open_log(readonly=True)  # no seal column yet: seals read as missing
    assert readonly.verify().unsealed_signed == 6
    log = open_log()
    assert log.append(make_record(6)) == 6
    log.checkpoint()
    report = log.verify()
    assert (report.size, report.seals_checked, report.unsealed_signed) == (7, True, 6)


@pytest.mark.claim("audit.sealed")
def test_records_an_older_release_left_unsigned_are_signed_only_when_a_person_accepts_them(
        open_log: OpenLog, db_path: Path, key: Ed25519PrivateKey,
        caplog: pytest.LogCaptureFixture) -> None:
    legacy_log(db_path, key, 6, signed=4)  # killed before it signed records 4 and 5
    log = open_log()
    log.append(make_record(6))
    with pytest.raises(AuditIntegrityError, match="records 4, 5 have no seal") as refused:
        log.checkpoint()
    assert "--accept-unsealed" in refused.value.hint
    cp = log.checkpoint(accept_unsealed=True)
    assert cp.tree_size == 7
    assert "audit records 4, 5 have no seal" in caplog.text
    assert log.verify().unsealed_signed == 6


def test_a_log_without_the_signing_key_refuses_to_append_and_does_not_check_seals(
        open_log: OpenLog, db_path: Path, key: Ed25519PrivateKey) -> None:
    open_log().append(make_record(0))
    reader = AuditLog(SqliteAuditBackend(db_path), None, public_key=key.public_key(),
                      origin=ORIGIN)
    try:
        with pytest.raises(AuditWriteError, match="without the domain signing key"):
            reader.append(make_record(1))
        assert reader.verify().seals_checked is False
    finally:
        reader.close()


def test_a_seal_is_bound_to_its_seq_its_leaf_its_log_and_its_key() -> None:
    key = Ed25519PrivateKey.generate()
    sealer = Sealer(key, ORIGIN)
    leaf = leaf_hash(b"record")
    seal = sealer.seal(7, leaf)
    assert sealer.check(7, leaf, seal)
    assert not sealer.check(8, leaf, seal)
    assert not sealer.check(7, leaf_hash(b"other"), seal)
    assert not sealer.check(7, leaf, None)
    assert not Sealer(key, "other.example/audit").check(7, leaf, seal)
    assert not Sealer(Ed25519PrivateKey.generate(), ORIGIN).check(7, leaf, seal)
