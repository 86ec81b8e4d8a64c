"""Long-running sandboxed processes (stdio MCP servers): the command line and its launcher.

`sandboxed_command(argv, profile)` checks, in the caller's process, everything
that can be checked (bubblewrap works, the filter compiles, every bind is
allowed) and returns the command that starts `argv` sandboxed: a small launcher
(`python -I .../warrant/sandbox/launch.py ...`) plus the environment to start it
with. Any spawner can run it, including ones that cannot pass file descriptors
(the MCP SDK's `stdio_client`). The launcher compiles the seccomp filter into an
inheritable memfd, sets the resource limits, drops to `nobody` when run as root
and execs bubblewrap, which then becomes the server's process (stdin/stdout are
the MCP pipes).

The server's environment is exactly what the caller listed (plus PATH, HOME,
TMPDIR and locale basics): values travel in the launcher's environment, names
on its command line, so no secret shows up in `ps`; bubblewrap is exec'd with
that environment alone.

Landlock (where the kernel has it) is applied by the launcher just before it
execs bubblewrap: see `_landlock` for what it covers.

A profile with `network = "egress-allowlist"` needs an `on_egress` audit hook:
the caller's process then hosts the server's egress proxy (`ServerEgress`, in
`SandboxedCommand.egress`), which the launcher reaches over a control socket so
the proxy is placed in the server's network namespace before the server starts.
The caller must `close()` the command when the server stops.

No CPU-time limit: RLIMIT_CPU counts the whole life of the process, so for a
server it would be a countdown to death, not a bound per call (the gateway's
call timeout is that bound).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import pwd
import resource
import shutil
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from ._bwrap import check_works, filesystem_args, find_bwrap, host_ids, open_copies
from ._egress import PROXY_PORT, EgressHook, EgressRecord
from ._errors import SandboxError
from ._landlock import restrict_self, ruleset_fd
from ._profile import BUILTIN_PROFILES, DEFAULT_PROFILE, SandboxProfile, check_bind, parse_profiles
from ._runner import _BASE_ENV, _BWRAP_PROCS, _count_processes, check_profile, proxy_env
from ._seccomp import compile_filter
from ._server_egress import ServerEgress

#: Host paths already in every sandbox (the base system): never bound again.
_BASE = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_LAUNCHER = Path(__file__).with_name("launch.py")
#: Where the launcher, as root in a private mount namespace, stages the bind sources.
_STAGING = "/tmp"  # noqa: S108 - a fresh tmpfs in the launcher's own mount namespace
_CLONE_NEWNS, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x00020000, 0x1000, 0x4000, 1 << 18
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x2, 0x4, 0x8
EXIT_LAUNCH_FAILED = 125


@dataclass(frozen=True, slots=True)
class SandboxedCommand:
    """What to spawn: `argv` with exactly `env`, from any working directory."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    #: Host paths the command sees read-only (besides the base system), for logs.
    binds: tuple[str, ...]
    #: The server's egress proxy host (network profiles only): `error` says why it
    #: could not be placed, if it could not.
    egress: ServerEgress | None = None

    def close(self) -> tuple[EgressRecord, ...]:
        """Release what the command holds (its egress proxy); returns every connection."""
        return self.egress.close() if self.egress is not None else ()


def sandboxed_command(argv: Sequence[str], profile: SandboxProfile | None = None, *,
                      binds: Iterable[str] = (), env: Mapping[str, str] | None = None,
                      cwd: str | os.PathLike[str] | None = None,
                      bwrap_path: str | None = None, on_egress: EgressHook | None = None,
                      name: str | None = None) -> SandboxedCommand:
    """The command that runs `argv` (a long-running process) in a sandbox from `profile`.

    Read-only binds: the program's own installation (see `program_binds`), the
    profile's `binds` and `binds`. `env` is the whole environment the process
    gets on top of PATH/HOME/TMPDIR/LANG and the profile's allowlist. With an
    `egress-allowlist` profile, `on_egress` is called for every connection the
    server asks for, before it is made (it must record it; if it raises, the
    connection is refused); `name` names the server in errors. Raises
    `SandboxUnavailable` or `SandboxError` (the process must not be started).
    """
    profile = profile or BUILTIN_PROFILES[DEFAULT_PROFILE]
    if not argv or not argv[0]:
        raise SandboxError("no command to run")
    check_profile(profile, has_cwd=cwd is not None, egress=on_egress is not None)
    egress = profile.network == "egress-allowlist"
    bwrap = find_bwrap(bwrap_path)
    check_works(bwrap)
    compile_filter(deny_network=not egress, network_errno=True)  # libseccomp works
    program = argv[0] if "/" in argv[0] else shutil.which(argv[0])
    if program is None:
        raise SandboxError(f"`{argv[0]}` was not found in PATH; the command was not run")
    program = os.path.abspath(program)
    wanted = [*program_binds([program, *argv[1:]]), *profile.binds, *binds]
    pairs = {dest: _source(dest) for dest in dict.fromkeys(wanted)}
    server_env = {**_BASE_ENV,
                  **{k: os.environ[k] for k in profile.env_allowlist if k in os.environ},
                  **(env or {})}
    body = {k: v for k, v in profile.to_json().items() if k != "name"}
    launcher = [sys.executable, "-I", str(_LAUNCHER), "--bwrap", bwrap,
                "--profile", profile.name, "--profile-json", json.dumps(body)]
    for dest, source in pairs.items():
        launcher += ["--bind", source, dest]
    if cwd is not None:
        launcher += ["--workspace", _source(os.fspath(cwd))]
    for variable in sorted(server_env):
        launcher += ["--env", variable]
    host = None
    if egress and on_egress is not None:
        # Last: nothing below can fail, so the host never outlives a refused command.
        host = ServerEgress(profile.allowed_hosts, on_egress, server=name or argv[0])
        launcher += ["--egress-control", host.control]
    return SandboxedCommand(argv=(*launcher, "--", program, *argv[1:]), env=server_env,
                            binds=tuple(pairs), egress=host)


def program_binds(argv: Sequence[str]) -> tuple[str, ...]:
    """Host paths a program needs to run: its installation prefix (the directory above
    `bin/`), a virtualenv's base interpreter, a script's interpreter, and absolute file
    arguments (`python /srv/server.py`). Nothing under the base system; a home
    directory is never bound whole (only the file itself then)."""
    found: list[str] = []
    _add_program(argv[0], found, depth=0)
    found += [arg for arg in argv[1:] if os.path.isabs(arg) and os.path.isfile(arg)]
    return tuple(p for p in dict.fromkeys(found) if not _in_base(p))


def _add_program(path: str, found: list[str], *, depth: int) -> None:
    for candidate in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))):
        prefix = _prefix(candidate)
        found.append(candidate if _is_home(prefix) else prefix)
        home = _venv_home(os.path.join(prefix, "pyvenv.cfg"))
        if home is not None and depth == 0:
            _add_program(os.path.join(home, "python"), found, depth=1)
    if depth == 0:
        interpreter = _shebang(path)
        if interpreter is not None:
            _add_program(interpreter, found, depth=1)


def _prefix(file: str) -> str:
    parent = os.path.dirname(file)
    return os.path.dirname(parent) if os.path.basename(parent) == "bin" else parent


def _venv_home(cfg: str) -> str | None:
    try:
        lines = Path(cfg).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "home" and os.path.isabs(value.strip()):
            return value.strip()
    return None


def _shebang(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            head = file.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    first = words[0].decode(errors="replace") if words else ""
    # `#!/usr/bin/env python` names a program on PATH: the base system, or unknowable.
    return first if os.path.isabs(first) and os.path.basename(first) != "env" else None


def _in_base(path: str) -> bool:
    return any(path == base or path.startswith(base + "/") for base in _BASE)


def _is_home(path: str) -> bool:
    homes = {os.path.expanduser("~")} | {entry.pw_dir for entry in pwd.getpwall()}
    return any(home not in ("", "/") and (home == path or home.startswith(path + "/"))
               for home in homes)


def _source(path: str) -> str:
    """The real host path to bind at `path`, re-checked after resolving symlinks."""
    real = os.path.realpath(path)
    if not os.path.exists(real):
        raise SandboxError(f"cannot bind `{path}` into the sandbox: it does not exist")
    for candidate in dict.fromkeys((os.path.normpath(path), real)):
        try:
            check_bind(candidate)
        except ValueError as exc:
            raise SandboxError(f"cannot bind `{path}` into the sandbox: {exc}") from exc
    return real


# -- the launcher (runs as its own process, then becomes bubblewrap) ----------------------------

def main(args: Sequence[str] | None = None) -> NoReturn:
    """`launch.py --bwrap B --profile N --profile-json J [--bind SRC DEST]... [--env NAME]...
    [--workspace DIR] -- COMMAND...`: set up, then exec bubblewrap. Never returns."""
    parser = argparse.ArgumentParser(prog="warrant-sandbox-launch")
    parser.add_argument("--bwrap", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--profile-json", required=True)
    parser.add_argument("--bind", nargs=2, action="append", default=[], metavar=("SRC", "DEST"))
    parser.add_argument("--workspace")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--egress-control")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    ns = parser.parse_args(args)
    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    try:
        profile = parse_profiles({"profile": {ns.profile: json.loads(ns.profile_json)}},
                                 source="launcher")[ns.profile]
        _exec_bwrap(ns.bwrap, profile, command, binds=[(s, d) for s, d in ns.bind],
                    workspace=ns.workspace, egress_control=ns.egress_control,
                    env={name: os.environ[name] for name in ns.env if name in os.environ})
    except (SandboxError, OSError, ValueError) as exc:
        print(f"warrant sandbox: {exc}; the server was not started", file=sys.stderr)
        sys.exit(EXIT_LAUNCH_FAILED)


def _exec_bwrap(bwrap: str, profile: SandboxProfile, command: Sequence[str], *,
                binds: Sequence[tuple[str, str]], workspace: str | None,
                egress_control: str | None, env: Mapping[str, str]) -> NoReturn:
    if not command:
        raise SandboxError("no command to run")
    egress = profile.network == "egress-allowlist"
    if egress and egress_control is None:
        raise SandboxError(f"profile `{profile.name}` needs network through the egress "
                           "proxy, but no proxy host was given")
    control: list[str] = []
    if egress_control is not None:
        # Before the staging tmpfs covers /tmp (where the socket is) and while still root.
        control = _connect_control(egress_control)
        env = {**env, **proxy_env()}
    ids = host_ids()
    sources = [source for source, _ in binds] + ([workspace] if workspace else [])
    if ids is not None:
        # bubblewrap runs as `nobody`, who may not be able to reach the sources
        # (a Python under /root): stage them where it can, in our own mount namespace.
        staged = _stage(sources)
        mapping = dict(zip(sources, staged, strict=True))
    else:
        mapping = {source: source for source in sources}
    seccomp = os.memfd_create("warrant-seccomp")
    os.set_inheritable(seccomp, True)  # bubblewrap reads it after the exec
    os.write(seccomp, compile_filter(deny_network=not egress, network_errno=True))
    os.lseek(seccomp, 0, os.SEEK_SET)
    copies = open_copies()
    for fd in copies.values():
        os.set_inheritable(fd, True)  # bubblewrap reads them after the exec
    args = filesystem_args(profile, binds={dest: mapping[source] for source, dest in binds},
                           workspace=mapping[workspace] if workspace else None, copies=copies)
    args += [*control, "--seccomp", str(seccomp), "--", *command]
    # Before dropping privileges: built once; with egress, TCP connect to the proxy only.
    landlock = ruleset_fd(PROXY_PORT if egress else None)
    _set_limits(profile, ids)
    if ids is not None:
        os.setgroups([])
        os.setgid(ids[1])
        os.setuid(ids[0])
    if landlock is not None:
        restrict_self(landlock)  # no TCP bind/connect, scoped signals and abstract sockets
    os.execve(bwrap, [bwrap, *args], dict(env))  # noqa: S606 - fixed argv, no shell


def _connect_control(path: str) -> list[str]:
    """Connect to the caller's `ServerEgress`; bubblewrap's options that use it: status
    (the sandbox's PID) goes out on it, and the server waits for a byte back. Two fds
    of one connection: bubblewrap closes its status fd inside before reading the block
    fd, so one fd for both would not block at all."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    status = sock.detach()
    block = os.dup(status)
    for fd in (status, block):
        os.set_inheritable(fd, True)
    return ["--json-status-fd", str(status), "--block-fd", str(block)]


def _stage(sources: Sequence[str]) -> list[str]:
    """Bind each source under a fresh tmpfs at /tmp in a private mount namespace
    (root only); returns the staged paths, reachable by `nobody`."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    def check(rc: int, what: str) -> None:
        if rc != 0:
            raise SandboxError(f"cannot {what}: {os.strerror(ctypes.get_errno())}")

    check(libc.unshare(_CLONE_NEWNS), "create a mount namespace for the launcher")
    check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None),
          "make the launcher's mounts private")
    # Opened in the new namespace (a bind source must be one of its mounts) and
    # before /tmp is covered, so sources under /tmp stay reachable.
    fds = [os.open(source, os.O_PATH | os.O_CLOEXEC) for source in sources]
    check(libc.mount(b"tmpfs", _STAGING.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
                     b"mode=0755,size=1m"), "mount the staging tmpfs")
    staged = []
    for index, (source, fd) in enumerate(zip(sources, fds, strict=True)):
        target = f"{_STAGING}/{index}"
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.mkdir(target, 0o755)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
        check(libc.mount(f"/proc/self/fd/{fd}".encode(), target.encode(), None,
                         _MS_BIND | _MS_REC, None), f"stage `{source}`")
        os.close(fd)
        staged.append(target)
    return staged


def _set_limits(profile: SandboxProfile, ids: tuple[int, int] | None) -> None:
    limits = profile.limits
    # RLIMIT_NPROC counts every process of the host uid: the budget is added to what
    # that uid already runs (other sandboxes included).
    nproc = limits.nproc + _BWRAP_PROCS + _count_processes(ids[0] if ids else os.getuid())
    for which, value in ((resource.RLIMIT_AS, limits.address_space_bytes),
                         (resource.RLIMIT_NPROC, nproc),
                         (resource.RLIMIT_NOFILE, limits.nofile),
                         (resource.RLIMIT_FSIZE, profile.tmp_bytes),
                         (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(which, (value, value))

