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
    wakes the worker only when it sleeps, so a busy stream costs no lock and no
    wake-up per record; the worker takes everything queued at once.
    `poke` wakes it without an item (work queued elsewhere, e.g. triage).
    """

    def __init__(self, name: str, work: Callable[[list[object]], None], *, max_items: int,
                 max_batch: int = 1024):
        self.max_items, self.running = max_items, False
        self._name, self._work, self._max_batch = name, work, max_batch
        self._items: deque[object] = deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._busy = self._sleeping = self._stopping = False
        self._poked = False
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._items)

    def start(self) -> None:
        self.running, self._stopping = True, False
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def submit(self, item: object) -> bool:
        """Queue `item`; False (nothing queued) when the queue is full."""
        if len(self._items) >= self.max_items:
            return False
        self._items.append(item)
        if self._sleeping:
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
        while True:
            if not items and not self._poked:
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
            self._busy, self._poked = True, False
            batch = [items.popleft() for _ in range(min(len(items), self._max_batch))]
            self._work(batch)
