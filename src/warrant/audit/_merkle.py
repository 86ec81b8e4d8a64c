"""Merkle tree hashing, proofs and proof verifiers (RFC 6962 / RFC 9162 §2.1).

Leaves are hashed as SHA-256(0x00 || data) and interior nodes as
SHA-256(0x01 || left || right), so a leaf can never be passed off as a node.
The tree over n leaves splits at the largest power of two smaller than n.

Everything here works on leaf *hashes* (32-byte values), not on record bytes;
the log hashes each record once with `leaf_hash` and keeps the result.

Proofs over a stored tree: every proof hash is the root of a range of leaves,
and every such range splits into O(log n) aligned perfect subtrees
(`NodeKey`s). The log stores those interior nodes as they complete, so a proof
reads O(log n) hashes instead of every leaf (`inclusion_ranges`,
`consistency_ranges`, `range_plan`, `range_root`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from warrant.errors import AuditIntegrityError

_sha256 = hashlib.sha256

#: The Merkle Tree Hash of the empty tree: SHA-256 of the empty string.
EMPTY_ROOT = _sha256(b"").digest()

#: `(level, index)`: the perfect subtree over leaves `[index << level, (index + 1) << level)`.
#: Level 0 is a leaf hash itself.
NodeKey = tuple[int, int]


def leaf_hash(data: bytes) -> bytes:
    """The RFC 6962 hash of one leaf: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 hash of an interior node: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash over `hashes`, computed level by level.

    Pairing left to right and carrying an odd last node up unchanged builds the
    same tree as RFC 6962's "split at the largest power of two" definition, but
    without recursion and with one list comprehension per level (fast).
    """
    level = list(hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        odd = level[-1] if len(level) % 2 else None
        level = [
            _sha256(b"\x01" + a + b).digest()
            for a, b in zip(level[0::2], level[1::2], strict=False)
        ]
        if odd is not None:
            level.append(odd)
    return level[0]


class Frontier:
    """The compact right edge of a growing tree: one hash per perfect subtree.

    Appending is amortised O(1) hashes and the root is O(log n), so the log can
    sign a checkpoint without re-reading storage.
    INVARIANT: `hashes[i]` is the root of a perfect subtree whose size is the
    i-th set bit of `size`, from the most significant bit down.
    """

    __slots__ = ("hashes", "size")

    def __init__(self) -> None:
        self.hashes: list[bytes] = []
        self.size = 0

    def append(self, leaf: bytes, nodes: list[tuple[int, int, bytes]] | None = None) -> None:
        """Add a leaf; with `nodes`, also list the interior nodes it completes.

        Each completed node is `(level, index, hash)` (see `NodeKey`): exactly
        the perfect subtrees that end at this leaf, so a log can store them.
        """
        stack = self.hashes
        stack.append(leaf)
        n = self.size
        level = 0
        # Each trailing 1 bit of the old size is a perfect subtree that the new
        # leaf completes into one twice as big.
        while n & 1:
            right = stack.pop()
            stack[-1] = _sha256(b"\x01" + stack[-1] + right).digest()
            n >>= 1
            level += 1
            if nodes is not None:
                nodes.append((level, self.size >> level, stack[-1]))
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        it = reversed(self.hashes)
        acc = next(it)
        for left in it:
            acc = _sha256(b"\x01" + left + acc).digest()
        return acc

    def copy(self) -> Frontier:
        other = Frontier()
        other.hashes = list(self.hashes)
        other.size = self.size
        return other


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_path(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1 for leaf `index` in the tree over `hashes`."""
    return [root_from_leaf_hashes(hashes[lo:hi])
            for lo, hi in inclusion_ranges(index, len(hashes))]


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges `[lo, hi)` whose roots make PATH(index, D[size]), bottom-up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index `{index}` is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi, m = 0, size, index
    # The recursion only ever descends into one side, so a loop that records
    # siblings and then reverses them gives the RFC's bottom-up order.
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m = lo + k, m - k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots make PROOF(old_size, D[size]), in proof order."""
    if not 0 <= old_size <= size:
        raise ValueError(f"old size `{old_size}` is outside 0..{size}")
    if old_size in (0, size):
        return []
    ranges: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def _aligned_level(lo: int, hi: int) -> int | None:
    """The level of `[lo, hi)` if it is one aligned perfect subtree, else None."""
    width = hi - lo
    if width & (width - 1) or lo % width:
        return None
    return width.bit_length() - 1


def range_plan(lo: int, hi: int) -> list[NodeKey]:
    """The aligned perfect subtrees `range_root(lo, hi, ...)` reads, left to right.

    RFC 6962's split of any range bottoms out in aligned perfect subtrees after
    O(log n) steps for the ranges proofs use (one ragged right edge at most).
    """
    if hi <= lo:
        raise ValueError(f"empty leaf range `[{lo}, {hi})`")
    plan: list[NodeKey] = []
    todo = [(lo, hi)]
    while todo:
        a, b = todo.pop()
        level = _aligned_level(a, b)
        if level is not None:
            plan.append((level, a >> level))
            continue
        k = _split(b - a)
        todo.append((a + k, b))  # popped after the left half: left-to-right order
        todo.append((a, a + k))
    return plan


def range_root(lo: int, hi: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """MTH(D[lo:hi]) from the hashes of `range_plan(lo, hi)` (a `KeyError` if one is missing)."""
    level = _aligned_level(lo, hi)
    if level is not None:
        return nodes[(level, lo >> level)]
    k = _split(hi - lo)
    return _sha256(b"\x01" + range_root(lo, lo + k, nodes) + range_root(lo + k, hi, nodes)
                   ).digest()


def consistency_path(old_size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1: the old tree is a prefix of the new."""
    return [root_from_leaf_hashes(hashes[lo:hi])
            for lo, hi in consistency_ranges(old_size, len(hashes))]


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2. Returns None or raises `AuditIntegrityError`."""
    if not 0 <= index < tree_size:
        raise AuditIntegrityError(f"leaf {index} is outside a tree of size {tree_size}")
    fn, sn, r = index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            raise AuditIntegrityError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise AuditIntegrityError(f"inclusion proof for leaf {index} does not match the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2. Returns None or raises `AuditIntegrityError`."""
    if not 0 < old_size < new_size:
        _verify_trivial_consistency(old_size, new_size, old_root, new_root, path)
        return
    if not path:
        raise AuditIntegrityError("consistency proof is empty")
    hashes = list(path)
    if old_size & (old_size - 1) == 0:
        hashes.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = hashes[0]
    for c in hashes[1:]:
        if sn == 0:
            raise AuditIntegrityError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if fr != old_root or sr != new_root or sn != 0:
        raise AuditIntegrityError(
            f"consistency proof from size {old_size} to {new_size} does not match the roots"
        )


def _verify_trivial_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> None:
    # RFC 9162 only defines proofs for 0 < m < n; these are the edges around it.
    if not 0 <= old_size <= new_size:
        raise AuditIntegrityError(f"cannot prove size {old_size} consistent with {new_size}")
    if old_size == new_size:
        # PROOF(n, D[n]) is empty; the trees must simply be the same.
        if path or old_root != new_root:
            raise AuditIntegrityError(f"trees of equal size {old_size} have different roots")
        return
    # The empty tree is a prefix of every tree.
    if path or old_root != EMPTY_ROOT:
        raise AuditIntegrityError("invalid consistency proof from the empty tree")
