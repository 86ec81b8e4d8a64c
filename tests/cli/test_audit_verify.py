"""`warrant audit verify` against someone who can write the domain's files but not its keys."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli._run import warrant
from warrant.audit import AuditRecord, utc_now
from warrant.enforce import TrustDomain


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    warrant(path, "init", "--domain", "acme.example")
    for name in ("billing", "support", "ops"):  # each an audited admin record
        warrant(path, "agent", "register", name, "--owner", "it", "--purpose", "tests")
    return path


def forge(home: Path, record: AuditRecord) -> int:
    """Append a well-formed record with a valid leaf hash straight into the database."""
    body = record.to_bytes()
    with sqlite3.connect(home / "state.db") as db:
        (seq,) = db.execute("SELECT COUNT(*) FROM audit_log").fetchone()
        db.execute("INSERT INTO audit_log (seq, record, leaf_hash) VALUES (?, ?, ?)",
                   (seq, body, hashlib.sha256(b"\x00" + body).digest()))
    return int(seq)


@pytest.mark.claim("audit.tamper-evident")
def test_a_record_written_into_the_database_is_named_by_verify_and_never_signed(
        home: Path) -> None:
    witnessed = (home / "checkpoint").read_text()
    seq = forge(home, AuditRecord(kind="admin", time=utc_now(), tool="agent.register",
                                  agent="spiffe://acme.example/agent/mallory"))
    out = warrant(home, "audit", "verify", expect=2)
    assert f"audit record {seq} has no seal and no signed checkpoint covers it" in out
    # The next writer records what it did, but refuses to sign over the planted record ...
    out = warrant(home, "agent", "register", "late", "--owner", "it", "--purpose", "t",
                  expect=2)
    assert f"refusing to sign the audit log: audit record {seq} has no seal" in out
    assert (home / "checkpoint").read_text() == witnessed
    # ... reading still works ...
    assert "mallory" in warrant(home, "audit", "tail", "-n", "2")
    # ... and only a person's explicit decision signs it.
    out = warrant(home, "audit", "checkpoint", "--accept-unsealed")
    assert f"audit record {seq} has no seal" in out  # the warning names it
    assert "vouched for by signed checkpoints only" in warrant(home, "audit", "verify")


def test_sealed_records_not_yet_signed_verify_and_are_reported(home: Path) -> None:
    with TrustDomain.open(home) as domain:
        domain.register_agent("late", owner="it", purpose="tests")
        domain.sign_on_close = False  # as a gateway killed before it closed leaves it
    report = json.loads(warrant(home, "audit", "verify", "--json"))
    assert (report["unsigned_records"], report["seals_checked"]) == (1, True)
    assert "not covered by a signed checkpoint yet, each carries a valid seal" in warrant(
        home, "audit", "verify")


def test_a_checkpoint_kept_elsewhere_catches_a_tail_cut_with_the_checkpoints_stored_here(
        home: Path, tmp_path: Path) -> None:
    early = (home / "checkpoint").read_text()  # the state before the last record
    warrant(home, "agent", "register", "late", "--owner", "it", "--purpose", "tests")
    kept = tmp_path / "kept.note"
    kept.write_text((home / "checkpoint").read_text())  # a copy out of the attacker's reach
    size = json.loads(warrant(home, "audit", "verify", "--json"))["size"]
    # The attacker cuts the newest records and every checkpoint that covered them.
    early_size = int(early.splitlines()[1])
    with sqlite3.connect(home / "state.db") as db:
        db.execute("DELETE FROM audit_log WHERE seq >= ?", (early_size,))
        db.execute("DELETE FROM audit_checkpoints WHERE tree_size > ?", (early_size,))
        db.execute("DELETE FROM audit_nodes")  # derived data; rebuilt from the records
    (home / "checkpoint").write_text(early)
    assert early_size < size
    # What this home holds still agrees with itself (the documented limit) ...
    warrant(home, "audit", "verify")
    # ... the copy kept elsewhere does not.
    out = warrant(home, "audit", "verify", "--checkpoint", str(kept), expect=2)
    assert "records were removed" in out


def test_a_file_that_is_not_a_checkpoint_note_is_a_clear_error(home: Path,
                                                                 tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.note"
    bogus.write_text("hello\n")
    out = warrant(home, "audit", "verify", "--checkpoint", str(bogus), expect=2)
    assert "is not a checkpoint note" in out


def test_a_record_deleted_from_the_middle_is_named(home: Path) -> None:
    with sqlite3.connect(home / "state.db") as db:
        db.execute("DELETE FROM audit_log WHERE seq = 2")
    assert "audit record 2 is missing" in warrant(home, "audit", "verify", expect=2)
    # Writing refuses too (appending to a log with a hole), and names the same record.
    out = warrant(home, "agent", "register", "late", "--owner", "it", "--purpose", "t",
                  expect=2)
    assert "audit record 2 is missing" in out
