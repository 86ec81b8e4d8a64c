"""Sandbox runs, recorded: the audit side of `warrant.sandbox`.

The sandbox leaf reports; this composer writes. Every egress connection the
proxy allows or refuses is a `sandbox.egress` record written BEFORE the
connection is made (if the write fails the hook raises and the proxy refuses:
nothing leaves unrecorded). Every violation (a limit, a denied syscall, a
refused connection) is a `sandbox.violation` record, the event the response
engine's `response.sandbox-violation` detection watches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from warrant.sandbox import (
    BUILTIN_PROFILES,
    EgressHook,
    EgressRecord,
    SandboxProfile,
    SandboxResult,
    SandboxToolError,
    call_in_sandbox,
    get_profile,
)

from ._domain import TrustDomain


def egress_recorder(domain: TrustDomain, *, command: Sequence[str], profile: str) -> EgressHook:
    """A hook for `run_sandboxed(on_egress=...)` writing each connection to the audit log."""

    def record(connection: EgressRecord) -> None:
        domain.record_admin("sandbox.egress", {**connection.to_json(), "profile": profile,
                                               "command": list(command[:1])})

    return record


def record_run(domain: TrustDomain, *, command: Sequence[str], result: SandboxResult) -> None:
    """Record one finished run and each of its violations."""
    domain.record_admin("sandbox.run", {"command": list(command[:1]), "profile": result.profile,
                                        "exit_code": result.exit_code,
                                        "killed_by": result.killed_by,
                                        "egress": len(result.egress)})
    for violation in result.violations:
        domain.record_admin("sandbox.violation", {
            "kind": violation.kind, "detail": violation.detail, "profile": result.profile,
            "command": list(command[:1])})


def resolve_profile(sandbox: str | SandboxProfile) -> SandboxProfile:
    """A profile by name (the built-ins) or as given; unknown names fail at decoration."""
    return sandbox if isinstance(sandbox, SandboxProfile) else get_profile(
        sandbox, profiles=BUILTIN_PROFILES)


def sandboxed_tool(domain: TrustDomain, fn: Callable[..., Any],
                   profile: SandboxProfile) -> Callable[..., Any]:
    """`fn` as a callable that runs in the sandbox, auditing egress and violations.

    The Guard calls it only after the pipeline allowed the call; a failure inside
    raises `SandboxToolError` (the Guard records the outcome as failed).
    """
    label = [f"python:{fn.__module__}.{fn.__qualname__}"]

    def run(**kwargs: Any) -> Any:
        hook = egress_recorder(domain, command=label, profile=profile.name)
        try:
            value, result = call_in_sandbox(fn, kwargs, profile, on_egress=hook)
        except SandboxToolError as exc:
            record_run(domain, command=label, result=exc.result)
            raise
        record_run(domain, command=label, result=result)
        return value

    return run

