"""SIEM export: OCSF events to a file, a webhook or syslog, live or one-shot.

A sink has one shape: `write(events)` delivers a batch of OCSF events (plain
JSON) or raises `OSError`; `close()` flushes. `OcsfExporter` subscribes to a
domain's event stream and feeds a sink from a worker thread.

INVARIANT: export never blocks or changes a decision. The listener only
enqueues; a full queue drops the record from export (it stays in the audit
log), counts it in `dropped` and writes one `export.dropped` admin record per
burst; a sink that fails is retried (webhook) and then counted in `failed`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from warrant.audit import AuditLog, AuditRecord

from ._ocsf import to_ocsf
from ._worker import QueueWorker

log = logging.getLogger("warrant.response.export")

#: OCSF `severity_id` → syslog severity (RFC 5424: 6 informational … 2 critical).
_SYSLOG_SEVERITY = {0: 6, 1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 1, 99: 5}
#: Syslog facility 13, "log audit".
_FACILITY_AUDIT = 13
_STOP = object()


class Sink(Protocol):
    """Where OCSF events go. `write` raises `OSError` when the batch was not delivered."""

    def write(self, events: Sequence[Mapping[str, Any]]) -> None: ...
    def close(self) -> None: ...


def _line(event: Mapping[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class FileSink:
    """JSON lines appended to a file; flushed per batch, fsync'ed on close."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, events: Sequence[Mapping[str, Any]]) -> None:
        self._file.write("".join(_line(e) + "\n" for e in events))
        self._file.flush()

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()


class StreamSink:
    """JSON lines to an open text stream (standard output); never closes it."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, events: Sequence[Mapping[str, Any]]) -> None:
        self._stream.write("".join(_line(e) + "\n" for e in events))
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()


class SyslogSink:
    """RFC 5424 messages (facility `log audit`) over UDP, or TCP with octet counting."""

    def __init__(self, host: str, port: int, *, tcp: bool = False, timeout: float = 5.0,
                 app_name: str = "warrant"):
        self.host, self.port, self.tcp, self.timeout = host, port, tcp, timeout
        self._app = app_name
        self._hostname = socket.gethostname()[:255] or "-"
        self._sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            kind = socket.SOCK_STREAM if self.tcp else socket.SOCK_DGRAM
            sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, kind)
            sock.settimeout(self.timeout)
            try:
                sock.connect((self.host, self.port))
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def message(self, event: Mapping[str, Any]) -> bytes:
        """One event as an RFC 5424 message (without transport framing)."""
        severity = _SYSLOG_SEVERITY.get(int(event.get("severity_id", 0)), 5)
        stamp = event.get("time")
        when = (dt.datetime.fromtimestamp(stamp / 1000, dt.UTC) if isinstance(stamp, int)
                else dt.datetime.now(dt.UTC))
        msgid = f"ocsf-{event.get('class_uid', 0)}"
        header = (f"<{_FACILITY_AUDIT * 8 + severity}>1 "
                  f"{when.isoformat(timespec='milliseconds').replace('+00:00', 'Z')} "
                  f"{self._hostname} {self._app} {os.getpid()} {msgid} - ")
        return header.encode("ascii", "replace") + _line(event).encode("utf-8")

    def write(self, events: Sequence[Mapping[str, Any]]) -> None:
        for event in events:
            data = self.message(event)
            try:
                sock = self._socket()
                if self.tcp:
                    sock.sendall(str(len(data)).encode("ascii") + b" " + data)  # RFC 6587
                else:
                    sock.send(data)
            except OSError:
                self.close()  # reconnect on the next write
                raise

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class WebhookSink:
    """POST each batch as a JSON array; retry failures a bounded number of times."""

    def __init__(self, url: str, *, timeout: float = 5.0, retries: int = 3,
                 backoff: float = 0.2, sleep: Callable[[float], None] = time.sleep):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook `{url}` must be an http:// or https:// URL")
        self.url, self.timeout, self.retries, self.backoff = url, timeout, retries, backoff
        self._sleep = sleep

    def write(self, events: Sequence[Mapping[str, Any]]) -> None:
        body = ("[" + ",".join(_line(e) for e in events) + "]").encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "warrant-export"})
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                    response.read()
                return
            except (urllib.error.URLError, OSError) as exc:
                if attempt == self.retries:
                    raise OSError(f"webhook `{self.url}` failed {attempt + 1} times: {exc}") \
                        from exc
                self._sleep(self.backoff * 2 ** attempt)

    def close(self) -> None:
        """Nothing to flush: every batch is sent when written."""


class ExportDomain(Protocol):
    """What the exporter needs from a trust domain (`warrant.enforce.TrustDomain` fits)."""

    def subscribe(self, listener: Callable[[int, AuditRecord], None]) -> None: ...
    def record_admin(self, action: str, detail: Mapping[str, Any]) -> int: ...


class OcsfExporter:
    """Streams a domain's audit records to a sink as OCSF events, off the decision path."""

    def __init__(self, domain: ExportDomain, sink: Sink, *, queue_size: int = 10_000,
                 batch_size: int = 100, tenant: str | None = None):
        self.domain, self.sink, self.tenant = domain, sink, tenant
        self._worker = QueueWorker("warrant-export", self._work, queue_size=queue_size)
        self._queue = self._worker.queue
        self._batch = batch_size
        self._lock = threading.Lock()
        self._dropped = self._exported = self._failed = 0
        self._burst = False

    def start(self) -> OcsfExporter:
        self._worker.start()
        self.domain.subscribe(self._on_record)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, deliver what is queued (bounded by `timeout`), close the sink."""
        self._worker.stop(_STOP, timeout)
        self.sink.close()

    def __enter__(self) -> OcsfExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record was delivered or given up on; False on timeout."""
        return self._worker.drain(timeout)

    def metrics(self) -> dict[str, int]:
        """`exported`, `dropped` (queue full) and `failed` (sink or mapping error) counts."""
        with self._lock:
            return {"exported": self._exported, "dropped": self._dropped,
                    "failed": self._failed, "queued": self._queue.qsize()}

    @property
    def dropped(self) -> int:
        return self.metrics()["dropped"]

    # -- the listener: appending thread, never blocks -------------------------------------

    def _on_record(self, seq: int, record: AuditRecord) -> None:
        if not self._worker.running:
            return
        try:
            self._queue.put_nowait((seq, record))
        except queue.Full:
            with self._lock:
                self._dropped += 1
                if self._burst:
                    return
                self._burst = True
            # One admin record per burst (its own append re-enters here and is counted).
            self.domain.record_admin("export.dropped", {
                "reason": "export queue full", "queue_size": self._queue.maxsize,
                "first_dropped_seq": seq})

    # -- the worker --------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < self._batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in items)
            try:
                self._deliver([i for i in items if isinstance(i, tuple)])
            finally:
                for _ in items:
                    self._queue.task_done()
            if stop:
                return

    def _deliver(self, items: list[tuple[int, AuditRecord]]) -> None:
        events: list[dict[str, Any]] = []
        failed = 0
        for seq, record in items:
            try:
                events.append(to_ocsf(record, seq=seq, tenant=self.tenant))
            except Exception:
                log.exception("audit record %d could not be mapped to OCSF", seq)
                failed += 1
        try:
            if events:
                self.sink.write(events)
        except Exception:
            log.exception("OCSF export of %d event(s) failed", len(events))
            failed += len(events)
            events = []
        with self._lock:
            self._exported += len(events)
            self._failed += failed
            if self._queue.qsize() == 0:
                self._burst = False


def log_events(audit_log: AuditLog, *, since: int = 0, until: int | None = None,
               tenant: str | None = None) -> Iterator[dict[str, Any]]:
    """The log's records with `since <= seq < until` (default: the head), as OCSF events."""
    size = audit_log.head()[0] if until is None else until
    for seq in range(since, size):
        yield to_ocsf(audit_log.get(seq).record, seq=seq, tenant=tenant)


def export_events(events: Iterable[Mapping[str, Any]], sink: Sink, *,
                  batch_size: int = 500) -> int:
    """Write `events` to `sink` in batches; the number written. Sink errors propagate."""
    batch: list[Mapping[str, Any]] = []
    count = 0
    for event in events:
        batch.append(event)
        if len(batch) >= batch_size:
            sink.write(batch)
            count += len(batch)
            batch = []
    if batch:
        sink.write(batch)
        count += len(batch)
    return count
