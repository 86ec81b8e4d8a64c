"""The append-only audit log: group-committed appends, checkpoints, proofs.

`append` returns a sequence number only after the record is committed (and
fsynced when `durable=True`). Concurrent appends are group-committed (see
`_group`): one transaction and one fsync per batch, not per record. If a
batch cannot be written, every caller in it gets `AuditWriteError` and the
enforcement pipeline denies the action: an
action with no audit record never happens.

Each batch also stores the interior Merkle nodes it completes, so inclusion
and consistency proofs read O(log n) stored hashes (`_merkle.range_plan`). A
log written before nodes were stored is backfilled when it is first opened
for writing; any node still missing is recomputed from its leaves, so a proof
is always exact, only slower.

Every record is stored with its seal (`_seal`): a MAC under a key derived from
the domain signing key, bound to its seq and leaf hash. `checkpoint` signs a
new tree head only after checking the seal of every record the last signed
checkpoint does not cover, so a row written into the database directly is
named (`AuditIntegrityError`), never signed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warrant.errors import AuditError, AuditIntegrityError, AuditWriteError

from . import _merkle
from ._backend import AuditBackend
from ._checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from ._group import GroupCommitter
from ._record import AuditRecord
from ._seal import Sealer, SealTally
from ._verify import VerifyReport, describe_unsealed, verify_log

log = logging.getLogger("warrant.audit")

#: How many of the largest stored checkpoints `checkpoint` tries as its base before
#: starting from the empty tree (only forged or damaged notes are skipped).
_BASE_CANDIDATES = 16


@dataclass(frozen=True, slots=True)
class Entry:
    """A record together with its position in the log."""

    seq: int
    record: AuditRecord


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """RFC 9162 inclusion proof: leaf `seq` is in the tree of `tree_size` leaves."""

    seq: int
    tree_size: int
    hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """RFC 9162 consistency proof: the tree of `old_size` is a prefix of `new_size`."""

    old_size: int
    new_size: int
    hashes: tuple[bytes, ...]


class AuditLog:
    """A tamper-evident log over an `AuditBackend`, signed with the domain key.

    `signing_key` may be None for a read-only verifier; then `public_key` is
    required, appends are refused (they could not be sealed) and `verify` does
    not check seals.
    `max_batch=1` disables group commit (one transaction per append);
    `timeout_s` bounds how long an append waits in the queue.
    """

    def __init__(
        self,
        backend: AuditBackend,
        signing_key: Ed25519PrivateKey | None,
        public_key: Ed25519PublicKey | None = None,
        origin: str = "warrant/audit",
        *,
        durable: bool = True,
        max_batch: int = 1024,
        timeout_s: float = 30.0,
    ) -> None:
        if public_key is None:
            if signing_key is None:
                raise ValueError("an audit log needs a signing key or a public key")
            public_key = signing_key.public_key()
        self.origin = origin
        self.durable = durable
        self._backend = backend
        self._signing_key = signing_key
        self._public_key = public_key
        self._sealer = Sealer(signing_key, origin) if signing_key is not None else None
        self._closed = False
        self._committer = GroupCommitter(
            self._write_batch, max_batch=max_batch, timeout_s=timeout_s
        )
        # INVARIANT: the frontier only ever reflects committed rows; None means
        # "reload from storage" (at start, and after a failed batch).
        self._state = threading.Lock()
        self._frontier: _merkle.Frontier | None = None
        backend.set_durable(durable)

    # -- writing -----------------------------------------------------------

    def append(self, record: AuditRecord) -> int:
        """Append one record; returns its seq once committed. Raises `AuditWriteError`."""
        return self.append_many([record])[0]

    def append_many(self, records: Sequence[AuditRecord]) -> list[int]:
        """Append records atomically with contiguous seqs, all or none."""
        if not records:
            return []
        if self._sealer is None:
            raise AuditWriteError("this audit log was opened without the domain signing key, "
                                  "so it cannot seal records")
        try:
            entries = [(data, _merkle.leaf_hash(data)) for data in (r.to_bytes() for r in records)]
        except (TypeError, ValueError) as exc:
            raise AuditWriteError(f"audit record cannot be serialised: {exc}") from None
        first = self._committer.submit(entries)
        return list(range(first, first + len(entries)))

    def _write_batch(self, entries: list[tuple[bytes, bytes]]) -> int:
        # Only ever called by the one current writer of this process (see
        # GroupCommitter). Other processes (the CLI next to a running gateway)
        # append to the same log, so the tail is re-read before each batch; if
        # another process takes the next seq between that read and our insert,
        # the insert fails on the seq and is retried once after catching up.
        try:
            return self._try_write(entries)
        except AuditWriteError:
            return self._try_write(entries)

    def _try_write(self, entries: list[tuple[bytes, bytes]]) -> int:
        try:
            with self._state:
                frontier = self._load_frontier()
                self._catch_up(frontier)
                staged = frontier.copy()
            start = staged.size
            nodes: list[tuple[int, int, bytes]] = []
            for _, leaf in entries:
                staged.append(leaf, nodes)
            seal = self._sealed().seal
            seals = [seal(seq, leaf) for seq, (_, leaf) in enumerate(entries, start)]
            self._backend.append_batch(start, entries, nodes, seals)
        except BaseException:
            with self._state:
                self._frontier = None  # storage state is uncertain: re-read it next time
            raise
        with self._state:
            # A reader's head() may have caught up with this very batch while it
            # was being committed (it reads the rows from storage): then the
            # leaves are in the frontier already and must not be added twice.
            if self._frontier is frontier and frontier.size == start:
                frontier.hashes, frontier.size = staged.hashes, staged.size
            elif not (self._frontier is frontier and frontier.size >= start + len(entries)):
                self._frontier = None  # anything else: rebuild from storage next time
        return start

    def _catch_up(self, frontier: _merkle.Frontier) -> None:
        """Add records other processes appended since this frontier was built."""
        # Called with self._state held.
        size = self._backend.size()
        if size < frontier.size:
            # INVARIANT: the frontier never counts rows storage does not hold.
            raise AuditIntegrityError(
                f"the audit log holds {size} records but {frontier.size} were appended: "
                "records were removed; run `warrant audit verify`")
        if size == frontier.size:
            return
        rows = self._backend.leaf_hashes(frontier.size, size)
        if len(rows) != size - frontier.size:
            raise AuditIntegrityError(
                f"audit record {_first_missing(rows, frontier.size)} is missing (the log "
                f"was altered outside Warrant; records {frontier.size} to {size - 1} "
                "were to follow)")
        for _, leaf in rows:
            frontier.append(leaf)

    def _load_frontier(self) -> _merkle.Frontier:
        # Called with self._state held.
        if self._frontier is None:
            size = self._backend.size()
            rows = self._backend.leaf_hashes(0, size)
            if len(rows) != size:
                raise AuditIntegrityError(
                    f"audit record {_first_missing(rows, 0)} is missing (the log was altered "
                    f"outside Warrant: {len(rows)} records up to seq {size - 1})"
                )
            frontier = _merkle.Frontier()
            # A log from before interior nodes were stored (or a crashed
            # backfill) has fewer than n - popcount(n) of them: fill them in.
            missing = self._backend.node_count() < size - size.bit_count()
            nodes: list[tuple[int, int, bytes]] | None = [] if missing else None
            for _, leaf in rows:
                frontier.append(leaf, nodes)
            if nodes:
                self._backfill(nodes)
            self._frontier = frontier
        return self._frontier

    def _backfill(self, nodes: list[tuple[int, int, bytes]]) -> None:
        try:
            self._backend.add_nodes(nodes)
        except AuditWriteError as exc:
            # Read-only or full: proofs recompute the missing nodes from leaves.
            log.warning("cannot store the audit log's Merkle nodes (%s); proofs will be slower",
                        exc.message)

    def head(self) -> tuple[int, bytes]:
        """The committed `(size, root)` of the tree."""
        with self._state:
            frontier = self._load_frontier()
            self._catch_up(frontier)
            return frontier.size, frontier.root()

    def _sealed(self) -> Sealer:
        if self._sealer is None:
            raise AuditError("this audit log was opened without the domain signing key")
        return self._sealer

    def checkpoint(self, trusted: Iterable[Checkpoint] = (), *,
                   accept_unsealed: bool = False) -> Checkpoint:
        """Sign the current tree head with the domain key and store it.

        INVARIANT: every record past the last signed checkpoint (stored, or one of
        `trusted`) must carry a valid seal, and the head must extend that
        checkpoint's signed root; otherwise `AuditIntegrityError` names the
        records and nothing is signed. `accept_unsealed=True` signs records
        without a valid seal anyway, each named in a warning: for a person who
        has checked them (records an older Warrant wrote before an upgrade).
        """
        sealer = self._sealed()
        assert self._signing_key is not None  # a sealer exists only with the key
        size, root = self.head()
        base = self._signed_base(size, trusted)
        signed = base.size
        rows = self._backend.sealed_leaves(signed, size)
        seals = SealTally(sealer, signed)
        for expected, (seq, leaf, seal) in enumerate(rows, signed):
            if seq != expected:
                break
            seals.check(seq, leaf, seal)
            base.append(leaf)
        if base.size != size:
            gap = _first_missing([(seq, leaf) for seq, leaf, _ in rows], signed)
            raise AuditIntegrityError(
                f"audit record {gap} is missing (the log was altered outside Warrant); "
                "run `warrant audit verify`")
        if seals.missing or seals.forged:
            problem = describe_unsealed(seals.missing, seals.forged)
            if not accept_unsealed:
                raise AuditIntegrityError(
                    f"refusing to sign the audit log: {problem}",
                    hint="run `warrant audit verify` and `warrant audit tail`; only if you "
                         "know where they come from (an older Warrant wrote them before an "
                         "upgrade), sign them with `warrant audit checkpoint --accept-unsealed`")
            log.warning("signing the audit log over records accepted without a seal: %s",
                        problem)
        if base.root() != root:
            # INVARIANT: what is signed is exactly what was checked.
            raise AuditIntegrityError(
                f"the audit log's {size} records do not extend its signed checkpoint at size "
                f"{signed}: the log was altered outside Warrant; "
                "run `warrant audit verify`")
        cp = sign_checkpoint(self._signing_key, self.origin, size, root)
        self._backend.add_checkpoint(size, cp.to_note())
        return cp

    def _signed_base(self, size: int, trusted: Iterable[Checkpoint]) -> _merkle.Frontier:
        """The frontier of the largest validly signed checkpoint, checked against its root.

        Stored notes are tried largest first; forged or damaged ones are skipped
        (a smaller base only means more seals are checked). None: the empty tree.
        """
        candidates: list[Checkpoint] = list(trusted)
        for note in self._backend.latest_checkpoints(_BASE_CANDIDATES):
            try:
                candidates.append(Checkpoint.from_note(note))
            except AuditIntegrityError:
                continue
        for cp in sorted(candidates, key=lambda c: c.tree_size, reverse=True):
            if cp.origin != self.origin:
                continue
            try:
                verify_checkpoint(cp, self._public_key)
            except AuditIntegrityError:
                continue
            if cp.tree_size > size:
                raise AuditIntegrityError(
                    f"the audit log holds {size} records but a signed checkpoint covers "
                    f"{cp.tree_size}: records were removed; run `warrant audit verify`")
            return self._frontier_at(cp)
        return _merkle.Frontier()

    def _frontier_at(self, cp: Checkpoint) -> _merkle.Frontier:
        """The frontier of the first `cp.tree_size` records, equal to `cp`'s signed root."""
        ranges, lo = [], 0
        for bit in reversed(range(cp.tree_size.bit_length())):
            if cp.tree_size >> bit & 1:
                ranges.append((lo, lo + (1 << bit)))
                lo += 1 << bit
        frontier = _merkle.Frontier()
        frontier.hashes, frontier.size = self._range_roots(ranges), cp.tree_size
        if frontier.root() != cp.root:
            # Stored nodes are hints: recompute from the leaves before concluding.
            leaves = self._backend.leaf_hashes(0, cp.tree_size)
            frontier = _merkle.Frontier()
            for _, leaf in leaves:
                frontier.append(leaf)
            if frontier.size != cp.tree_size or frontier.root() != cp.root:
                raise AuditIntegrityError(
                    f"the first {cp.tree_size} audit records do not match their signed "
                    "checkpoint: the log was altered outside Warrant; run `warrant audit verify`")
        return frontier

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the backend."""
        if self._closed:
            return
        self._closed = True
        self._committer.close()
        self._backend.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- reading and verifying ---------------------------------------------

    def get(self, seq: int) -> Entry:
        data = self._backend.get(seq)
        if data is None:
            raise AuditError(f"no audit record with seq `{seq}`")
        return Entry(seq, AuditRecord.from_bytes(data))

    def raw_from(self, start: int) -> Iterator[tuple[int, bytes]]:
        """(seq, canonical record bytes) of every record from `start` on, unparsed (for a
        reader that skips most records by a cheap byte test before parsing any)."""
        for seq, data, _leaf, _seal in self._backend.iter_entries(start):
            yield seq, bytes(data)

    def tail(self, n: int) -> list[Entry]:
        """The last `n` records, oldest first."""
        return [Entry(seq, AuditRecord.from_bytes(data)) for seq, data in self._backend.tail(n)]

    def checkpoints(self) -> list[Checkpoint]:
        return [Checkpoint.from_note(note) for note in self._backend.checkpoints()]

    def verify(self, trusted: Iterable[Checkpoint] = ()) -> VerifyReport:
        """Recheck every record, seq and checkpoint. Raises `AuditIntegrityError`."""
        with self._state:
            frontier = self._frontier.copy() if self._frontier is not None else None
        known = (frontier.size, frontier.root()) if frontier is not None else None
        return verify_log(
            self._backend, self._public_key, self.origin, trusted=trusted, known_head=known,
            sealer=self._sealer,
        )

    def _stored_size(self, size: int | None) -> int:
        stored = self._backend.size()
        if size is None:
            return stored
        if size > stored:
            raise AuditIntegrityError(f"the audit log has fewer than {size} records")
        return size

    def _range_roots(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The root of each leaf range, from O(log n) stored nodes per range."""
        keys = list(dict.fromkeys(k for lo, hi in ranges for k in _merkle.range_plan(lo, hi)))
        nodes = self._backend.node_hashes(keys)
        for level, index in keys:
            if (level, index) in nodes:
                continue
            # Not stored (an old log not yet backfilled): recompute it from its leaves.
            lo, hi = index << level, (index + 1) << level
            rows = self._backend.leaf_hashes(lo, hi)
            if len(rows) != hi - lo:
                raise AuditIntegrityError(
                    f"the audit log has gaps between seq {lo} and {hi - 1}; "
                    "run `warrant audit verify`")
            nodes[(level, index)] = _merkle.root_from_leaf_hashes([leaf for _, leaf in rows])
        return [_merkle.range_root(lo, hi, nodes) for lo, hi in ranges]

    def inclusion_proof(self, seq: int, size: int | None = None) -> InclusionProof:
        """Prove record `seq` is in the tree of `size` records (default: all).

        Reads O(log n) stored hashes. Raises `ValueError` for a seq outside the
        tree and `AuditIntegrityError` for a size the log does not hold.
        """
        size = self._stored_size(size)
        path = self._range_roots(_merkle.inclusion_ranges(seq, size))
        return InclusionProof(seq, size, tuple(path))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Prove the tree of `old_size` records is a prefix of the one of `new_size`."""
        new_size = self._stored_size(new_size)
        path = self._range_roots(_merkle.consistency_ranges(old_size, new_size))
        return ConsistencyProof(old_size, new_size, tuple(path))

    @staticmethod
    def verify_inclusion(record: AuditRecord | bytes, proof: InclusionProof, root: bytes) -> None:
        """Check `record` is leaf `proof.seq` under `root`. Raises `AuditIntegrityError`."""
        data = record.to_bytes() if isinstance(record, AuditRecord) else record
        leaf = _merkle.leaf_hash(data)
        _merkle.verify_inclusion(leaf, proof.seq, proof.tree_size, proof.hashes, root)

    @staticmethod
    def verify_consistency(proof: ConsistencyProof, old_root: bytes, new_root: bytes) -> None:
        """Check `old_root` is a prefix of `new_root`. Raises `AuditIntegrityError`."""
        _merkle.verify_consistency(proof.old_size, proof.new_size, old_root, new_root, proof.hashes)


def _first_missing(rows: Sequence[tuple[int, bytes]], start: int) -> int:
    """The first seq from `start` on that `rows` (sorted by seq) does not hold."""
    for expected, (seq, _leaf) in enumerate(rows, start):
        if seq != expected:
            return expected
    return start + len(rows)
