"""The bubblewrap command line for a profile, and the check that bubblewrap works here.

What the command sees: the base system (/usr and its /bin, /lib links) and a
few /etc files the dynamic linker needs, all read-only; a private tmpfs /tmp;
its own /proc and a minimal /dev; a new user, PID, mount, IPC, UTS, cgroup and
network namespace (only loopback, nothing listening); no capabilities; no
further user namespaces; an empty environment plus what the caller allows.
Nothing else of the host exists inside: not /root, /home, /etc/shadow, the
Warrant home or the caller's working directory.

Start-up cost is mostly bubblewrap re-reading /proc/self/mountinfo after each
bind mount, so the layout uses as few binds as it can (bench/README.md has the
ablation): the /etc files are COPIED into the sandbox's root (`--file` from an
fd; the root is frozen read-only afterwards, so a copy is as read-only as a
bind) or recreated as symlinks, and /dev is four device binds on the read-only
root instead of bubblewrap's `--dev` (a writable, unbounded tmpfs with six
device binds and a devpts mount).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from ._errors import SandboxUnavailable
from ._profile import SandboxProfile

#: The host uid/gid the sandbox runs as when Warrant runs as root: an unprivileged
#: host identity makes the kernel enforce RLIMIT_NPROC (never enforced for root)
#: and means even a mount-namespace escape lands as `nobody`.
NOBODY = 65534
#: Inside the sandbox the command always sees this uid/gid.
SANDBOX_ID = 65534
WORKSPACE = "/workspace"
#: Directories of the base system: bound read-only, or recreated as symlinks when
#: the host has them as symlinks (merged /usr).
_BASE_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: /etc files copied in (the dynamic linker's cache; the time zone unless it is a
#: symlink, which is recreated). `ld.so.conf*` is read only by `ldconfig`: left out.
_ETC_COPIES = ("/etc/ld.so.cache", "/etc/localtime")
#: /etc directories bound read-only: `alternatives` holds hundreds of symlinks (one
#: bind is cheaper than recreating them).
_ETC_BINDS = ("/etc/alternatives",)
#: The devices a command may use, bound on the read-only root: no tty, no pts, no
#: writable /dev. POSIX shared memory goes to the size-capped /tmp.
_DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")
_DEV_LINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
              ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
              ("/tmp", "/dev/shm"))  # noqa: S108 - the sandbox's own tmpfs


def find_bwrap(bwrap_path: str | None = None) -> str:
    """The bubblewrap executable, or `SandboxUnavailable` saying how to install it."""
    found = bwrap_path if bwrap_path and os.access(bwrap_path, os.X_OK) else (
        None if bwrap_path else _which_bwrap(os.environ.get("PATH", os.defpath)))
    if found is not None and bwrap_path is None and not os.access(found, os.X_OK):
        _which_bwrap.cache_clear()  # removed since it was found: search again
        found = _which_bwrap(os.environ.get("PATH", os.defpath))
    if found is None:
        where = f"`{bwrap_path}`" if bwrap_path else "PATH"
        raise SandboxUnavailable(f"bubblewrap (`bwrap`) was not found in {where}; "
                                 "the command was not run")
    return found


@functools.lru_cache(maxsize=8)
def _which_bwrap(path: str) -> str | None:
    # Per PATH value: a PATH without bubblewrap is still refused; a search per run
    # cost ~0.3 ms.
    return shutil.which("bwrap", path=path)


def host_ids() -> tuple[int, int] | None:
    """The (uid, gid) to drop to before starting bubblewrap, or None to keep ours."""
    return (NOBODY, NOBODY) if os.geteuid() == 0 else None


@functools.cache
def check_works(bwrap: str) -> None:
    """Start an empty sandbox once per process; raise `SandboxUnavailable` if it cannot."""
    ids = host_ids()
    copies = open_copies()
    argv = [bwrap, *base_args(copies), "--", "/usr/bin/true"]
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            argv, capture_output=True, timeout=10, check=False, cwd="/",
            pass_fds=tuple(copies.values()), user=ids[0] if ids else None,
            group=ids[1] if ids else None, extra_groups=[] if ids else None)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"bubblewrap at `{bwrap}` could not be started: {exc}") from exc
    finally:
        close_copies(copies)
    if proc.returncode != 0:
        problem = proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
        raise SandboxUnavailable(
            f"bubblewrap cannot create a sandbox here ({problem}); user namespaces are "
            "probably disabled; the command was not run")


def open_copies() -> dict[str, int]:
    """Read-only fds of the host files copied into the sandbox (dest → fd), opened
    close-on-exec; the caller passes them to bubblewrap and closes them with
    `close_copies` (bubblewrap reads each one once, to the end)."""
    copies: dict[str, int] = {}
    for path in _ETC_COPIES:
        if os.path.islink(path) or not os.path.isfile(path):
            continue  # a symlink is recreated by `base_args`; a missing file stays missing
        try:
            copies[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # unreadable: the sandbox goes without it, as a `-try` bind would
    return copies


def close_copies(copies: Mapping[str, int]) -> None:
    for fd in copies.values():
        os.close(fd)


def base_args(copies: Mapping[str, int]) -> list[str]:
    """Namespaces, identity and the read-only base system, shared by every profile.
    `copies` are the fds from `open_copies`."""
    args = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--cap-drop", "ALL", "--uid", str(SANDBOX_ID),
            "--gid", str(SANDBOX_ID), "--hostname", "sandbox", "--ro-bind", "/usr", "/usr"]
    for path in _BASE_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _ETC_COPIES:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif path in copies:
            args += ["--perms", "0444", "--file", str(copies[path]), path]
    for path in _ETC_BINDS:
        args += ["--ro-bind-try", path, path]
    return args


def build_args(profile: SandboxProfile, argv: Sequence[str], *, env: Mapping[str, str],
               binds: Mapping[str, str], workspace: str | None, seccomp_fd: int,
               status_fd: int, copies: Mapping[str, int],
               block_fd: int | None = None) -> list[str]:
    """bubblewrap's options for one run (without the executable itself). With
    `block_fd` the command starts only once a byte can be read from it."""
    args = filesystem_args(profile, binds=binds, workspace=workspace, copies=copies)
    args += ["--clearenv"]
    for name, value in sorted(env.items()):
        args += ["--setenv", name, value]
    if block_fd is not None:
        args += ["--block-fd", str(block_fd)]
    args += ["--seccomp", str(seccomp_fd), "--json-status-fd", str(status_fd), "--", *argv]
    return args


def filesystem_args(profile: SandboxProfile, *, binds: Mapping[str, str],
                    workspace: str | None, copies: Mapping[str, int]) -> list[str]:
    """The base system, /proc, /dev, the private /tmp, read-only `binds` (dest → host
    source) and the workspace: everything the command sees, frozen read-only but /tmp."""
    args = base_args(copies)
    args += ["--proc", "/proc"]
    for device in _DEVICES:
        args += ["--dev-bind", device, device]
    for target, link in _DEV_LINKS:
        args += ["--symlink", target, link]
    args += ["--size", str(profile.tmp_bytes), "--tmpfs", "/tmp"]  # noqa: S108 - private tmpfs
    # Sources are resolved host paths (see the runner); bubblewrap runs as the
    # unprivileged sandbox user, so it can bind only what that user can reach.
    for dest, source in binds.items():
        args += ["--ro-bind", source, dest]
    if workspace is not None:
        args += ["--ro-bind", workspace, WORKSPACE, "--chdir", WORKSPACE]
    # bubblewrap builds the root on a scratch tmpfs; freeze it so only /tmp is writable.
    args += ["--remount-ro", "/"]
    if workspace is None:
        args += ["--chdir", "/tmp"]  # noqa: S108 - the sandbox's own private tmpfs
    return args
