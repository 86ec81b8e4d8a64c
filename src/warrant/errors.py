"""The one error family of Warrant.

Every error Warrant raises is a `WarrantError`. Each component has its own
subclass so callers can catch exactly what they handle. Messages are lowercase,
put user input in backticks, and never name internal classes. `diagnostics()`
gives a person something to act on.

INVARIANT: at the public boundary every credential failure is one
`InvalidCredential` with one message (no oracle); the specific reason travels in
`detail`, which goes to the audit record, never to the caller.
"""

from __future__ import annotations


class WarrantError(Exception):
    """Base class of every error Warrant raises."""

    #: A short, stable code for logs and JSON output.
    code: str = "warrant.error"
    #: What a person can do about it; shown by `diagnostics()`.
    hint: str = ""

    def __init__(self, message: str, *, detail: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        if hint is not None:
            self.hint = hint

    def diagnostics(self) -> str:
        """A human explanation: what is wrong and what to do about it."""
        lines = [f"error: {self.message}"]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


class ConfigError(WarrantError):
    """A configuration file or option is invalid."""

    code = "config.invalid"


class StateError(WarrantError):
    """The trust domain's state directory is missing, corrupt or unusable."""

    code = "state.invalid"
    hint = "run `warrant init` to create a trust domain, or point --home / $WARRANT_HOME at one"


class StoreError(WarrantError):
    """The state store could not be read or written."""

    code = "store.unavailable"


class IdentityError(WarrantError):
    """An agent or key operation failed (unknown agent, retired agent, bad key)."""

    code = "identity.invalid"


class InvalidCredential(WarrantError):  # noqa: N818 - the name is the public contract
    """A credential, proof of possession or certificate was not accepted.

    One message for every cause so callers cannot probe which check failed.
    """

    code = "credential.invalid"
    PUBLIC_MESSAGE = "credential rejected"

    def __init__(self, detail: str):
        super().__init__(self.PUBLIC_MESSAGE, detail=detail)


class InvalidWarrant(WarrantError):  # noqa: N818 - the name is the public contract
    """A warrant token was malformed, tampered with, expired or from another domain."""

    code = "warrant.invalid"
    PUBLIC_MESSAGE = "warrant rejected"

    def __init__(self, detail: str):
        super().__init__(self.PUBLIC_MESSAGE, detail=detail)


class WarrantSpecError(WarrantError):
    """A request to mint or attenuate a warrant is invalid (bad constraint, widening)."""

    code = "warrant.spec"


class PolicyError(WarrantError):
    """A policy set failed to parse or validate, or could not be loaded."""

    code = "policy.invalid"


class AuditError(WarrantError):
    """Base of audit-log errors."""

    code = "audit.error"


class AuditWriteError(AuditError):
    """An audit record could not be made durable; the action must not happen."""

    code = "audit.write-failed"


class AuditIntegrityError(AuditError):
    """The audit log does not match its records or its signed checkpoints."""

    code = "audit.integrity"


class InvalidEnvelope(WarrantError):  # noqa: N818 - the name is the public contract
    """An inter-agent message was not accepted (unsigned, tampered, replayed, misaddressed,
    or carrying a warrant the sender may not hand over).

    `reason` is a stable code for events (`delegation.replay`, `delegation.widening`, …).
    `sender` is set only when the sender is proven (its seal verified), so a
    detection may hold it responsible; a forged or replayed message names nobody.
    """

    code = "delegation.rejected"

    def __init__(self, message: str, *, reason: str = "delegation.invalid",
                 detail: str | None = None):
        super().__init__(message, detail=detail)
        self.reason = reason
        self.sender: str | None = None
        self.task_id: str | None = None
