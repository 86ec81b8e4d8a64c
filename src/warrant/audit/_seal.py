"""Record seals: a keyed MAC proving a record was appended by a holder of the domain key.

A record's leaf hash binds its bytes to the Merkle tree, but anyone who can
write the database can compute a leaf hash too. Until a signed checkpoint
covers a record, only its seal tells Warrant's own appends from rows written
into the database directly.

    key  = HKDF-SHA256(Ed25519 private key bytes, salt=None,
                       info = "warrant audit seal v1" || 0x00 || origin)
    seal = HMAC-SHA256(key, seq as 8 bytes big-endian || leaf hash)

The seal binds the seq, so a sealed record copied or moved to another position
does not verify, and the origin, so a seal from another log does not either.
It is stored next to the record (`audit_log.seal`), outside the bytes the tree
commits to: records and their hashes keep the RFC 9162 shape, and a log
written before seals existed reads as before.

INVARIANT: a writer signs a checkpoint only over records that are sealed or
already covered by a signed checkpoint (see `AuditLog.checkpoint`); so a row
without a valid seal past the last signed checkpoint was never vouched for.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

SEAL_INFO = b"warrant audit seal v1"
SEAL_SIZE = 32


class Sealer:
    """Seals and checks `(seq, leaf hash)` pairs of the log `origin` with a key derived
    from the domain's signing key."""

    __slots__ = ("_base",)

    def __init__(self, signing_key: Ed25519PrivateKey, origin: str) -> None:
        secret = signing_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        key = HKDF(algorithm=SHA256(), length=32, salt=None,
                   info=SEAL_INFO + b"\x00" + origin.encode()).derive(secret)
        # Keyed once; each seal copies the keyed state (a third cheaper than hmac.digest).
        self._base = hmac.new(key, digestmod=hashlib.sha256)

    def seal(self, seq: int, leaf: bytes) -> bytes:
        """The seal of the record with leaf hash `leaf` at position `seq`."""
        mac = self._base.copy()
        mac.update(seq.to_bytes(8, "big") + leaf)
        return mac.digest()

    def check(self, seq: int, leaf: bytes, seal: bytes | None) -> bool:
        """Whether `seal` is the seal of `leaf` at `seq` (None, a missing seal, is not)."""
        return seal is not None and hmac.compare_digest(self.seal(seq, leaf), seal)


class SealTally:
    """Records without a valid seal, tallied as a pass goes by (a verify, or the records
    a checkpoint is about to sign). Nothing is checked without a sealer."""

    __slots__ = ("forged", "missing", "sealer", "signed_size", "unsealed_signed")

    def __init__(self, sealer: Sealer | None, signed_size: int) -> None:
        self.sealer = sealer
        self.signed_size = signed_size
        self.missing: list[int] = []  # past the last signed checkpoint: no seal
        self.forged: list[int] = []  # past the last signed checkpoint: a wrong seal
        self.unsealed_signed = 0  # no seal, covered by a signed checkpoint

    def check(self, seq: int, leaf: bytes, seal: bytes | None) -> None:
        if seq < self.signed_size:
            # A signed checkpoint vouches for this record: its seal would add nothing,
            # so it is not recomputed (one MAC per record signed since, not per record).
            self.unsealed_signed += seal is None
        elif self.sealer is not None and not self.sealer.check(seq, leaf, seal):
            (self.missing if seal is None else self.forged).append(seq)
