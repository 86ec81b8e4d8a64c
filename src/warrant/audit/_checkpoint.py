"""Signed checkpoints (tree heads) in the C2SP signed-note `checkpoint` format.

A checkpoint commits the domain to "the log had `tree_size` records and this
root". Its text is::

    <origin>
    <tree size>
    <base64 root hash>
    timestamp <RFC 3339 UTC>

    — <origin> <base64(key id || Ed25519 signature)>

The signature covers the body (the lines before the blank line, each ending in
a newline). The key id is the first four bytes of
SHA-256(origin || "\\n" || 0x01 || public key), as C2SP signed notes define it,
so a verifier can tell which key signed without trying every key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from warrant.errors import AuditIntegrityError

from ._record import utc_now

_ORIGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:\-]{0,254}$")
_SIG_PREFIX = "\u2014 "  # an em dash and a space, as signed notes require
_ED25519_TYPE = b"\x01"


def key_id(origin: str, public_key: Ed25519PublicKey) -> str:
    """The C2SP signed-note key id (4 bytes, hex) for `public_key` named `origin`."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(origin.encode() + b"\n" + _ED25519_TYPE + raw).digest()[:4].hex()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed tree head, valid in shape by construction.

    `verify_checkpoint` checks the signature.
    """

    origin: str
    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: bytes

    def __post_init__(self) -> None:
        if not _ORIGIN.match(self.origin):
            raise ValueError(f"invalid checkpoint origin `{self.origin}`")
        if isinstance(self.tree_size, bool) or not isinstance(self.tree_size, int):
            raise TypeError("checkpoint tree size must be an integer")
        if self.tree_size < 0:
            raise ValueError("checkpoint tree size must not be negative")
        if not re.fullmatch(r"[0-9a-f]{64}", self.root_hash):
            raise ValueError("checkpoint root hash must be 64 lowercase hex digits")
        if not re.fullmatch(r"[0-9a-f]{8}", self.key_id):
            raise ValueError("checkpoint key id must be 8 lowercase hex digits")
        if len(self.signature) != 64:
            raise ValueError("checkpoint signature must be 64 bytes")
        if not re.fullmatch(r"[0-9TZ:.\-]{1,40}", self.timestamp):
            raise ValueError("checkpoint timestamp is malformed")

    @property
    def root(self) -> bytes:
        return bytes.fromhex(self.root_hash)

    def body(self) -> bytes:
        """The signed bytes: origin, size, base64 root and timestamp, one per line."""
        root_b64 = base64.b64encode(self.root).decode()
        text = f"{self.origin}\n{self.tree_size}\n{root_b64}\ntimestamp {self.timestamp}\n"
        return text.encode()

    def to_note(self) -> str:
        """The full signed note: body, blank line, signature line."""
        sig = base64.b64encode(bytes.fromhex(self.key_id) + self.signature).decode()
        return f"{self.body().decode()}\n{_SIG_PREFIX}{self.origin} {sig}\n"

    @classmethod
    def from_note(cls, text: str) -> Checkpoint:
        """Parse a signed note. Raises `AuditIntegrityError` if it is malformed."""
        try:
            cp = _parse_note(text)
        except (TypeError, ValueError, binascii.Error) as exc:
            raise AuditIntegrityError("malformed checkpoint", detail=str(exc)) from None
        # Only the canonical text is accepted, so a note has one meaning.
        if cp.to_note() != text:
            raise AuditIntegrityError("checkpoint text is not in canonical form")
        return cp


def _parse_note(text: str) -> Checkpoint:
    # Raises ValueError (or binascii.Error) for anything off; from_note converts.
    body, sep, sig_block = text.partition("\n\n")
    lines = body.split("\n")
    sig_lines = sig_block.split("\n")
    if not sep or len(lines) != 4 or len(sig_lines) != 2 or sig_lines[1] != "":
        raise ValueError("wrong number of lines")
    origin, size_text, root_b64, ts_line = lines
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise ValueError("tree size is not a decimal number")
    if not ts_line.startswith("timestamp "):
        raise ValueError("missing timestamp line")
    if not sig_lines[0].startswith(_SIG_PREFIX):
        raise ValueError("missing signature line")
    name, _, sig_b64 = sig_lines[0][len(_SIG_PREFIX) :].partition(" ")
    if name != origin:
        raise ValueError("signature is not by the checkpoint's origin")
    root = base64.b64decode(root_b64, validate=True)
    sig = base64.b64decode(sig_b64, validate=True)
    if len(root) != 32 or len(sig) != 68:
        raise ValueError("wrong root or signature length")
    return Checkpoint(
        origin=origin,
        tree_size=int(size_text),
        root_hash=root.hex(),
        timestamp=ts_line[len("timestamp ") :],
        key_id=sig[:4].hex(),
        signature=sig[4:],
    )


def sign_checkpoint(
    key: Ed25519PrivateKey, origin: str, size: int, root: bytes, *, timestamp: str | None = None
) -> Checkpoint:
    """Sign "the log `origin` had `size` records with root `root`"."""
    unsigned = Checkpoint(
        origin=origin,
        tree_size=size,
        root_hash=root.hex(),
        timestamp=timestamp or utc_now(),
        key_id=key_id(origin, key.public_key()),
        signature=bytes(64),
    )
    signature = key.sign(unsigned.body())
    return Checkpoint(
        origin=origin,
        tree_size=size,
        root_hash=unsigned.root_hash,
        timestamp=unsigned.timestamp,
        key_id=unsigned.key_id,
        signature=signature,
    )


def verify_checkpoint(cp: Checkpoint, public_key: Ed25519PublicKey) -> None:
    """Check the checkpoint was signed by `public_key`. Raises `AuditIntegrityError`."""
    if cp.key_id != key_id(cp.origin, public_key):
        raise AuditIntegrityError(
            f"checkpoint at size {cp.tree_size} was signed by another key (id `{cp.key_id}`)"
        )
    try:
        public_key.verify(cp.signature, cp.body())
    except InvalidSignature:
        raise AuditIntegrityError(
            f"checkpoint at size {cp.tree_size} has an invalid signature"
        ) from None
