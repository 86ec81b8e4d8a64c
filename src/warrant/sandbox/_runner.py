"""`run_sandboxed`: start a command under bubblewrap, enforce limits, report the outcome.

Limits are set with setrlimit in the child before bubblewrap starts, so they bind
bubblewrap and everything it runs; the wall-clock timeout and the output cap are
enforced here by reading the pipes incrementally and killing the process group.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import select
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

from ._bwrap import build_args, check_works, find_bwrap, host_ids
from ._egress import PROXY_PORT, PROXY_URL, EgressHook, EgressProxy
from ._errors import SandboxError, SandboxRefused
from ._landlock import restrict_self, ruleset_fd
from ._profile import BUILTIN_PROFILES, DEFAULT_PROFILE, SandboxProfile, check_bind
from ._pump import pump
from ._result import SandboxResult, SandboxViolation, classify
from ._seccomp import compile_filter

log = logging.getLogger("warrant.sandbox")
_BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp",  # noqa: S108 - in-sandbox
             "TMPDIR": "/tmp", "LANG": "C.UTF-8"}  # noqa: S108 - the sandbox's private tmpfs
#: bubblewrap's own processes (monitor, PID 1, the command) counted against RLIMIT_NPROC.
_BWRAP_PROCS = 3


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
    landlock = ruleset_fd(PROXY_PORT if egress else None)
    proxy = EgressProxy(profile.allowed_hosts, on_egress) if egress else None
    opened: list[int] = []
    try:
        seccomp_fd = _data_fd(bpf, opened)
        binds = {path: _resolve(path) for path in profile.binds}
        workspace = _resolve(os.fspath(cwd)) if cwd is not None else None
        status_r, status_w = os.pipe()
        opened += [status_r, status_w]
        block_r = block_w = None
        if proxy is not None:
            # The command waits on this pipe until the proxy listens inside its namespace.
            block_r, block_w = os.pipe()
            opened += [block_r, block_w]
        child_env = {**_child_env(profile, env), **(_proxy_env() if egress else {})}
        args = build_args(profile, argv, env=child_env, binds=binds, workspace=workspace,
                          seccomp_fd=seccomp_fd, status_fd=status_w, block_fd=block_r)
        ids = host_ids()
        start = time.monotonic()
        # preexec_fn only calls setrlimit and the two Landlock syscalls (async-signal-safe
        # in practice); the subprocess module offers no other way to do them before exec.
        proc = subprocess.Popen(  # noqa: S603 - argv is a list, never a shell
            [bwrap, *args], stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/", env={},
            pass_fds=tuple(fd for fd in opened if fd not in (status_r, block_w)),
            start_new_session=True, user=ids[0] if ids else None,
            group=ids[1] if ids else None, extra_groups=[] if ids else None,
            preexec_fn=_limits(profile, ids, landlock))  # noqa: PLW1509 - see above
        for fd in (status_w, block_r):
            if fd is not None:
                os.close(fd)
                opened.remove(fd)
        early = b""
        if proxy is not None and block_w is not None:
            early = _start_proxy(proc, proxy, status_r, start + profile.limits.timeout_seconds)
            os.write(block_w, b"x")
        outcome = pump(proc, stdin, status_r, cap=profile.limits.output_bytes,
                       deadline=start + profile.limits.timeout_seconds)
        duration = time.monotonic() - start
    finally:
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


def _start_proxy(proc: subprocess.Popen[bytes], proxy: EgressProxy, status_fd: int,
                 deadline: float) -> bytes:
    """Wait for bubblewrap to report the sandbox's PID, then start the proxy inside its
    network namespace. Returns the status bytes read. On any failure the whole sandbox
    is killed before the command was released: fail closed."""
    status = b""
    try:
        while b"child-pid" not in status or b"}" not in status:
            ready, _, _ = select.select([status_fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(status_fd, 4096) if ready else b""
            if not chunk:
                _no_pid()
            status += chunk
        first = json.loads(status[:status.index(b"}") + 1])
        proxy.start_in(int(first["child-pid"]))
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proxy.close()
        raise
    return status


def _no_pid() -> None:
    raise SandboxError("the sandbox could not be set up; the command was not run",
                       hint="bubblewrap did not report its PID in time")


def _proxy_env() -> dict[str, str]:
    # Upper and lower case: curl reads only `http_proxy` in lower case, others either.
    return dict.fromkeys(("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
                          "ALL_PROXY", "all_proxy"), PROXY_URL)


def check_profile(profile: SandboxProfile, *, has_cwd: bool, egress: bool) -> None:
    """Refuse a profile this sandbox cannot enforce for this command (raises `SandboxError`).

    `egress`: whether this caller can host the egress proxy (the one-shot runner can;
    the stdio-server launcher cannot yet)."""
    if profile.network != "none" and not egress:
        # INVARIANT: never a pretend barrier. Where no proxy can be run, a profile that
        # wants network refuses to run rather than running with host network.
        raise SandboxError(f"profile `{profile.name}`: network `{profile.network}` is not "
                           "supported for long-running servers yet; the server was not started",
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
        preexec_fn=_limits(profile, None))  # noqa: PLW1509 - only setrlimit runs there
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


def _count_processes(uid: int) -> int:
    count = 0
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                try:
                    count += os.stat(entry.path).st_uid == uid
                except OSError:  # exited while we counted
                    continue
    return count


def _limits(profile: SandboxProfile, ids: tuple[int, int] | None,
            landlock: int | None = None) -> Callable[[], None]:
    limits = profile.limits
    # RLIMIT_NPROC counts every process of the host uid, so the budget is added to
    # what that uid already runs.
    nproc = limits.nproc + _BWRAP_PROCS + _count_processes(ids[0] if ids else os.getuid())
    settings = (
        (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),  # SIGXCPU, then KILL
        (resource.RLIMIT_AS, limits.address_space_bytes, limits.address_space_bytes),
        (resource.RLIMIT_NPROC, nproc, nproc),
        (resource.RLIMIT_NOFILE, limits.nofile, limits.nofile),
        (resource.RLIMIT_FSIZE, profile.tmp_bytes, profile.tmp_bytes),
        (resource.RLIMIT_CORE, 0, 0),
    )

    def apply() -> None:  # runs in the child between fork and exec: no allocation-heavy work
        for which, soft, hard in settings:
            resource.setrlimit(which, (soft, hard))
        if landlock is not None:
            restrict_self(landlock)

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
