"""Full verification of a stored audit log against its signed checkpoints.

One streaming pass: every leaf hash is recomputed from the stored record
bytes, seqs must run 0..n-1 without a gap, and a compact frontier yields the
root at each checkpoint's size as the pass goes by, so checking k checkpoints
costs O(n + k log n) hashes rather than O(n k).
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


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What a successful `AuditLog.verify()` checked."""

    size: int
    root: str
    checkpoints_checked: int
    ok: bool = True
    #: The largest tree size a verified signed checkpoint covers: records past it are
    #: bound only by their leaf hashes until the next checkpoint is signed.
    signed_size: int = 0


def verify_log(
    backend: AuditBackend,
    public_key: Ed25519PublicKey,
    origin: str,
    *,
    trusted: Iterable[Checkpoint] = (),
    known_head: tuple[int, bytes] | None = None,
) -> VerifyReport:
    """Check every stored record against the leaf hashes and the signed checkpoints.

    `trusted` adds checkpoints kept outside the store (so deleting the stored
    ones hides nothing); `known_head` is the `(size, root)` this process wrote.
    Raises `AuditIntegrityError` naming the first bad seq or checkpoint.
    """
    checkpoints = _load_checkpoints(backend, public_key, origin, trusted)

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
    for seq, (seq_stored, record, leaf) in enumerate(backend.iter_entries()):
        if seq_stored != seq:
            raise AuditIntegrityError(
                f"audit record {seq} is missing (next stored record is {seq_stored})"
                if seq_stored > seq
                else f"audit records are out of order at {seq_stored}"
            )
        if sha256(b"\x00" + record).digest() != leaf:
            raise AuditIntegrityError(f"audit record {seq} does not match its leaf hash")
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
    return VerifyReport(
        size=size, root=frontier.root().hex(), checkpoints_checked=len(checkpoints), ok=True,
        signed_size=max((cp.tree_size for _, cp in checkpoints), default=0),
    )


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
