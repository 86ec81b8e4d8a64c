"""Bounded queues drained by one daemon thread: `QueueWorker` (exporter), `BatchWorker` (engine).

Listeners on the audit stream only enqueue (never block the appending thread);
the worker does the slow part. `stop` hands the worker a sentinel and waits
for it (bounded); `drain` waits until every queued item was handled.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable


class QueueWorker:
    """A bounded queue plus the thread that works it off; `running` gates the listener."""

    def __init__(self, name: str, work: Callable[[], None], *, queue_size: int):
        self.queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self.running = False
        self._name, self._work = name, work
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.running = True
        self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, sentinel: object, timeout: float) -> None:
        """Stop accepting, let the worker finish what is queued (bounded by `timeout`)."""
        self.running = False
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self.queue.put(sentinel, timeout=timeout)
            self._thread.join(timeout)

    def drain(self, timeout: float) -> bool:
        """Wait until every queued item was handled; False on timeout."""
        done = self.queue.all_tasks_done
        with done:
            return done.wait_for(lambda: self.queue.unfinished_tasks == 0, timeout)


class BatchWorker:
    """A bounded deque worked off in batches by one daemon thread (the engine's shape).

    The decision path pays one `deque.append` (atomic, no lock) per record and
    wakes the worker only when it sleeps; the worker takes everything queued at
    once. With `linger` (seconds) the worker waits that long after each batch
    before it announces sleep, so a steady stream wakes it once per `linger`,
    not once per record (on a stream slower than the work, without it, every
    record is a wake-up); an `urgent` submit ends the wait at once.
    `poke` wakes it without an item (work queued elsewhere, e.g. triage).
    """

    def __init__(self, name: str, work: Callable[[list[object]], None], *, max_items: int,
                 max_batch: int = 1024, linger: float = 0.0):
        self.max_items, self.running = max_items, False
        self._name, self._work, self._max_batch = name, work, max_batch
        self._linger = linger
        self._items: deque[object] = deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._busy = self._sleeping = self._lingering = self._stopping = False
        self._poked = False
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._items)

    def start(self) -> None:
        self.running, self._stopping = True, False
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def submit(self, item: object, *, urgent: bool = False) -> bool:
        """Queue `item`; False (nothing queued) when the queue is full.

        An `urgent` item also cuts the worker's linger short (it is worked off
        now, not up to `linger` later).
        """
        if len(self._items) >= self.max_items:
            return False
        self._items.append(item)
        if self._sleeping or (urgent and self._lingering):
            self._wake.set()
        return True

    def poke(self) -> None:
        self._poked = True
        self._wake.set()

    def stop(self, timeout: float) -> None:
        """Stop accepting, let the worker finish what is queued (bounded by `timeout`)."""
        self.running = False
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self, timeout: float) -> bool:
        """Wait until every queued item was handled and the worker is idle; False on timeout."""
        self.poke()
        with self._idle:
            return self._idle.wait_for(
                lambda: not self._items and not self._busy and not self._poked, timeout)

    def _run(self) -> None:
        items = self._items
        lingered = True  # only a batch just worked off is followed by a linger
        while True:
            if not items and not self._poked:
                if self._linger and not lingered and not self._stopping:
                    # Stay awake a moment without announcing sleep: on a busy stream
                    # appenders then never pay for waking this thread (a context switch
                    # and a GIL hand-off per record), and what arrives meanwhile is
                    # worked off as one batch. Urgent items and pokes end it early.
                    lingered = self._lingering = True
                    # Re-check after announcing: an urgent append that saw `_lingering`
                    # False happened before this check and is seen here.
                    if not items and not self._poked:
                        self._wake.wait(self._linger)
                    self._lingering = False
                    self._wake.clear()
                    continue
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()
                if self._stopping:
                    return
                self._sleeping = True
                # Re-check after announcing sleep: an append that saw `_sleeping`
                # False happened before this check and is seen here.
                if not items and not self._poked:
                    self._wake.wait(0.5)
                self._sleeping = False
                self._wake.clear()
                continue
            self._busy, self._poked, lingered = True, False, False
            batch = [items.popleft() for _ in range(min(len(items), self._max_batch))]
            self._work(batch)
