"""The egress proxy: the only way out of a sandbox whose profile allows network.

The sandbox keeps its own network namespace: only loopback, nothing of the
host. Warrant creates the proxy's listening socket INSIDE that namespace (a
thread briefly joins it with `setns`, binds 127.0.0.1:`PROXY_PORT`, and
returns), and serves it from the host side. The command finds it through
`HTTP_PROXY`/`HTTPS_PROXY` (curl, Python's urllib, requests, pip all honour
them); any other address it tries is its own empty loopback, and Landlock
refuses TCP connects to other ports where the kernel has it.

Per connection the proxy reads one request, `CONNECT host:port` (HTTPS and any
TLS or TCP tunnel) or an absolute-form `GET http://host:port/...` (plain HTTP),
checks the target against the profile's allowlist, reports the decision through
`on_connection` (the audit hook) and only then connects. If that report fails
the connection is refused: nothing leaves unrecorded.

Allowlist entries: `host:port` allows exactly that port; a bare `host` allows
80 and 443; `*.example.com` matches any subdomain of example.com (not
example.com itself). A name is resolved here, on the host, and refused if it
resolves to a loopback, private or link-local address (DNS rebinding into the
internal network); an internal service must be listed by its IP address.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._errors import SandboxError

#: The proxy's port on the sandbox's own loopback.
PROXY_PORT = 3128
PROXY_URL = f"http://127.0.0.1:{PROXY_PORT}"
_CLONE_NEWNET = 0x40000000
_HEAD_LIMIT = 16 << 10
_HEAD_SECONDS = 10.0
_CONNECT_SECONDS = 10.0
_DEFAULT_PORTS = (80, 443)


@dataclass(frozen=True, slots=True)
class EgressRecord:
    """One connection the sandboxed command asked for, and what the proxy did."""

    host: str
    port: int
    allowed: bool
    #: Why: the allowlist entry that matched, or why it was refused.
    reason: str
    #: `CONNECT`, or the HTTP method of a plain-HTTP request.
    method: str

    def to_json(self) -> dict[str, str | int | bool]:
        return {"host": self.host, "port": self.port, "allowed": self.allowed,
                "reason": self.reason, "method": self.method}


EgressHook = Callable[[EgressRecord], None]


@dataclass(frozen=True, slots=True)
class _Entry:
    host: str
    port: int | None

    def matches(self, host: str, port: int) -> bool:
        if port not in ((self.port,) if self.port is not None else _DEFAULT_PORTS):
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and host != self.host[2:]
        return host == self.host

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


def parse_allowlist(hosts: Sequence[str]) -> tuple[_Entry, ...]:
    entries = []
    for raw in hosts:
        host, _, port = raw.lower().rstrip(".").partition(":")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise SandboxError(f"`{raw}` has no valid port")
        entries.append(_Entry(host, int(port) if port else None))
    return tuple(entries)


class EgressProxy:
    """Serves one sandbox's proxy listener until `close()`; keeps every decision."""

    def __init__(self, allowed_hosts: Sequence[str], on_connection: EgressHook | None = None):
        self._entries = parse_allowlist(allowed_hosts)
        self._hook = on_connection
        self._lock = threading.Lock()
        self._records: list[EgressRecord] = []
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        #: Every socket still open, so `close()` can end tunnels the sandbox left behind.
        self._open: set[socket.socket] = set()
        self._closing = threading.Event()

    @property
    def records(self) -> tuple[EgressRecord, ...]:
        with self._lock:
            return tuple(self._records)

    def start_in(self, pid: int) -> None:
        """Listen on 127.0.0.1:PROXY_PORT inside the network namespace of `pid` and serve."""
        self._listener = listen_in_netns(pid, PROXY_PORT)
        thread = threading.Thread(target=self._accept, name="warrant-egress", daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> tuple[EgressRecord, ...]:
        self._closing.set()
        with self._lock:
            live = [s for s in (self._listener, *self._open) if s is not None]
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._listener is not None:
            self._listener.close()
        for thread in list(self._threads):
            thread.join(timeout=_CONNECT_SECONDS)
        return self.records

    def decide(self, host: str, port: int, method: str) -> EgressRecord:
        """The allowlist decision for `host:port` (no I/O)."""
        host = host.lower().rstrip(".")
        for entry in self._entries:
            if entry.matches(host, port):
                return EgressRecord(host, port, True, f"allowed by `{entry}`", method)
        listed = ", ".join(str(e) for e in self._entries) or "nothing"
        return EgressRecord(host, port, False, f"not in the allowlist ({listed})", method)

    # -- serving ----------------------------------------------------------------------------

    def _accept(self) -> None:
        listener = self._listener
        if listener is None:  # set before the thread starts
            return
        while not self._closing.is_set():
            try:
                client, _ = listener.accept()
            except OSError:  # closed: the sandbox is gone
                return
            self._track(client)
            worker = threading.Thread(target=self._serve, args=(client,), daemon=True,
                                      name="warrant-egress-conn")
            worker.start()
            self._threads.append(worker)

    def _serve(self, client: socket.socket) -> None:
        try:
            self._serve_one(client)
        finally:
            self._track(client, done=True)
            client.close()

    def _serve_one(self, client: socket.socket) -> None:
        client.settimeout(_HEAD_SECONDS)
        try:
            head, rest = _read_head(client)
            method, host, port, forward = _parse_request(head)
        except (OSError, ValueError) as exc:
            # Refused either way; a failing audit hook changes nothing here.
            with contextlib.suppress(Exception):
                self._record(EgressRecord("?", 0, False, f"bad proxy request: {exc}", "?"))
            _reply(client, 400, "bad request")
            return
        record = self.decide(host, port, method)
        target: tuple[str, int] | None = None
        if record.allowed:
            try:
                target = _resolve_checked(host, port)
            except SandboxError as exc:
                record = EgressRecord(host, port, False, exc.message, method)
        try:
            self._record(record)
        except Exception as exc:  # any audit failure refuses the connection
            self._keep(EgressRecord(host, port, False, f"not recorded ({exc}); refused",
                                    method))
            _reply(client, 403, "egress refused: could not be recorded")
            return
        if target is None:
            _reply(client, 403, f"egress refused: {record.reason}")
            return
        self._tunnel(client, target, forward, rest)

    def _tunnel(self, client: socket.socket, target: tuple[str, int], forward: bytes | None,
                rest: bytes) -> None:
        try:
            upstream = socket.create_connection(target, timeout=_CONNECT_SECONDS)
        except OSError as exc:
            _reply(client, 502, f"cannot connect: {exc.strerror or exc}")
            return
        self._track(upstream)
        with upstream:
            if forward is None:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.sendall(forward)
            if rest:
                upstream.sendall(rest)
            client.settimeout(None)
            upstream.settimeout(None)
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream)
            back.join()
        self._track(upstream, done=True)

    def _track(self, sock: socket.socket, *, done: bool = False) -> None:
        with self._lock:
            if done:
                self._open.discard(sock)
            else:
                self._open.add(sock)

    def _record(self, record: EgressRecord) -> None:
        # Reported first: a record kept here always matches what the audit log holds.
        if self._hook is not None:
            self._hook(record)
        self._keep(record)

    def _keep(self, record: EgressRecord) -> None:
        with self._lock:
            self._records.append(record)


def listen_in_netns(pid: int, port: int) -> socket.socket:
    """A TCP listener on 127.0.0.1:`port` in `pid`'s network namespace.

    `setns` moves only the calling thread, so a short-lived thread does it; the
    socket keeps the namespace it was created in. Needs CAP_SYS_ADMIN over the
    sandbox's user namespace (Warrant running as root).
    """
    box: list[socket.socket | BaseException] = []

    def make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            ns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(ns, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            finally:
                os.close(ns)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # Loopback may not be up yet (bubblewrap raises it in the child): FREEBIND.
            sock.setsockopt(socket.IPPROTO_IP, 15, 1)  # IP_FREEBIND
            sock.bind(("127.0.0.1", port))
            sock.listen(64)
            box.append(sock)
        except BaseException as exc:  # handed to the caller below
            box.append(exc)

    thread = threading.Thread(target=make, name="warrant-egress-setns")
    thread.start()
    thread.join()
    found = box[0]
    if isinstance(found, BaseException):
        raise SandboxError(f"cannot start the egress proxy inside the sandbox: {found}",
                           hint="the egress-allowlist profile needs Warrant to run as root "
                                "(it places the proxy in the sandbox's network namespace); "
                                "otherwise use a profile with network = \"none\"") from found
    return found


def _read_head(client: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(4096)
        if not chunk:
            raise ValueError("connection closed before the request was complete")
        data += chunk
        if len(data) > _HEAD_LIMIT:
            raise ValueError("request head too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _parse_request(head: bytes) -> tuple[str, str, int, bytes | None]:
    """(method, host, port, the request to forward or None for CONNECT)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError(f"not an HTTP request line: `{lines[0][:80]}`")
    method, target, version = parts
    if method == "CONNECT":
        host, port = _host_port(target, default=None)
        return method, host, port, None
    if not target.lower().startswith("http://"):
        raise ValueError("only CONNECT and absolute http:// requests are proxied")
    authority, slash, path = target[7:].partition("/")
    host, port = _host_port(authority, default=80)
    headers = [line for line in lines[1:] if line and not line.lower().startswith(
        ("proxy-", "connection:"))]
    request = "\r\n".join([f"{method} {slash}{path} {version}", *headers,
                           "Connection: close", "", ""])
    return method, host, port, request.encode("latin-1")


def _host_port(authority: str, *, default: int | None) -> tuple[str, int]:
    host, sep, port = authority.rpartition(":")
    if not sep or not port.isdigit():
        if default is None:
            raise ValueError(f"`{authority[:80]}` has no port")
        host, port = authority, str(default)
    host = host.strip("[]")
    if not host or not 0 < int(port) < 65536:
        raise ValueError(f"`{authority[:80]}` is not host:port")
    return host.lower(), int(port)


def _resolve_checked(host: str, port: int) -> tuple[str, int]:
    """The address to connect to. An IP literal is used as listed; a name must resolve
    to public addresses only (no rebinding onto loopback or the internal network)."""
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise SandboxError(f"`{host}` does not resolve: {exc}") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise SandboxError(f"`{host}` does not resolve")
    private = [a for a in addresses if not ipaddress.ip_address(a).is_global]
    if private:
        raise SandboxError(f"`{host}` resolves to a non-public address ({private[0]}); "
                           "list internal services by IP address")
    return addresses[0], port


def _reply(client: socket.socket, status: int, message: str) -> None:
    body = (message + "\n").encode()
    with contextlib.suppress(OSError):
        client.sendall(f"HTTP/1.1 {status} {message[:200]}\r\nContent-Type: text/plain\r\n"
                       f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                       + body)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

