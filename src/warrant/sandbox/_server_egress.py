"""The egress proxy of a long-running sandboxed server (a stdio MCP server).

The one-shot runner starts bubblewrap itself, so it reads bubblewrap's status
and places the proxy before releasing the command. A server is started by
someone else (the MCP SDK's `stdio_client`, which passes no file descriptors),
through the launcher. So the caller's process hosts a `ServerEgress`: a Unix
control socket in a fresh 0700 directory, the launcher's `--egress-control`.
The launcher connects to it (as root, before dropping privileges) and hands the
connection to bubblewrap as `--json-status-fd` and, duplicated, `--block-fd`.
One thread here then:

1. accepts one connection, only from our own uid;
2. reads the sandbox's first PID and checks it is a child of the peer (bubblewrap,
   the launcher's process after its exec), so the proxy cannot be placed in some
   other process's namespace;
3. starts the `EgressProxy` inside that PID's network namespace;
4. writes one byte: only now does the server start;
5. waits for EOF (bubblewrap exited: the sandbox is gone) and closes the proxy.

Any failure before step 4 kills the sandbox, so the server never runs without
its proxy (it would have no network at all, but would be reported as up), and
the reason is kept in `error` for the caller to report.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import tempfile
import threading
from collections.abc import Sequence

from ._egress import EgressHook, EgressProxy, EgressRecord
from ._errors import SandboxError

#: How long the launcher may take from spawn to bubblewrap reporting the sandbox's PID.
_START_SECONDS = 30.0
_STATUS_LIMIT = 4096


class ServerEgress:
    """Hosts the egress proxy of one sandboxed server; `close()` when the server stops."""

    def __init__(self, allowed_hosts: Sequence[str], on_connection: EgressHook, *,
                 server: str = "server"):
        if os.geteuid() != 0:
            raise SandboxError(
                f"`{server}`: network `egress-allowlist` for a long-running server needs "
                "Warrant to run as root (it places the egress proxy in the server's network "
                "namespace); the server was not started",
                hint="run the gateway as root, or use a profile with network = \"none\"")
        self.server = server
        self.proxy = EgressProxy(allowed_hosts, on_connection)
        #: Why the proxy could not be placed (the sandbox was killed), else None.
        self.error: str | None = None
        self._dir = tempfile.mkdtemp(prefix="warrant-egress-")  # 0700: only we can connect
        self.control = os.path.join(self._dir, "control")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.control)
        self._listener.listen(1)
        self._conn: socket.socket | None = None
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="warrant-egress-control",
                                        daemon=True)
        self._thread.start()

    @property
    def records(self) -> tuple[EgressRecord, ...]:
        return self.proxy.records

    def close(self) -> tuple[EgressRecord, ...]:
        """Stop accepting, end the proxy and its tunnels; returns every decision made."""
        self._closing.set()
        for sock in (self._listener, self._conn):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=_START_SECONDS)
        self._listener.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        return self.proxy.close()

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:  # closed before the launcher connected
            return
        self._conn = conn
        with conn:
            if not self._release(conn):
                return
            with contextlib.suppress(OSError):  # shut down by `close()`
                while conn.recv(_STATUS_LIMIT):  # bubblewrap's exit status, then EOF
                    pass
        self.proxy.close()

    def _release(self, conn: socket.socket) -> bool:
        """Steps 1-4; False (the sandbox killed, the proxy closed) if any fails."""
        peer = pid = None
        try:
            peer = _peer(conn)
            conn.settimeout(_START_SECONDS)
            reported = _read_pid(conn)
            _check_child(reported, peer)
            pid = reported
            self.proxy.start_in(pid)
            conn.sendall(b"x")  # the server starts now
            conn.settimeout(None)
        except (OSError, ValueError, SandboxError) as exc:
            if not self._closing.is_set():
                self.error = (f"the egress proxy of `{self.server}` could not be placed "
                              f"({getattr(exc, 'message', None) or exc}); the server was "
                              "stopped before it started")
            # Killed while the connection is still open: at EOF on its block fd
            # bubblewrap would start the server. The peer (bubblewrap) and its verified
            # child; the sandbox dies with them (--die-with-parent). An unverified PID
            # is never signalled.
            for doomed in (pid, peer):
                if doomed is not None:
                    with contextlib.suppress(OSError):
                        os.kill(doomed, signal.SIGKILL)
            self.proxy.close()
            return False
        return True


def _peer(conn: socket.socket) -> int:
    """The connecting process's PID; refuses any uid but ours."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", creds)
    if uid != os.geteuid():
        raise SandboxError(f"control connection from uid {uid} refused")
    return int(pid)


def _read_pid(conn: socket.socket) -> int:
    status = b""
    while b"}" not in status:
        chunk = conn.recv(_STATUS_LIMIT)
        if not chunk:
            raise SandboxError("bubblewrap ended before reporting the sandbox's PID")
        status += chunk
        if len(status) > _STATUS_LIMIT:
            raise SandboxError("bubblewrap's status is too long")
    return int(json.loads(status[:status.index(b"}") + 1])["child-pid"])


def _check_child(pid: int, peer: int) -> None:
    """Refuse a PID that is not a child of the peer (bubblewrap)."""
    with open(f"/proc/{pid}/stat", "rb") as file:
        stat = file.read()
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    if int(stat[stat.rindex(b")") + 2:].split()[1]) != peer:
        raise SandboxError(f"process {pid} is not the sandbox the launcher started")
