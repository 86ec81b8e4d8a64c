"""If a record cannot be made durable, the append fails and nothing half-written is visible."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from warrant.audit import AuditRecord, utc_now
from warrant.errors import AuditWriteError

from .conftest import OpenLog, make_record

BIG = "x" * 20_000  # a few pages per record, so a small size cap fills quickly


def page_count(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        (n,) = conn.execute("PRAGMA page_count").fetchone()
    return int(n)


def rows(db_path: Path) -> list[int]:
    with sqlite3.connect(db_path) as conn:
        return [r[0] for r in conn.execute("SELECT seq FROM audit_log ORDER BY seq")]


@pytest.mark.claim("audit.fail-closed")
def test_appending_to_a_read_only_database_raises_a_write_error(open_log: OpenLog) -> None:
    log = open_log()
    log.append(make_record(0))
    log.close()
    readonly = open_log(readonly=True)
    with pytest.raises(AuditWriteError, match="read-only"):
        readonly.append(make_record(1))
    assert readonly.verify().size == 1


@pytest.mark.claim("audit.fail-closed")
def test_a_full_disk_raises_a_write_error_and_keeps_only_acknowledged_records(
    open_log: OpenLog, db_path: Path
) -> None:
    open_log().close()  # create the schema
    log = open_log(max_page_count=page_count(db_path) + 40)
    acked: list[int] = []
    with pytest.raises(AuditWriteError, match="full"):  # noqa: PT012 - loop until the cap is hit
        for i in range(1000):
            acked.append(log.append(make_record(i, payload=BIG)))
    assert acked
    assert rows(db_path) == acked
    assert log.verify().size == len(acked)


@pytest.mark.claim("audit.fail-closed")
def test_a_batch_that_does_not_fit_leaves_no_record_behind(
    open_log: OpenLog, db_path: Path
) -> None:
    log = open_log()
    log.append(make_record(0))
    log.close()
    capped = open_log(max_page_count=page_count(db_path) + 20)
    with pytest.raises(AuditWriteError):
        capped.append_many([make_record(i, payload=BIG) for i in range(1, 30)])
    assert rows(db_path) == [0]
    # The log recovers once writes fit again.
    assert capped.append(make_record(1)) == 1
    assert capped.verify().size == 2


@pytest.mark.claim("audit.fail-closed")
def test_every_caller_in_a_failing_group_commit_gets_a_write_error(
    open_log: OpenLog, db_path: Path
) -> None:
    open_log().close()
    log = open_log(max_page_count=page_count(db_path) + 60)
    acked: list[int] = []
    failures: list[AuditWriteError] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(20):
            try:
                seq = log.append(make_record(t * 100 + i, payload=BIG))
            except AuditWriteError as exc:
                with lock:
                    failures.append(exc)
            else:
                with lock:
                    acked.append(seq)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert failures
    assert len(acked) + len(failures) == 160
    assert rows(db_path) == sorted(acked) == list(range(len(acked)))
    assert log.verify().size == len(acked)


@pytest.mark.claim("audit.fail-closed")
def test_a_record_that_cannot_be_serialised_raises_a_write_error(open_log: OpenLog) -> None:
    record = AuditRecord(kind="event", time=utc_now(), arguments_redacted={"x": {1, 2}})
    with pytest.raises(AuditWriteError, match="serialised"):
        open_log().append(record)


@pytest.mark.claim("audit.fail-closed")
def test_appending_to_a_closed_log_raises_a_write_error(open_log: OpenLog) -> None:
    log = open_log()
    log.close()
    with pytest.raises(AuditWriteError, match="closed"):
        log.append(make_record(0))
