"""Starting bubblewrap without a Python `preexec_fn`: from a thread that already is
what the child must be.

Why: a `preexec_fn` (or `user=`) makes `subprocess` fork the whole interpreter and
run Python in the child, which cost ~6 ms per sandbox here; without them it uses
vfork and execs at once (bench/README.md, sandbox ablation). What the preexec
did is done elsewhere instead:

- Landlock and `no_new_privs`, and (when Warrant runs as root) the switch to the
  unprivileged `nobody` identity, are applied ONCE to a dedicated spawner thread.
  Linux keeps credentials, the Landlock domain and `no_new_privs` per thread, and
  a child inherits them from the thread that starts it, so every bubblewrap this
  thread starts has them, while the rest of the process keeps its own. The
  identity switch uses the raw syscalls: glibc's wrappers would change every
  thread of the process.
- Resource limits are set by the runner with `prlimit` on the sandbox's first
  process while it waits on bubblewrap's `--block-fd`, before the command exists
  (see `_runner`).

The spawner thread runs only the `Popen` and `prlimit` calls handed to it. Where
the raw syscalls are not known (an architecture other than x86-64 and arm64) and
an identity switch is needed, the old path (fork + preexec setting limits and
Landlock in the child) is used: slower, same barriers.
"""

from __future__ import annotations

import ctypes
import platform
import queue
import resource
import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ._errors import SandboxError, SandboxUnavailable
from ._landlock import restrict_self, ruleset_fd

#: (setgroups, setresgid, setresuid) syscall numbers per architecture.
_ID_SYSCALLS = {"x86_64": (116, 119, 117), "aarch64": (159, 149, 147)}
_Job = tuple[Callable[[], Any], "queue.SimpleQueue[tuple[bool, Any]]"]


class _Spawner:
    """A daemon thread with the sandbox's credentials, running the calls given to it."""

    def __init__(self, connect_port: int | None, ids: tuple[int, int] | None):
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        ready: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        thread = threading.Thread(target=self._serve, args=(connect_port, ids, ready),
                                  name="warrant-sandbox-spawner", daemon=True)
        thread.start()
        problem = ready.get()
        if problem is not None:
            raise SandboxUnavailable(f"cannot prepare the sandbox spawner: {problem}",
                                     hint="the command was not run") from problem

    def _serve(self, connect_port: int | None, ids: tuple[int, int] | None,
               ready: queue.SimpleQueue[BaseException | None]) -> None:
        try:
            landlock = ruleset_fd(connect_port)  # before dropping privileges
            if ids is not None:
                _become(ids)
            if landlock is not None:
                restrict_self(landlock)
        except BaseException as exc:  # handed to the constructor, which raises it
            ready.put(exc)
            return
        ready.put(None)
        while True:
            fn, reply = self._jobs.get()
            try:
                reply.put((True, fn()))
            except BaseException as exc:  # handed back to the caller, which raises it
                reply.put((False, exc))

    def call(self, fn: Callable[[], Any]) -> Any:
        reply: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._jobs.put((fn, reply))
        ok, value = reply.get()
        if not ok:
            raise value
        return value


def _become(ids: tuple[int, int]) -> None:
    """Switch THIS thread (only) to `ids`, for good: groups, then gid, then uid."""
    numbers = _ID_SYSCALLS[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = ids
    for number, args in ((numbers[0], (0, None)), (numbers[1], (gid, gid, gid)),
                         (numbers[2], (uid, uid, uid))):
        if libc.syscall(ctypes.c_long(number), *args) != 0:
            raise OSError(ctypes.get_errno(), "cannot switch the spawner thread to "
                          f"uid/gid {uid}/{gid}")


_SPAWNERS: dict[tuple[int | None, tuple[int, int] | None], _Spawner] = {}
_LOCK = threading.Lock()


def fast_path(ids: tuple[int, int] | None) -> bool:
    """Whether a spawner thread can start bubblewrap with identity `ids` here."""
    return ids is None or platform.machine() in _ID_SYSCALLS


def spawn(argv: list[str], *, connect_port: int | None, ids: tuple[int, int] | None,
          fallback_limits: Callable[[], None] | None,
          **popen: Any) -> tuple[subprocess.Popen[bytes], bool]:
    """`Popen(argv, **popen)` under Landlock (TCP connect only to `connect_port`) and,
    with `ids`, as that host uid/gid. Returns the process and whether its limits are
    already set: only on the slow path, where `fallback_limits` runs in the child
    (otherwise the caller sets them with `set_limits`). `popen` must not hold
    `preexec_fn` or `user`."""
    if ids is not None and not fast_path(ids):
        if fallback_limits is None:
            raise SandboxError("no resource limits to set in the child; the command was not run")
        landlock = ruleset_fd(connect_port)
        set_in_child = fallback_limits

        def prepare() -> None:  # between fork and exec: setrlimit and two Landlock syscalls
            set_in_child()
            if landlock is not None:
                restrict_self(landlock)

        proc = subprocess.Popen(  # noqa: S603 - argv is a list, never a shell
            argv, user=ids[0], group=ids[1], extra_groups=[],
            preexec_fn=prepare, **popen)  # noqa: PLW1509 - see `prepare`
        return proc, True
    started: subprocess.Popen[bytes] = _spawner(connect_port, ids).call(
        lambda: subprocess.Popen(argv, **popen))  # noqa: S603 - argv is a list
    return started, False


def set_limits(pid: int, settings: Sequence[tuple[int, int, int]], *,
               connect_port: int | None, ids: tuple[int, int] | None) -> None:
    """`prlimit` each (resource, soft, hard) on `pid`, a process `spawn` started.

    Done by the spawner thread: it has the sandbox's host uid, which is what lets it
    (the kernel allows it to the same uid, or to CAP_SYS_RESOURCE, which root in a
    container often lacks)."""
    def apply() -> None:
        for which, soft, hard in settings:
            resource.prlimit(pid, which, (soft, hard))

    _spawner(connect_port, ids).call(apply)


def _spawner(connect_port: int | None, ids: tuple[int, int] | None) -> _Spawner:
    key = (connect_port, ids)
    with _LOCK:
        spawner = _SPAWNERS.get(key)
        if spawner is None:
            spawner = _SPAWNERS[key] = _Spawner(connect_port, ids)
        return spawner
