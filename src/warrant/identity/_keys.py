"""Ed25519 key handling: generation, encrypted PEM files written 0600, JWKs.

All cryptography comes from `cryptography`; this module only decides where keys
live and how they are protected on disk.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warrant.errors import IdentityError, StateError

PASSPHRASE_ENV = "WARRANT_KEY_PASSPHRASE"  # noqa: S105 - an env var name, not a secret


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def public_from_raw(data: bytes) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(data)
    except ValueError as exc:
        raise IdentityError("a public key must be 32 raw Ed25519 bytes") from exc


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode("utf-8") if value else None


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write a private key as PKCS#8 PEM, mode 0600, encrypted when a passphrase is set.

    The file is created with 0600 from the start (never world-readable, not
    even for an instant) and written atomically through a temporary file.
    """
    passphrase = _passphrase()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            encryption)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        pem = path.read_bytes()
    except FileNotFoundError as exc:
        raise StateError(f"signing key `{path}` is missing") from exc
    except OSError as exc:
        raise StateError(f"cannot read signing key `{path}`: {exc.strerror}") from exc
    encrypted = b"ENCRYPTED" in pem
    passphrase = _passphrase() if encrypted else None
    if encrypted and passphrase is None:
        raise StateError(
            f"signing key `{path}` is encrypted",
            hint=f"set ${PASSPHRASE_ENV} to its passphrase",
        )
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase)
    except (ValueError, TypeError) as exc:
        raise StateError(
            f"signing key `{path}` could not be loaded (corrupt file or wrong passphrase)"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise StateError(f"signing key `{path}` is not an Ed25519 key")
    return key


def load_public_key_file(path: Path) -> Ed25519PublicKey:
    """Read a public key an agent generated itself (PEM, or 64 hex chars of raw key)."""
    try:
        data = path.read_bytes().strip()
    except OSError as exc:
        raise IdentityError(f"cannot read public key `{path}`: {exc.strerror}") from exc
    if data.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise IdentityError(f"`{path}` is not a valid PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise IdentityError(f"`{path}` is not an Ed25519 public key")
        return key
    try:
        return public_from_raw(bytes.fromhex(data.decode("ascii")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise IdentityError(
            f"`{path}` holds neither a PEM public key nor 64 hex characters"
        ) from exc


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The key as an OKP JWK (RFC 8037)."""
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw_public(key))}


def jwk_thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) — the key's stable id."""
    jwk = public_jwk(key)
    canonical = json.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":")
    )
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def public_from_jwk(jwk: object) -> Ed25519PublicKey:
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise IdentityError("confirmation key is not an Ed25519 JWK")
    x = jwk.get("x")
    if not isinstance(x, str):
        raise IdentityError("confirmation key has no `x`")
    try:
        raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    except ValueError as exc:
        raise IdentityError("confirmation key is not base64url") from exc
    return public_from_raw(raw)
