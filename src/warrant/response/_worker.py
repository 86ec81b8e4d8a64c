"""One bounded queue drained by one daemon thread: the shape the engine and the exporter share.

Listeners on the audit stream only enqueue (never block the appending thread);
the worker does the slow part. `stop` hands the worker a sentinel and waits
for it (bounded); `drain` waits until every queued item was handled.
"""

from __future__ import annotations

import contextlib
import queue
import threading
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
