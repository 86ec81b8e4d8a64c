"""Group commit: many concurrent appends, one transaction and one fsync.

Leader/follower, as in LevelDB's write queue. Callers join a queue; whoever
finds no write in progress becomes the single writer, takes everything queued
(up to `max_batch` entries) and commits it as one batch. Meanwhile others queue
up behind it; when the batch is done, the writer wakes every caller in it and
hands the writer role to the head of the queue, which commits the next batch.

Why not a dedicated writer thread: with one caller, a thread hand-off costs two
context switches per append, which on a small machine is more than the write
itself; here a lone caller writes inline and concurrent callers still share
one commit. Exactly one thread writes at any moment either way.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from warrant.errors import AuditWriteError

Entries = list[tuple[bytes, bytes]]


class _Pending:
    """One caller's entries; `event` fires when it is done or made the writer.

    Only callers that have to wait get an Event (creating one costs more than
    a small write); a caller that becomes the writer at once never waits.
    """

    __slots__ = ("entries", "error", "event", "first_seq", "lead")

    def __init__(self, entries: Entries) -> None:
        self.entries = entries
        self.event: threading.Event | None = None
        self.first_seq = -1
        self.error: AuditWriteError | None = None
        self.lead = False

    @property
    def done(self) -> bool:
        return self.first_seq >= 0 or self.error is not None


class GroupCommitter:
    """Serialises calls to `write` and batches concurrent ones.

    `write(entries)` stores the entries atomically and returns the first seq,
    or raises `AuditWriteError`; it is only ever called by one thread at a time.
    """

    def __init__(
        self, write: Callable[[Entries], int], *, max_batch: int, timeout_s: float
    ) -> None:
        self._write = write
        self._max_batch = max(1, max_batch)
        self._timeout_s = timeout_s
        self._cond = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._writing = False
        self._closed = False

    def submit(self, entries: Entries) -> int:
        """Commit `entries` as contiguous seqs; returns the first once committed."""
        pending = _Pending(entries)
        with self._cond:
            if self._closed:
                raise AuditWriteError("the audit log is closed")
            self._queue.append(pending)
            if self._writing:
                pending.event = threading.Event()
            else:
                self._writing = True
                pending.lead = True
        if not pending.lead:
            self._wait(pending)
        if pending.lead and not pending.done:
            self._lead()
        if pending.error is not None:
            raise pending.error
        return pending.first_seq

    def _wait(self, pending: _Pending) -> None:
        event = pending.event
        assert event is not None  # set under the lock for every follower
        deadline = time.monotonic() + self._timeout_s
        while not event.wait(max(0.0, deadline - time.monotonic())):
            with self._cond:
                if event.is_set():
                    continue  # finished or promoted just now
                if pending in self._queue:
                    self._queue.remove(pending)
                    raise AuditWriteError(f"the audit log did not commit within {self._timeout_s}s")
            # Already inside a batch being written: its outcome is imminent.
            deadline = time.monotonic() + self._timeout_s

    def _lead(self) -> None:
        with self._cond:
            batch: list[_Pending] = []
            n = 0
            while self._queue and (n == 0 or n + len(self._queue[0].entries) <= self._max_batch):
                item = self._queue.popleft()
                n += len(item.entries)
                batch.append(item)
        try:
            first = self._write([e for p in batch for e in p.entries])
        except BaseException as exc:
            # INVARIANT: the batch is all-or-nothing, so every caller in it fails.
            error = (
                exc
                if isinstance(exc, AuditWriteError)
                else AuditWriteError(f"cannot append to the audit log: {exc!r}")
            )
            for p in batch:
                p.error = error
            if not isinstance(exc, Exception):
                self._finish(batch)
                raise
        else:
            for p in batch:
                p.first_seq = first
                first += len(p.entries)
        self._finish(batch)

    def _finish(self, batch: list[_Pending]) -> None:
        with self._cond:
            for p in batch:
                if p.event is not None:
                    p.event.set()
            if self._queue:
                nxt = self._queue[0]
                nxt.lead = True  # hand over the writer role
                if nxt.event is not None:
                    nxt.event.set()
            else:
                self._writing = False
                self._cond.notify_all()

    def close(self) -> None:
        """Refuse new appends and wait for queued ones to be committed."""
        with self._cond:
            self._closed = True
            while self._writing:
                self._cond.wait()
