"""`warrant audit verify` against someone who can write the domain's files but not its keys."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli._run import warrant


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    warrant(path, "init", "--domain", "acme.example")
    for name in ("billing", "support", "ops"):  # each an audited admin record
        warrant(path, "agent", "register", name, "--owner", "it", "--purpose", "tests")
    return path


def forge(home: Path, record: dict[str, object]) -> None:
    """Append a record with a valid leaf hash straight into the database."""
    body = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    with sqlite3.connect(home / "state.db") as db:
        (seq,) = db.execute("SELECT COUNT(*) FROM audit_log").fetchone()
        db.execute("INSERT INTO audit_log (seq, record, leaf_hash) VALUES (?, ?, ?)",
                   (seq, body, hashlib.sha256(b"\x00" + body).digest()))


def test_a_record_appended_behind_the_domains_back_is_reported_and_never_signed_by_verify(
        home: Path) -> None:
    witnessed = (home / "checkpoint").read_text()
    forge(home, {"kind": "admin", "tool": "agent.register", "time": "2020-01-01T00:00:00Z"})
    report = json.loads(warrant(home, "audit", "verify", "--json"))
    assert report["unsigned_records"] == 1
    assert report["signed_size"] == report["size"] - 1
    # Verifying blessed nothing: the witnessed checkpoint is the one from before.
    assert (home / "checkpoint").read_text() == witnessed
    assert "not covered by a signed checkpoint yet" in warrant(home, "audit", "verify")


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
