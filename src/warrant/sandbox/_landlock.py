"""Landlock, where the kernel has it: a second, kernel-enforced barrier under bubblewrap.

Landlock is self-restriction: a process can only ever narrow itself and what it
starts. We apply it in the process that is about to exec bubblewrap (the
runner's child, or the launcher), so it binds bubblewrap and everything inside.

What we restrict there, and why not more:

- TCP (ABI >= 4): no `bind` at all and no `connect` except to the egress
  proxy's port (none at all without network). The network namespace and the
  seccomp filter already cut the network; this holds even if one of them did not.
- Scopes (ABI >= 6): no abstract unix sockets and no signals to processes
  outside the sandbox's own Landlock domain.
- Files: NOT here. A domain that handles any file-system access also forbids
  `mount` and `pivot_root`, which bubblewrap needs to build the sandbox. File
  rules are applied inside the sandbox instead, by Python code that runs there
  anyway (`FS_RULES_SOURCE`, used by sandboxed Guard tools).

When the kernel has no Landlock (or too old an ABI), `status()` says why and the
sandbox runs with its other barriers; the reason is logged once.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from dataclasses import dataclass

from ._errors import SandboxUnavailable

log = logging.getLogger("warrant.sandbox")

# Syscall numbers are the same on every architecture (added after the 424 unification).
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_NET_PORT = 2
_ACCESS_NET_BIND_TCP, _ACCESS_NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2
_PR_SET_NO_NEW_PRIVS = 38
#: First ABI with TCP rules, first with scopes.
NET_ABI, SCOPE_ABI = 4, 6


class _RulesetAttr(ctypes.Structure):
    _fields_ = (("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64))


class _NetPortAttr(ctypes.Structure):
    _fields_ = (("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64))


@dataclass(frozen=True, slots=True)
class LandlockStatus:
    """Whether Landlock is applied under the sandbox, and if not, why."""

    abi: int
    applied: bool
    reason: str


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@functools.cache
def abi_version() -> int:
    """The kernel's Landlock ABI version, or 0 when Landlock is absent or disabled."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    rc = libc.syscall(ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0),
                      ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return int(rc) if rc > 0 else 0


@functools.cache
def status() -> LandlockStatus:
    """What this kernel allows; logged once, when first asked."""
    abi = abi_version()
    if abi == 0:
        found = LandlockStatus(0, False, "the kernel has no Landlock (not built in, or not in "
                                         "the `lsm=` boot list); relying on namespaces and "
                                         "seccomp")
    elif abi < NET_ABI:
        found = LandlockStatus(abi, False, f"Landlock ABI {abi} has no network rules (needs "
                                           f"{NET_ABI}); file rules apply inside the sandbox")
    else:
        found = LandlockStatus(abi, True, f"Landlock ABI {abi}: TCP bind/connect restricted"
                                          + (", abstract sockets and signals scoped"
                                             if abi >= SCOPE_ABI else ""))
    log.info("sandbox: %s", found.reason)
    return found


@functools.cache
def ruleset_fd(connect_port: int | None) -> int | None:
    """A Landlock ruleset fd (O_CLOEXEC, kept for the process's life) that denies TCP
    bind and every TCP connect but to `connect_port`; None when the kernel cannot.

    Built once in the parent, so the child only has to call `restrict_self`: two
    plain syscalls between fork and exec.
    """
    if not status().applied:
        return None
    abi = abi_version()
    attr = _RulesetAttr(0, _ACCESS_NET_BIND_TCP | _ACCESS_NET_CONNECT_TCP,
                        _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= SCOPE_ABI else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= SCOPE_ABI else 16
    libc = _libc()
    fd = int(libc.syscall(ctypes.c_long(_SYS_CREATE_RULESET), ctypes.byref(attr),
                          ctypes.c_size_t(size), ctypes.c_uint32(0)))
    if fd < 0:
        raise SandboxUnavailable("cannot create a Landlock ruleset: "
                                 f"{os.strerror(ctypes.get_errno())}")
    if connect_port is not None:
        rule = _NetPortAttr(_ACCESS_NET_CONNECT_TCP, connect_port)
        if libc.syscall(ctypes.c_long(_SYS_ADD_RULE), ctypes.c_int(fd),
                        ctypes.c_int(_RULE_NET_PORT), ctypes.byref(rule), ctypes.c_uint32(0)):
            err = ctypes.get_errno()
            os.close(fd)
            raise SandboxUnavailable(f"cannot add a Landlock port rule: {os.strerror(err)}")
    return fd


def restrict_self(fd: int) -> None:
    """Put this thread (and all it starts) under ruleset `fd`. Safe between fork and exec:
    no allocation beyond the ctypes call itself. Raises OSError, which makes subprocess
    fail the spawn: the command never runs without the barrier we promised."""
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot set no_new_privs for Landlock")
    if libc.syscall(ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(fd), ctypes.c_uint32(0)):
        raise OSError(ctypes.get_errno(), "cannot apply the Landlock ruleset")


#: Python source that applies Landlock FILE rules from inside the sandbox (after
#: bubblewrap has built it): read and execute everywhere the sandbox can see, write
#: only to /tmp and /dev (its null/zero devices). Used by sandboxed Python tools,
#: which run Python inside anyway; self-contained because the warrant package is not
#: bound into the sandbox. A no-op where the kernel has no Landlock.
FS_RULES_SOURCE = r'''
def _warrant_landlock_fs():
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(444, None, 0, 1)
    if abi <= 0:
        return 0
    read = 1 | 4 | 8                      # execute, read file, read dir
    every = (1 << 13) - 1                 # ABI 1 rights
    every |= (1 << 13) if abi >= 2 else 0 # refer
    every |= (1 << 14) if abi >= 3 else 0 # truncate
    every |= (1 << 15) if abi >= 5 else 0 # ioctl on devices

    class Attr(ctypes.Structure):
        _fields_ = (("fs", ctypes.c_uint64),)

    class Beneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = (("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32))

    fd = libc.syscall(444, ctypes.byref(Attr(every)), 8, 0)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    for path, rights in (("/", read), ("/tmp", every), ("/dev", every)):
        try:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        rule = Beneath(rights & every, pfd)
        if libc.syscall(445, fd, 1, ctypes.byref(rule), 0):
            raise OSError(ctypes.get_errno(), "landlock_add_rule " + path)
        os.close(pfd)
    if libc.prctl(38, 1, 0, 0, 0) or libc.syscall(446, fd, 0):
        raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    os.close(fd)
    return abi
'''
