"""Signed checkpoints: C2SP note text, Ed25519 signature by the domain key."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warrant.audit import Checkpoint, key_id, sign_checkpoint, verify_checkpoint
from warrant.errors import AuditIntegrityError

ROOT = bytes(range(32))


def test_a_signed_checkpoint_verifies_with_the_domain_key(key: Ed25519PrivateKey) -> None:
    cp = sign_checkpoint(key, "d.example/audit", 42, ROOT)
    verify_checkpoint(cp, key.public_key())
    assert cp.tree_size == 42
    assert cp.root == ROOT
    assert cp.key_id == key_id("d.example/audit", key.public_key())


def test_the_note_text_round_trips(key: Ed25519PrivateKey) -> None:
    cp = sign_checkpoint(key, "d.example/audit", 7, ROOT)
    note = cp.to_note()
    lines = note.split("\n")
    assert lines[:3] == ["d.example/audit", "7", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]
    assert lines[4] == ""
    assert lines[5].startswith("\u2014 d.example/audit ")
    assert Checkpoint.from_note(note) == cp


@pytest.mark.claim("audit.tamper-evident")
def test_a_checkpoint_from_another_key_is_rejected(key: Ed25519PrivateKey) -> None:
    cp = sign_checkpoint(Ed25519PrivateKey.generate(), "d.example/audit", 7, ROOT)
    with pytest.raises(AuditIntegrityError, match="another key"):
        verify_checkpoint(cp, key.public_key())


@pytest.mark.claim("audit.tamper-evident")
def test_an_edited_checkpoint_fails_its_signature(key: Ed25519PrivateKey) -> None:
    cp = sign_checkpoint(key, "d.example/audit", 7, ROOT)
    forged = Checkpoint.from_note(cp.to_note().replace("\n7\n", "\n3\n"))
    with pytest.raises(AuditIntegrityError, match="invalid signature"):
        verify_checkpoint(forged, key.public_key())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.replace("\n\n", "\n"),
        lambda s: s.replace("\n7\n", "\n07\n"),
        lambda s: s.replace("timestamp", "time"),
        lambda s: s + "extra\n",
        lambda s: s.replace("\u2014 d.example/audit", "\u2014 other"),
        lambda s: s.replace("=\n", "!\n", 1),
        lambda s: "",
    ],
)
def test_malformed_checkpoint_text_raises_an_integrity_error(
    key: Ed25519PrivateKey, mutate: object
) -> None:
    note = sign_checkpoint(key, "d.example/audit", 7, ROOT).to_note()
    assert callable(mutate)
    with pytest.raises(AuditIntegrityError):
        Checkpoint.from_note(mutate(note))
