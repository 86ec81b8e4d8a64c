"""What a sandboxed run returns: the outcome and every violation, as frozen values.

The caller (the enforcement pipeline) turns each `SandboxViolation` into an
audit event for the response engine; nothing here writes anywhere.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any, Literal

from ._egress import EgressRecord

KilledBy = Literal["timeout", "cpu", "memory", "output", "signal"]
ViolationKind = Literal["timeout", "cpu-limit", "memory-limit", "process-limit",
                        "output-limit", "syscall", "signal", "unsandboxed",
                        "egress-blocked"]


@dataclass(frozen=True, slots=True)
class SandboxViolation:
    """One thing the sandbox stopped or saw: `kind` is stable, `detail` is for people."""

    kind: ViolationKind
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """The outcome of one sandboxed command.

    `exit_code` is the command's status as a shell reports it (128+N when signal
    N ended it). `stdout`/`stderr` hold at most the profile's output cap between
    them; `truncated` says the cap was hit.
    """

    exit_code: int
    stdout: bytes
    stderr: bytes
    killed_by: KilledBy | None
    violations: tuple[SandboxViolation, ...]
    duration_seconds: float
    profile: str
    truncated: bool = False
    #: Every connection the egress proxy allowed or refused, in order.
    egress: tuple[EgressRecord, ...] = ()

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.killed_by is None

    def to_json(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code, "killed_by": self.killed_by,
            "stdout": self.stdout.decode(errors="replace"),
            "stderr": self.stderr.decode(errors="replace"),
            "violations": [v.to_json() for v in self.violations],
            "duration_seconds": round(self.duration_seconds, 6), "profile": self.profile,
            "truncated": self.truncated, "egress": [r.to_json() for r in self.egress],
        }


#: Evidence in the command's own stderr that a limit refused it something. Only
#: used to label a failure the kernel already enforced; a command can fake these
#: only to report more violations, never fewer.
_MEMORY_EVIDENCE = (b"MemoryError", b"Cannot allocate memory", b"std::bad_alloc",
                    b"out of memory")
_NPROC_EVIDENCE = (b"Resource temporarily unavailable", b"BlockingIOError",
                   b"fork: retry", b"can't fork")


def classify(exit_code: int, stderr: bytes, stopped_for: KilledBy | None,
             limits_detail: dict[str, str]) -> tuple[KilledBy | None, list[SandboxViolation]]:
    """Why the command ended, and the violations that explain it."""
    violations: list[SandboxViolation] = []
    if stopped_for == "timeout":
        return "timeout", [SandboxViolation("timeout", limits_detail["timeout"])]
    if stopped_for == "output":
        return "output", [SandboxViolation("output-limit", limits_detail["output"])]
    killed_by: KilledBy | None = None
    if exit_code > 128 and exit_code - 128 in signal.valid_signals():
        sig = signal.Signals(exit_code - 128)
        if sig is signal.SIGXCPU:
            killed_by = "cpu"
            violations.append(SandboxViolation("cpu-limit", limits_detail["cpu"]))
        elif sig is signal.SIGSYS:
            killed_by = "signal"
            violations.append(SandboxViolation(
                "syscall", "killed by SIGSYS: the command made a denied system call "
                "(ptrace, mount, namespaces, kernel modules, keyrings, bpf, io_uring, "
                "or a network socket without network access)"))
        else:
            killed_by = "signal"
            violations.append(SandboxViolation("signal", f"ended by {sig.name}"))
    if exit_code != 0 and any(e in stderr for e in _MEMORY_EVIDENCE):
        killed_by = killed_by if killed_by not in (None, "signal") else "memory"
        violations.append(SandboxViolation("memory-limit", limits_detail["memory"]))
    if exit_code != 0 and any(e in stderr for e in _NPROC_EVIDENCE):
        violations.append(SandboxViolation("process-limit", limits_detail["nproc"]))
    return killed_by, violations
