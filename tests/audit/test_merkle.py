"""RFC 6962/9162 hashing and proofs, against known answers and a reference."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warrant.audit import EMPTY_ROOT, leaf_hash, node_hash, root_from_leaf_hashes
from warrant.audit._merkle import (
    Frontier,
    consistency_path,
    inclusion_path,
    verify_consistency,
    verify_inclusion,
)
from warrant.errors import AuditIntegrityError

# The leaves and roots used by certificate-transparency's merkle tree tests.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def reference_root(hashes: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 §2.1: recursive split at the largest power of two < n."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(reference_root(hashes[:k]), reference_root(hashes[k:]))


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_the_empty_tree_hashes_to_sha256_of_nothing() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert Frontier().root() == EMPTY_ROOT


def test_leaves_and_nodes_use_distinct_domain_prefixes() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


@pytest.mark.parametrize("n", range(1, 9))
def test_roots_match_the_certificate_transparency_vectors(n: int) -> None:
    hashes = [leaf_hash(d) for d in CT_LEAVES[:n]]
    assert root_from_leaf_hashes(hashes).hex() == CT_ROOTS[n - 1]


@given(st.integers(min_value=0, max_value=300))
def test_fast_root_and_frontier_agree_with_the_recursive_definition(n: int) -> None:
    hashes = leaves(n)
    frontier = Frontier()
    for h in hashes:
        frontier.append(h)
    expected = reference_root(hashes)
    assert root_from_leaf_hashes(hashes) == expected
    assert frontier.root() == expected


@given(st.data())
def test_an_inclusion_proof_verifies_for_its_leaf_and_fails_for_another(
    data: st.DataObject,
) -> None:
    n = data.draw(st.integers(min_value=1, max_value=200), label="n")
    i = data.draw(st.integers(min_value=0, max_value=n - 1), label="i")
    hashes = leaves(n)
    root = root_from_leaf_hashes(hashes)
    path = inclusion_path(i, hashes)
    verify_inclusion(hashes[i], i, n, path, root)
    with pytest.raises(AuditIntegrityError):
        verify_inclusion(leaf_hash(b"not in the tree"), i, n, path, root)
    if n > 1:
        with pytest.raises(AuditIntegrityError):
            verify_inclusion(hashes[i], (i + 1) % n, n, path, root)


@given(st.data())
def test_a_consistency_proof_verifies_and_fails_if_any_old_leaf_changed(
    data: st.DataObject,
) -> None:
    n = data.draw(st.integers(min_value=1, max_value=200), label="n")
    m = data.draw(st.integers(min_value=1, max_value=n), label="m")
    hashes = leaves(n)
    old_root, new_root = root_from_leaf_hashes(hashes[:m]), root_from_leaf_hashes(hashes)
    path = consistency_path(m, hashes)
    verify_consistency(m, n, old_root, new_root, path)
    changed = data.draw(st.integers(min_value=0, max_value=m - 1), label="changed")
    forged = list(hashes[:m])
    forged[changed] = leaf_hash(b"rewritten history")
    with pytest.raises(AuditIntegrityError):
        verify_consistency(m, n, root_from_leaf_hashes(forged), new_root, path)


def test_consistency_from_the_empty_tree_and_to_the_same_size_are_trivial() -> None:
    hashes = leaves(5)
    root = root_from_leaf_hashes(hashes)
    verify_consistency(0, 5, EMPTY_ROOT, root, consistency_path(0, hashes))
    verify_consistency(5, 5, root, root, consistency_path(5, hashes))
    with pytest.raises(AuditIntegrityError):
        verify_consistency(5, 5, root, EMPTY_ROOT, [])
    with pytest.raises(AuditIntegrityError):
        verify_consistency(3, 5, root_from_leaf_hashes(hashes[:3]), root, [])


def test_a_proof_with_an_extra_hash_is_rejected() -> None:
    hashes = leaves(6)
    root = root_from_leaf_hashes(hashes)
    path = [*inclusion_path(2, hashes), EMPTY_ROOT]
    with pytest.raises(AuditIntegrityError):
        verify_inclusion(hashes[2], 2, 6, path, root)
    cpath = [*consistency_path(3, hashes), EMPTY_ROOT]
    with pytest.raises(AuditIntegrityError):
        verify_consistency(3, 6, root_from_leaf_hashes(hashes[:3]), root, cpath)
