"""The memory guard's error family.

INVARIANT: each of these means the item was not stored or not returned; none of
them is ever turned into "return the item unverified".
"""

from __future__ import annotations

from warrant.errors import WarrantError


class MemoryGuardError(WarrantError):
    """Base of memory-guard errors (also: a namespace, key or content is invalid)."""

    code = "memory.error"


class MemoryNotFound(MemoryGuardError):  # noqa: N818 - reads as the state it reports
    """No live, unexpired item under that key."""

    code = "memory.not-found"


class MemoryDenied(MemoryGuardError):  # noqa: N818 - reads as what happened to the request
    """Policy does not let this agent read or write this namespace."""

    code = "memory.denied"


class MemoryRefused(MemoryGuardError):  # noqa: N818 - reads as what happened to the request
    """The content may not enter memory: it holds a secret or injected instructions."""

    code = "memory.refused"


class MemoryIntegrityError(MemoryGuardError):
    """A stored item failed verification (signature, hash or log); it was quarantined."""

    code = "memory.integrity"
    hint = ("the item was quarantined and an event recorded; inspect it with "
            "`warrant memory quarantine --list`, then `warrant memory rollback`")


class MemoryQuarantined(MemoryGuardError):  # noqa: N818 - reads as the state it reports
    """The latest version of the item is quarantined and is not served."""

    code = "memory.quarantined"
    hint = "restore a good version with `warrant memory rollback`"
