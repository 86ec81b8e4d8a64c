"""Feed stdin, read stdout/stderr as they come, and stop a command at its deadline or cap.

Reading incrementally is what makes the output cap real: a command printing
without end is killed once it passes the cap, not after filling memory.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

from ._result import KilledBy

_CHUNK = 65536
#: How long to wait for a killed process group to be reaped.
_REAP_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Outcome:
    returncode: int
    stdout: bytes
    stderr: bytes
    status: bytes
    stopped_for: KilledBy | None


def pump(  # noqa: PLR0912 - one event loop; splitting it hides the kill paths
        proc: subprocess.Popen[bytes], stdin: bytes | None, status_fd: int | None, *,
         cap: int, deadline: float) -> Outcome:
    """Drive `proc` to completion; kill its process group on timeout or past `cap` bytes."""
    if proc.stdout is None or proc.stderr is None:
        raise ValueError("pump needs a process started with stdout and stderr pipes")
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    buffers: dict[int, bytearray] = {out_fd: bytearray(), err_fd: bytearray()}
    status = bytearray()
    stopped_for: KilledBy | None = None
    pending = memoryview(stdin or b"")
    in_fd = proc.stdin.fileno() if proc.stdin is not None else -1
    with selectors.DefaultSelector() as sel:
        for fd in buffers:
            sel.register(fd, selectors.EVENT_READ)
        if status_fd is not None:
            sel.register(status_fd, selectors.EVENT_READ)
        if proc.stdin is not None:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
        total = 0
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                stopped_for = "timeout"
                break
            for key, _ in sel.select(remaining):
                fd = int(key.fd)
                if fd == in_fd:
                    pending = _feed(proc, sel, pending)
                    continue
                data = os.read(fd, _CHUNK)
                if not data:
                    sel.unregister(fd)
                elif fd == status_fd:
                    status += data
                else:
                    keep = max(0, cap - total)
                    buffers[fd] += data[:keep]
                    total += len(data)
            if total > cap:
                stopped_for = "output"
                break
    if stopped_for is not None:
        _kill_group(proc)
    try:
        returncode = proc.wait(timeout=max(0.0, deadline - time.monotonic()) + _REAP_SECONDS)
    except subprocess.TimeoutExpired:
        stopped_for = stopped_for or "timeout"
        _kill_group(proc)
        returncode = proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    return Outcome(returncode=returncode, stdout=bytes(buffers[out_fd]),
                   stderr=bytes(buffers[err_fd]), status=bytes(status),
                   stopped_for=stopped_for)


def _feed(proc: subprocess.Popen[bytes], sel: selectors.BaseSelector,
          pending: memoryview) -> memoryview:
    if proc.stdin is None:
        return pending
    try:
        written = os.write(proc.stdin.fileno(), pending[:_CHUNK]) if pending else 0
    except BrokenPipeError:  # the command stopped reading: that is its business
        written = len(pending)
    pending = pending[written:]
    if not pending:
        sel.unregister(proc.stdin.fileno())
        proc.stdin.close()
    return pending


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # bubblewrap leads its own process group; its PID 1 dies with it (die-with-parent)
    # and takes the whole PID namespace along.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
