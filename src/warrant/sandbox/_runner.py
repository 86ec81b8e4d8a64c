"""`run_sandboxed`: start a command under bubblewrap, enforce limits, report the outcome.

bubblewrap is started without a Python `preexec_fn` (see `_spawn`), holding the
command back on `--block-fd` until the limits are set with `prlimit` on the
sandbox's first process, whose children (the command and all it starts) inherit
them. The wall-clock timeout and the output cap are enforced here by reading the
pipes incrementally and killing the process group.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import resource
import select
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

from ._bwrap import build_args, check_works, close_copies, find_bwrap, host_ids, open_copies
from ._egress import PROXY_PORT, PROXY_URL, EgressHook, EgressProxy
from ._errors import SandboxError, SandboxRefused
from ._profile import BUILTIN_PROFILES, DEFAULT_PROFILE, SandboxProfile, check_bind
from ._pump import pump
from ._result import SandboxResult, SandboxViolation, classify
from ._seccomp import compile_filter
from ._spawn import fast_path, set_limits, spawn

log = logging.getLogger("warrant.sandbox")
_BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp",  # noqa: S108 - in-sandbox
             "TMPDIR": "/tmp", "LANG": "C.UTF-8"}  # noqa: S108 - the sandbox's private tmpfs
#: bubblewrap's own processes (monitor, PID 1, the command) counted against RLIMIT_NPROC.
_BWRAP_PROCS = 3
#: Since Linux 5.14 RLIMIT_NPROC is counted per (user namespace, uid): a limit set on
#: the sandbox's first process, inside its own user namespace, counts only the
#: sandbox's processes (PID 1, the command and what it starts), not bubblewrap's
#: monitor outside nor the uid's other processes on the host.
_KERNEL = re.match(r"(\d+)\.(\d+)", platform.release())
_NPROC_PER_USERNS = _KERNEL is not None and (int(_KERNEL[1]), int(_KERNEL[2])) >= (5, 14)
_IN_SANDBOX_PROCS = 2


def run_sandboxed(argv: Sequence[str], profile: SandboxProfile | None = None, *,
                  stdin: bytes | None = None, env: Mapping[str, str] | None = None,
                  cwd: str | os.PathLike[str] | None = None, bwrap_path: str | None = None,
                  unsafe_no_sandbox: bool = False, strict: bool = True,
                  on_egress: EgressHook | None = None) -> SandboxResult:
    """Run `argv` in a sandbox built from `profile` (default `none-network`).

    `env` is injected as given (per-call secrets from the domain); of the caller's
    own environment only the profile's allowlist is copied. `cwd` is the host
    workspace, bound read-only at /workspace for profiles that allow it. With an
    `egress-allowlist` profile, traffic leaves only through Warrant's proxy;
    `on_egress` is called for every connection it allows or refuses, before it
    connects (if the hook raises, the connection is refused), and the result lists
    them all in `egress`.

    Raises `SandboxUnavailable` when no sandbox can be built (the command does not
    run), `SandboxRefused` for `unsafe_no_sandbox` in strict mode.
    """
    profile = profile or BUILTIN_PROFILES[DEFAULT_PROFILE]
    if not argv:
        raise SandboxError("no command to run")
    if unsafe_no_sandbox:
        if strict:
            raise SandboxRefused("`unsafe_no_sandbox` is refused in strict mode; the command "
                                 "was not run", hint="set strict = false to allow it")
        return _run_unsandboxed(argv, profile, stdin=stdin, env=env, cwd=cwd)
    check_profile(profile, has_cwd=cwd is not None, egress=True)
    egress = profile.network == "egress-allowlist"
    bwrap = find_bwrap(bwrap_path)
    check_works(bwrap)
    bpf = compile_filter(deny_network=not egress)
    proxy = EgressProxy(profile.allowed_hosts, on_egress) if egress else None
    opened: list[int] = []
    copies = open_copies()
    try:
        seccomp_fd = _data_fd(bpf, opened)
        binds = {path: _resolve(path) for path in profile.binds}
        workspace = _resolve(os.fspath(cwd)) if cwd is not None else None
        status_r, status_w = os.pipe()
        opened += [status_r, status_w]
        # The command waits on this pipe until its limits are set (and the proxy
        # listens inside its namespace): nothing runs unbounded, not even briefly.
        block_r, block_w = os.pipe()
        opened += [block_r, block_w]
        child_env = {**_child_env(profile, env), **(proxy_env() if egress else {})}
        args = build_args(profile, argv, env=child_env, binds=binds, workspace=workspace,
                          seccomp_fd=seccomp_fd, status_fd=status_w, copies=copies,
                          block_fd=block_r)
        ids = host_ids()
        start = time.monotonic()
        port = PROXY_PORT if egress else None
        proc, limited = spawn(
            [bwrap, *args], connect_port=port, ids=ids,
            # Only the slow path sets limits in the child (and counts processes for it).
            fallback_limits=None if fast_path(ids) else _limits(profile, _BWRAP_PROCS, ids),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/", env={},
            pass_fds=(seccomp_fd, status_w, block_r, *copies.values()),
            start_new_session=True)
        for fd in (status_w, block_r):
            os.close(fd)
            opened.remove(fd)
        close_copies(copies)
        copies = {}
        early = _release(proc, profile, proxy, status_r, block_w,
                         None if limited else (port, ids),
                         start + profile.limits.timeout_seconds)
        outcome = pump(proc, stdin, status_r, cap=profile.limits.output_bytes,
                       deadline=start + profile.limits.timeout_seconds)
        duration = time.monotonic() - start
    finally:
        close_copies(copies)
        for fd in opened:
            os.close(fd)
        records = proxy.close() if proxy is not None else ()
    statuses = [json.loads(doc) for doc in
                (early + outcome.status).replace(b"}{", b"}\n{").splitlines() if doc.strip()]
    # bubblewrap reports the child's PID once namespaces exist; a failure before that,
    # or its own `bwrap:` message with status 1 (a bind or chdir failing inside), means
    # the command never started.
    setup_failed = not any("child-pid" in s for s in statuses) or (
        outcome.returncode == 1 and outcome.stderr.startswith(b"bwrap: "))
    if outcome.stopped_for is None and setup_failed:
        raise SandboxError("the sandbox could not be set up; the command was not run",
                           detail=outcome.stderr.decode(errors="replace"),
                           hint=outcome.stderr.decode(errors="replace").strip()[:500] or None)
    exit_code = 128 + signal.SIGKILL if outcome.stopped_for else outcome.returncode
    killed_by, violations = classify(exit_code, outcome.stderr, outcome.stopped_for,
                                     _limit_details(profile))
    violations += [SandboxViolation("egress-blocked", f"connection to `{r.host}:{r.port}` "
                                    f"refused: {r.reason}") for r in records if not r.allowed]
    return SandboxResult(exit_code=exit_code, stdout=outcome.stdout, stderr=outcome.stderr,
                         killed_by=killed_by, violations=tuple(violations),
                         duration_seconds=duration, profile=profile.name,
                         truncated=outcome.stopped_for == "output", egress=records)


def _release(proc: subprocess.Popen[bytes], profile: SandboxProfile,
             proxy: EgressProxy | None, status_fd: int, block_fd: int,
             spawner: tuple[int | None, tuple[int, int] | None] | None,
             deadline: float) -> bytes:
    """Once bubblewrap reports the sandbox's first process (blocked before the command
    exists): set its resource limits (unless `spawner` is None: set at spawn), start
    the proxy inside its network namespace, then let the command start. Returns the
    status bytes read. On any failure the whole sandbox is killed before the command
    was released: fail closed."""
    status = b""
    try:
        ids = spawner[1] if spawner else None
        # Older kernels count the whole host uid: counted while bubblewrap builds the
        # sandbox (the two overlap).
        others = (_uid_pids(ids[0] if ids else os.getuid())
                  if spawner and not _NPROC_PER_USERNS else set())
        while b"child-pid" not in status or b"}" not in status:
            ready, _, _ = select.select([status_fd], [], [], max(0.0, deadline - time.monotonic()))
            status += _chunk(status_fd) if ready else _no_pid()
        pid = int(json.loads(status[:status.index(b"}") + 1])["child-pid"])
        if spawner is not None:
            nproc = profile.limits.nproc + (
                _IN_SANDBOX_PROCS if _NPROC_PER_USERNS
                else _BWRAP_PROCS + len(others - {proc.pid, pid}))
            set_limits(pid, _settings(profile, nproc), connect_port=spawner[0], ids=ids)
        if proxy is not None:
            proxy.start_in(pid)
        os.write(block_fd, b"x")
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proxy is not None:
            proxy.close()
        if isinstance(exc, OSError | _NoPidError):
            # Usually bubblewrap failing to build the sandbox (it says why on stderr);
            # otherwise a limit that could not be set. Either way nothing ran.
            said = _leftover(proc).decode(errors="replace").strip()
            raise SandboxError("the sandbox could not be set up; the command was not run",
                               detail=said or None,
                               hint=said[:500] or (str(exc) if isinstance(exc, OSError) else
                                                   "bubblewrap did not report its PID in time")
                               ) from exc
        raise
    return status


def _chunk(fd: int) -> bytes:
    return os.read(fd, 4096) or _no_pid()


def _no_pid() -> bytes:
    raise _NoPidError


class _NoPidError(Exception):
    """bubblewrap ended (or timed out) before reporting the sandbox's PID."""


def _leftover(proc: subprocess.Popen[bytes]) -> bytes:
    """What a dead sandbox left on stderr (bounded: a stray holder of the pipe cannot
    make us wait)."""
    if proc.stderr is None:
        return b""
    fd = proc.stderr.fileno()
    ready, _, _ = select.select([fd], [], [], 1.0)
    return os.read(fd, 4096) if ready else b""


def proxy_env() -> dict[str, str]:
    """The variables that point HTTP clients at the egress proxy."""
    # Upper and lower case: curl reads only `http_proxy` in lower case, others either.
    return dict.fromkeys(("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
                          "ALL_PROXY", "all_proxy"), PROXY_URL)


def check_profile(profile: SandboxProfile, *, has_cwd: bool, egress: bool) -> None:
    """Refuse a profile this sandbox cannot enforce for this command (raises `SandboxError`).

    `egress`: whether this caller can host the egress proxy and record what it does
    (the one-shot runner can; a long-running server's caller must pass `on_egress`)."""
    if profile.network != "none" and not egress:
        # INVARIANT: never a pretend barrier. Where no proxy can be run, a profile that
        # wants network refuses to run rather than running with host network.
        raise SandboxError(f"profile `{profile.name}`: network `{profile.network}` for a "
                           "long-running server needs an audit hook for its egress proxy "
                           "(`on_egress`); the server was not started",
                           hint="use a profile with network = \"none\"")
    if has_cwd and profile.workspace == "none":
        raise SandboxError(f"profile `{profile.name}` does not expose a workspace; "
                           "use `readonly-workspace` or leave the working directory unset")


def _run_unsandboxed(argv: Sequence[str], profile: SandboxProfile, *, stdin: bytes | None,
                     env: Mapping[str, str] | None,
                     cwd: str | os.PathLike[str] | None) -> SandboxResult:
    """Limits, scrubbed environment and timeout only: NO isolation. Loud on purpose."""
    log.warning("UNSAFE: running %r WITHOUT a sandbox (unsafe_no_sandbox=True): it has the "
                "host's files, network and privileges", argv[0])
    start = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - the caller asked for exactly this command
        list(argv), stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd or "/",
        env=_child_env(profile, env), start_new_session=True,
        preexec_fn=_limits(profile))  # noqa: PLW1509 - only setrlimit runs there
    outcome = pump(proc, stdin, None, cap=profile.limits.output_bytes,
                   deadline=start + profile.limits.timeout_seconds)
    exit_code = 128 + signal.SIGKILL if outcome.stopped_for else outcome.returncode
    killed_by, violations = classify(exit_code, outcome.stderr, outcome.stopped_for,
                                     _limit_details(profile))
    violations.insert(0, SandboxViolation("unsandboxed", f"`{argv[0]}` ran without a sandbox "
                                          "(unsafe_no_sandbox)"))
    return SandboxResult(exit_code=exit_code, stdout=outcome.stdout, stderr=outcome.stderr,
                         killed_by=killed_by, violations=tuple(violations),
                         duration_seconds=time.monotonic() - start, profile=profile.name,
                         truncated=outcome.stopped_for == "output")


def _child_env(profile: SandboxProfile, env: Mapping[str, str] | None) -> dict[str, str]:
    inherited = {k: os.environ[k] for k in profile.env_allowlist if k in os.environ}
    return {**_BASE_ENV, **inherited, **(env or {})}


def _data_fd(data: bytes, opened: list[int]) -> int:
    fd = os.memfd_create("warrant-sandbox")  # inheritable copy handed to bubblewrap
    opened.append(fd)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _resolve(path: str) -> str:
    """The real path to bind, re-checked: a symlink must not lead a bind somewhere banned."""
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise SandboxError(f"cannot bind `{path}` into the sandbox: not a directory")
    try:
        check_bind(real)
    except ValueError as exc:
        raise SandboxError(f"cannot bind `{path}` into the sandbox: {exc}") from exc
    return real


def _uid_pids(uid: int) -> set[int]:
    """The PIDs of every process of host `uid` (RLIMIT_NPROC counts them all)."""
    pids = set()
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        pids.add(int(entry.name))
                except OSError:  # exited while we counted
                    continue
    return pids


def _count_processes(uid: int) -> int:
    return len(_uid_pids(uid))


def _settings(profile: SandboxProfile, nproc: int) -> tuple[tuple[int, int, int], ...]:
    limits = profile.limits
    return (
        (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),  # SIGXCPU, then KILL
        (resource.RLIMIT_AS, limits.address_space_bytes, limits.address_space_bytes),
        (resource.RLIMIT_NPROC, nproc, nproc),
        (resource.RLIMIT_NOFILE, limits.nofile, limits.nofile),
        (resource.RLIMIT_FSIZE, profile.tmp_bytes, profile.tmp_bytes),
        (resource.RLIMIT_CORE, 0, 0),
    )


def _limits(profile: SandboxProfile, extra: int = 0,
            ids: tuple[int, int] | None = None) -> Callable[[], None]:
    """setrlimit in the child between fork and exec: for the unsandboxed path, and the
    spawn fallback (`_spawn`). RLIMIT_NPROC counts every process of the host uid, so
    the budget is added to what that uid already runs, plus `extra`."""
    uid = ids[0] if ids else os.getuid()
    settings = _settings(profile, profile.limits.nproc + extra + _count_processes(uid))

    def apply() -> None:  # runs in the child between fork and exec: no allocation-heavy work
        for which, soft, hard in settings:
            resource.setrlimit(which, (soft, hard))

    return apply


def _limit_details(profile: SandboxProfile) -> dict[str, str]:
    limits = profile.limits
    return {
        "timeout": f"wall-clock timeout of {limits.timeout_seconds:g}s reached; killed",
        "output": f"output exceeded {limits.output_bytes} bytes; killed",
        "cpu": f"CPU time limit of {limits.cpu_seconds}s reached",
        "memory": f"address-space limit of {limits.address_space_bytes} bytes refused memory",
        "nproc": f"process limit of {limits.nproc} refused a new process",
    }
