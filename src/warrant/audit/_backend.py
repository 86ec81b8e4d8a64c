"""The storage interface the audit log needs, as a structural `Protocol`.

The log is a leaf and may not import `warrant.store`; the SQLite (or any
other) backend satisfies this protocol by shape alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol


class AuditBackend(Protocol):
    """Append-only storage of `(seq, record bytes, leaf hash, seal)` rows and checkpoint notes.

    The seal (see `_seal`) is None for rows written before seals existed, or
    by anything but a sealing writer.

    Write methods raise `AuditWriteError`; read methods raise `StoreError`.
    """

    def set_durable(self, durable: bool) -> None:
        """Whether a committed batch must be on stable storage (fsync) before returning."""
        ...

    def append_batch(self, start_seq: int, entries: Sequence[tuple[bytes, bytes]],
                     nodes: Sequence[tuple[int, int, bytes]] = (),
                     seals: Sequence[bytes] = ()) -> None:
        """Store `(record, leaf_hash)` pairs as seqs `start_seq, start_seq+1, ...`.

        `nodes` are the `(level, index, hash)` interior nodes these leaves complete;
        `seals` are one seal per entry (none given: the rows have no seal).
        INVARIANT: all or nothing, in one transaction; a failure leaves no row visible.
        """
        ...

    def add_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Store interior nodes computed from stored leaves (a backfill); equal ones are kept."""
        ...

    def node_count(self) -> int:
        """How many interior nodes are stored."""
        ...

    def node_hashes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored hashes of `(level, index)` nodes (level 0: leaf hashes); absent ones left out.

        Stored nodes are hints, not trusted: a proof built from a wrong one
        fails verification against the signed root, it never proves a forgery.
        """
        ...

    def size(self) -> int:
        """One more than the highest stored seq (0 when empty)."""
        ...

    def count(self) -> int:
        """How many rows are stored (differs from `size()` only if rows were deleted)."""
        ...

    def leaf_hashes(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """`(seq, leaf_hash)` for `start <= seq < end`, in seq order."""
        ...

    def sealed_leaves(self, start: int, end: int) -> list[tuple[int, bytes, bytes | None]]:
        """`(seq, leaf_hash, seal)` for `start <= seq < end`, in seq order."""
        ...

    def iter_entries(self, start: int = 0) -> Iterator[tuple[int, bytes, bytes, bytes | None]]:
        """Every `(seq, record, leaf_hash, seal)` from `start`, in seq order."""
        ...

    def get(self, seq: int) -> bytes | None:
        """The record bytes stored at `seq`, or None."""
        ...

    def tail(self, n: int) -> list[tuple[int, bytes]]:
        """The last `n` `(seq, record)` rows, oldest first."""
        ...

    def add_checkpoint(self, tree_size: int, note: str) -> None:
        """Durably store a signed checkpoint note."""
        ...

    def checkpoints(self) -> list[str]:
        """Every stored checkpoint note, oldest first."""
        ...

    def latest_checkpoints(self, limit: int) -> list[str]:
        """Up to `limit` stored notes with the largest stored tree sizes, largest first.

        The stored size is a hint (a reader must parse the note and check its signature).
        """
        ...

    def close(self) -> None: ...
