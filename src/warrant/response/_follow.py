"""Following the audit log from outside: response for PEPs that run no engine.

`warrant hook claude-code`, `warrant check` and SDK guards in short-lived
processes decide calls and write them to the domain's audit log, but a response
engine in such a process would live for one call. `warrant respond` runs one
engine for the whole domain instead: an `AuditFollower` reads every record any
process appends, in seq order, and feeds it to the engine exactly as the
gateway's own engine is fed in-process.

One detection authority per record. The follower holds `response.lock` in the
domain home exclusively; a gateway holds it shared for as long as its own
engine runs. So a follower refuses to start next to a gateway that has an
engine, and a gateway started next to a follower leaves detection to it (and
loses only its inline kill of sandboxed servers: revocations still take effect
on the next call).

The follower remembers where it stopped (`response.cursor` in the home), so
records appended while it was down are examined when it comes back rather than
skipped; the first start begins at the log's head (the history before it
primes the detections' baselines, as a gateway's engine does).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from pathlib import Path
from typing import IO

from warrant.audit import AuditRecord
from warrant.errors import StateError

from ._engine import ResponseEngine
from ._model import ResponseDomain

log = logging.getLogger("warrant.response")

LOCK_FILE = "response.lock"
CURSOR_FILE = "response.cursor"
#: Records fed per poll at most, so the cursor is saved at least that often.
POLL_BATCH = 1_000


class ResponseLock:
    """Who does detection for a domain: one follower (exclusive) or gateways (shared).

    An advisory `flock` on `<home>/response.lock`, released when the process
    ends however it ends, so a crashed follower never blocks the next one.
    """

    def __init__(self, home: Path):
        self._path = Path(home) / LOCK_FILE
        self._file: IO[bytes] | None = None

    def _take(self, mode: int) -> bool:
        if self._file is not None:
            raise RuntimeError("the response lock is already held by this object")
        handle = self._path.open("ab")
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        except OSError:
            handle.close()
            raise
        self._file = handle
        return True

    def exclusive(self) -> bool:
        """Take the lock as the domain's follower; False if anyone holds it."""
        return self._take(fcntl.LOCK_EX)

    def shared(self) -> bool:
        """Take the lock as a gateway with its own engine; False if a follower holds it."""
        return self._take(fcntl.LOCK_SH)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None


class AuditFollower:
    """Feeds `engine` every record any process appends to `domain`'s audit log."""

    def __init__(self, domain: ResponseDomain, engine: ResponseEngine, *,
                 interval: float = 0.05):
        self.domain, self.engine, self.interval = domain, engine, interval
        self._cursor_path = Path(domain.home) / CURSOR_FILE
        saved = self._saved_cursor()
        self.next_seq = self.domain.audit.head()[0] if saved is None else saved
        if saved is None:
            self._save_cursor()  # from now on, nothing appended is ever skipped

    def _saved_cursor(self) -> int | None:
        """Where the last follower stopped; None on the first start."""
        try:
            text = self._cursor_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read {self._cursor_path}: {exc}",
                             hint="fix its permissions, or delete it to start at the "
                                  "log's head (records since the last run are then "
                                  "not examined)") from exc
        try:
            value = json.loads(text)["next_seq"]
        except (ValueError, KeyError, TypeError):
            value = None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise StateError(f"{self._cursor_path} is damaged: it should hold "
                             '{"next_seq": N}',
                             hint="delete it to start at the log's head (records since "
                                  "the last run are then not examined)")
        return value

    def start(self) -> None:
        """Start the engine, primed with the history before the cursor, not listening
        in-process: every record, this process's own included, comes from the log."""
        self.engine.start(listen=False, primed_before=self.next_seq)

    def poll(self) -> int:
        """Feed what was appended since the last poll (at most `POLL_BATCH` records);
        returns how many. The cursor is saved after each batch."""
        fed = 0
        for seq, data in self.domain.audit.raw_from(self.next_seq):
            if seq != self.next_seq:
                # Rows are committed with contiguous seqs: a gap is a deleted record.
                log.error("audit record %d is missing; following from %d (run "
                          "`warrant audit verify`)", self.next_seq, seq)
            try:
                record = AuditRecord.from_bytes(data)
            except (ValueError, TypeError):
                log.exception("audit record %d cannot be read; skipped by detection", seq)
            else:
                self.engine.feed(seq, record)
            self.next_seq = seq + 1
            fed += 1
            if fed >= POLL_BATCH:
                break
        if fed:
            self._save_cursor()
        return fed

    def _save_cursor(self) -> None:
        tmp = self._cursor_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"next_seq": self.next_seq}), encoding="utf-8")
            os.replace(tmp, self._cursor_path)
        except OSError:
            # Detection goes on; a restart would examine some records again, never
            # skip any.
            log.exception("cannot save the response cursor to %s", self._cursor_path)

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set (a full batch is followed at once by the next)."""
        while not stop.is_set():
            if self.poll() < POLL_BATCH:
                stop.wait(self.interval)

    def close(self, timeout: float = 5.0) -> None:
        """Finish what the engine has queued and stop it."""
        self.engine.drain(timeout)
        self.engine.stop(timeout)
