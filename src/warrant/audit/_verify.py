"""Full verification of a stored audit log against its signed checkpoints.

One streaming pass: every leaf hash is recomputed from the stored record
bytes, seqs must run 0..n-1 without a gap, and a compact frontier yields the
root at each checkpoint's size as the pass goes by, so checking k checkpoints
costs O(n + k log n) hashes rather than O(n k).

With the domain key, the same pass checks the seal (`_seal`) of every record
past the last signed checkpoint: each must carry a valid one. A record a
signed checkpoint covers is vouched for by that signature: its seal is not
recomputed, and it may have none (written before seals existed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from warrant.errors import AuditIntegrityError

from ._backend import AuditBackend
from ._checkpoint import Checkpoint, verify_checkpoint
from ._merkle import Frontier
from ._seal import Sealer, SealTally

#: How many seqs of each kind an error message lists before "and N more".
_LISTED = 10


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What a successful `AuditLog.verify()` checked."""

    size: int
    root: str
    checkpoints_checked: int
    ok: bool = True
    #: The largest tree size a verified signed checkpoint covers: records past it are
    #: vouched for only by their seals until the next checkpoint is signed.
    signed_size: int = 0
    #: Whether seals were checked (only with the domain signing key).
    seals_checked: bool = False
    #: Records without a seal that a signed checkpoint covers (written before seals
    #: existed, or by an older Warrant): only that signature vouches for them.
    unsealed_signed: int = 0


def verify_log(
    backend: AuditBackend,
    public_key: Ed25519PublicKey,
    origin: str,
    *,
    trusted: Iterable[Checkpoint] = (),
    known_head: tuple[int, bytes] | None = None,
    sealer: Sealer | None = None,
) -> VerifyReport:
    """Check every stored record against the leaf hashes and the signed checkpoints.

    `trusted` adds checkpoints kept outside the store (so deleting the stored
    ones hides nothing); `known_head` is the `(size, root)` this process wrote;
    with `sealer`, seals are checked too.
    Raises `AuditIntegrityError` naming the first bad seq or checkpoint, or
    every record without a valid seal.
    """
    checkpoints = _load_checkpoints(backend, public_key, origin, trusted)
    signed_size = max((cp.tree_size for _, cp in checkpoints), default=0)
    seals = SealTally(sealer, signed_size)

    # Roots we must reproduce, by tree size.
    expected: dict[int, list[tuple[str, bytes]]] = {}
    for label, cp in checkpoints:
        expected.setdefault(cp.tree_size, []).append((label, cp.root))
    if known_head is not None:
        expected.setdefault(known_head[0], []).append(
            ("the head this process wrote", known_head[1])
        )

    frontier = Frontier()
    sha256 = hashlib.sha256
    _check_root(expected, frontier)
    for seq, (seq_stored, record, leaf, seal) in enumerate(backend.iter_entries()):
        if seq_stored != seq:
            raise AuditIntegrityError(
                f"audit record {seq} is missing (next stored record is {seq_stored})"
                if seq_stored > seq
                else f"audit records are out of order at {seq_stored}"
            )
        if sha256(b"\x00" + record).digest() != leaf:
            raise AuditIntegrityError(f"audit record {seq} does not match its leaf hash")
        if seal is None or seq >= signed_size:  # (a sealed, signed record needs nothing)
            seals.check(seq, leaf, seal)
        frontier.append(leaf)
        if seq + 1 in expected:
            _check_root(expected, frontier)

    size = frontier.size
    for tree_size, labelled in sorted(expected.items()):
        if tree_size > size:
            raise AuditIntegrityError(
                f"the log has {size} records but {labelled[0][0]} covers {tree_size}: "
                "records were removed"
            )
    if seals.missing or seals.forged:
        raise AuditIntegrityError(
            describe_unsealed(seals.missing, seals.forged),
            hint="these rows were written into the database, not appended by Warrant with "
                 "this domain's key; Warrant refuses to sign the log while they are there. "
                 "Look at them with `warrant audit tail`; if an older Warrant wrote them "
                 "before an upgrade, sign them with `warrant audit checkpoint --accept-unsealed`")
    return VerifyReport(
        size=size, root=frontier.root().hex(), checkpoints_checked=len(checkpoints), ok=True,
        signed_size=signed_size, seals_checked=sealer is not None,
        unsealed_signed=seals.unsealed_signed,
    )


def describe_unsealed(missing: list[int], forged: list[int]) -> str:
    """One sentence naming records without a seal and records with a wrong one."""
    parts = []
    if missing:
        parts.append(f"{_seqs(missing)} {'has' if len(missing) == 1 else 'have'} no seal "
                     "and no signed checkpoint covers "
                     f"{'it' if len(missing) == 1 else 'them'}")
    if forged:
        parts.append(f"{_seqs(forged)} {'has' if len(forged) == 1 else 'have'} a seal that "
                     "does not match (forged, or moved from another position)")
    return "; ".join(parts)


def _seqs(seqs: list[int]) -> str:
    listed = ", ".join(str(s) for s in seqs[:_LISTED])
    more = f" and {len(seqs) - _LISTED} more" if len(seqs) > _LISTED else ""
    return f"audit record{'s' if len(seqs) > 1 else ''} {listed}{more}"


def _load_checkpoints(
    backend: AuditBackend,
    public_key: Ed25519PublicKey,
    origin: str,
    trusted: Iterable[Checkpoint],
) -> list[tuple[str, Checkpoint]]:
    """Parse and signature-check stored and trusted checkpoints, labelled for errors."""
    checkpoints: list[tuple[str, Checkpoint]] = []
    for i, note in enumerate(backend.checkpoints()):
        try:
            cp = Checkpoint.from_note(note)
        except AuditIntegrityError as exc:
            raise AuditIntegrityError(f"stored checkpoint #{i} is malformed: {exc}") from None
        checkpoints.append((f"stored checkpoint #{i}", cp))
    checkpoints += [(f"trusted checkpoint at size {cp.tree_size}", cp) for cp in trusted]
    for label, cp in checkpoints:
        if cp.origin != origin:
            raise AuditIntegrityError(f"{label} is for another log (`{cp.origin}`)")
        try:
            verify_checkpoint(cp, public_key)
        except AuditIntegrityError as exc:
            raise AuditIntegrityError(f"{label}: {exc}") from None
    return checkpoints


def _check_root(expected: dict[int, list[tuple[str, bytes]]], frontier: Frontier) -> None:
    labelled = expected.get(frontier.size)
    if not labelled:
        return
    root = frontier.root()
    for label, want in labelled:
        if want != root:
            raise AuditIntegrityError(
                f"the first {frontier.size} records do not match the root of {label}"
            )
