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
"""

from ._errors import SandboxError, SandboxProfileError, SandboxRefused, SandboxUnavailable
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
from ._result import SandboxResult, SandboxViolation
from ._runner import run_sandboxed

__all__ = [
    "BUILTIN_PROFILES",
    "DEFAULT_PROFILE",
    "SandboxError",
    "SandboxLimits",
    "SandboxProfile",
    "SandboxProfileError",
    "SandboxRefused",
    "SandboxResult",
    "SandboxUnavailable",
    "SandboxViolation",
    "SandboxedCommand",
    "get_profile",
    "load_profiles",
    "parse_profiles",
    "program_binds",
    "run_sandboxed",
    "sandboxed_command",
]
