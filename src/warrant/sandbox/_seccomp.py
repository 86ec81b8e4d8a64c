"""The seccomp filter every sandboxed command runs under, compiled with libseccomp.

We call libseccomp (Debian's `libseccomp2`) through ctypes rather than the
`pyseccomp` package: we need five functions, and owning the bindings keeps them
typed and avoids an unmaintained, untyped dependency. The filter is compiled to
a classic BPF program once per network mode and handed to bubblewrap through a
pipe (`--seccomp FD`); bubblewrap installs it after setting up the namespaces,
so it binds the command and everything it starts.

Default action is allow: the namespaces, read-only mounts and dropped
capabilities are the main barrier; the filter removes kernel attack surface
those do not cover and makes attempts visible. The dangerous calls kill the
whole process (SIGSYS), so an attempt shows up as a violation instead of a
quiet error code.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os

from ._errors import SandboxUnavailable

_ACT_KILL_PROCESS = 0x80000000
_ACT_ALLOW = 0x7FFF0000
_CMP_EQ = 4
_CMP_MASKED_EQ = 7


def _act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


#: Killed on sight: debugging other processes, kernel modules and keyrings, eBPF,
#: mounts and namespaces (escape primitives), io_uring (it can open sockets and
#: files without passing through this filter), and host-wide settings.
KILLED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "mount", "umount2", "pivot_root", "chroot", "setns", "unshare", "mount_setattr",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
    "open_by_handle_at", "name_to_handle_at", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "swapon", "swapoff", "reboot", "acct", "quotactl", "syslog",
    "iopl", "ioperm", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "vhangup", "lookup_dcookie", "personality",
)
#: `clone` flags that create namespaces; with them `clone` is killed like `unshare`.
_CLONE_NS_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                   0x40000000, 0x00000080)  # NEWNS UTS IPC USER PID NET CGROUP TIME
#: Socket families that reach a network; killed under `none-network` so a connection
#: attempt (including a DNS lookup) is recorded rather than merely failing.
_AF_PACKET = 17
_NET_FAMILIES = (2, 10, _AF_PACKET)  # AF_INET, AF_INET6, AF_PACKET


class _ArgCmp(ctypes.Structure):
    _fields_ = (("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64))


@functools.cache
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise SandboxUnavailable(
            "libseccomp is not installed, so the syscall filter cannot be built",
            hint="`apt-get install libseccomp2` (or run scripts/install-system-deps)") from exc
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = (ctypes.c_uint32,)
    lib.seccomp_release.argtypes = (ctypes.c_void_p,)
    lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
    lib.seccomp_rule_add_array.argtypes = (ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp))
    lib.seccomp_export_bpf.argtypes = (ctypes.c_void_p, ctypes.c_int)
    return lib


def _rule(ctx: int, action: int, syscall: str, *cmps: _ArgCmp) -> None:
    lib = _lib()
    number = lib.seccomp_syscall_resolve_name(syscall.encode())
    if number < 0:  # not on this architecture: nothing to deny
        return
    array = (_ArgCmp * max(1, len(cmps)))(*cmps)
    rc = lib.seccomp_rule_add_array(ctx, action, number, len(cmps), array)
    if rc < 0:
        raise SandboxUnavailable(
            f"cannot add seccomp rule for `{syscall}`: {errno.errorcode.get(-rc)}")


@functools.cache
def compile_filter(*, deny_network: bool, network_errno: bool = False) -> bytes:
    """The BPF program as bytes, ready to write to bubblewrap's `--seccomp` FD.

    With `network_errno` a network socket fails with EACCES instead of killing the
    process: a long-running MCP server must survive one refused attempt (its other
    tools keep working and the caller sees the failure) rather than die with it.
    """
    lib = _lib()
    ctx = lib.seccomp_init(_ACT_ALLOW)
    if not ctx:
        raise SandboxUnavailable("libseccomp could not create a filter")
    try:
        for name in KILLED:
            _rule(ctx, _ACT_KILL_PROCESS, name)
        for flag in _CLONE_NS_FLAGS:
            _rule(ctx, _ACT_KILL_PROCESS, "clone", _ArgCmp(0, _CMP_MASKED_EQ, flag, flag))
        # clone3 passes flags in memory the filter cannot read; ENOSYS makes libc fall
        # back to clone, whose flags are checked above.
        _rule(ctx, _act_errno(errno.ENOSYS), "clone3")
        action = _act_errno(errno.EACCES) if network_errno else _ACT_KILL_PROCESS
        # With network (through the egress proxy) IP sockets are allowed; raw packet
        # sockets never are.
        for family in _NET_FAMILIES if deny_network else (_AF_PACKET,):
            _rule(ctx, action, "socket", _ArgCmp(0, _CMP_EQ, family, 0))
        # A memfd, not a pipe: export writes the whole program before we read it back.
        fd = os.memfd_create("warrant-seccomp", os.MFD_CLOEXEC)
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc < 0:
                raise SandboxUnavailable(
                    f"cannot export the seccomp filter: {errno.errorcode.get(-rc)}")
            size = os.lseek(fd, 0, os.SEEK_CUR)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
