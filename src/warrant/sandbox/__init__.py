"""Sandboxed execution of tool code and local MCP servers.

`run_sandboxed(argv, profile)` runs a command under bubblewrap with no network,
no host files beyond a read-only base system, a private tmp, a scrubbed
environment, resource limits, a wall-clock timeout and a seccomp filter, and
returns a `SandboxResult` whose `violations` the caller records in the audit
log. If no sandbox can be built it raises `SandboxUnavailable`: it never falls
back to running the command bare.

`sandboxed_command(argv, profile)` is the same sandbox for a long-running
process such as a stdio MCP server: it returns the launcher command line and
environment to spawn instead of `argv`.

A profile with `network = "egress-allowlist"` gets no host network either: its
traffic leaves only through Warrant's egress proxy, which lets through
the listed hosts and reports every connection to the caller's `on_egress` hook.
For a long-running server the caller's process hosts that proxy
(`SandboxedCommand.egress`; needs root) until `SandboxedCommand.close()`.
`call_in_sandbox(fn, kwargs, profile)` runs one Python function sandboxed.
Landlock adds a kernel barrier where the kernel has it (`landlock_status()`).
"""

from ._egress import EgressHook, EgressRecord
from ._errors import SandboxError, SandboxProfileError, SandboxRefused, SandboxUnavailable
from ._landlock import status as landlock_status
from ._launch import SandboxedCommand, program_binds, sandboxed_command
from ._profile import (
    BUILTIN_PROFILES,
    DEFAULT_PROFILE,
    SandboxLimits,
    SandboxProfile,
    get_profile,
    load_profiles,
    parse_profiles,
)
from ._pytool import SandboxToolError, call_in_sandbox
from ._registry import RunningSandbox
from ._registry import kill_running as kill_sandboxes
from ._registry import register as register_sandbox
from ._registry import running as running_sandboxes
from ._registry import unregister as unregister_sandbox
from ._result import SandboxResult, SandboxViolation
from ._runner import run_sandboxed

__all__ = [
    "BUILTIN_PROFILES",
    "DEFAULT_PROFILE",
    "EgressHook",
    "EgressRecord",
    "RunningSandbox",
    "SandboxError",
    "SandboxLimits",
    "SandboxProfile",
    "SandboxProfileError",
    "SandboxRefused",
    "SandboxResult",
    "SandboxToolError",
    "SandboxUnavailable",
    "SandboxViolation",
    "SandboxedCommand",
    "call_in_sandbox",
    "get_profile",
    "kill_sandboxes",
    "landlock_status",
    "load_profiles",
    "parse_profiles",
    "program_binds",
    "register_sandbox",
    "run_sandboxed",
    "running_sandboxes",
    "sandboxed_command",
    "unregister_sandbox",
]
