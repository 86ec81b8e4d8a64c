"""The sandbox's error family: every failure to set up or run a sandbox.

INVARIANT: each of these means the command did not run (or was stopped); none
of them is ever turned into "run it without the sandbox".
"""

from __future__ import annotations

from warrant.errors import WarrantError


class SandboxError(WarrantError):
    """Base of sandbox errors."""

    code = "sandbox.error"


class SandboxUnavailable(SandboxError):  # noqa: N818 - reads as the state it reports
    """The sandbox cannot be set up on this machine; the command did not run."""

    code = "sandbox.unavailable"
    hint = (
        "install bubblewrap (`apt-get install bubblewrap`, or run scripts/install-system-deps) "
        "and make sure unprivileged user namespaces are enabled "
        "(`sysctl -w kernel.unprivileged_userns_clone=1`, "
        "`sysctl -w user.max_user_namespaces=10000`, and on Ubuntu "
        "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`)"
    )


class SandboxRefused(SandboxError):  # noqa: N818 - reads as what happened to the request
    """A request weakens the sandbox in a way the current settings do not allow."""

    code = "sandbox.refused"


class SandboxProfileError(SandboxError):
    """A sandbox profile or profile file is invalid, or names an unknown profile."""

    code = "sandbox.profile"
