"""Signed configuration bundles: a manifest of file digests signed by the domain key.

`sign_bundle` writes `<dir>/.warrant-signature.json` (for a directory: every
regular file in it) or `<file>.sig.json` (for one file): the SHA-256 of each
file, the signing key's id and time, and an Ed25519 signature over the
canonical JSON of all of that. `verify_bundle` recomputes every digest and
checks the signature; an added, removed or modified file, a forged manifest or
a missing one raises `ConfigError` naming what is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warrant.errors import ConfigError
from warrant.types import canonical_json

from ._keys import jwk_thumbprint

DIR_MANIFEST = ".warrant-signature.json"
FILE_SUFFIX = ".sig.json"
#: Signatures over bundles are domain-separated from every other use of the key.
CONTEXT = b"warrant.config-bundle.v1\x00"


def manifest_path(target: Path) -> Path:
    return target / DIR_MANIFEST if target.is_dir() else target.with_name(
        target.name + FILE_SUFFIX)


def _digests(target: Path) -> dict[str, str]:
    if target.is_dir():
        files = sorted(p for p in target.iterdir()
                       if p.is_file() and p.name != DIR_MANIFEST and not p.name.startswith("."))
    elif target.is_file():
        files = [target]
    else:
        raise ConfigError(f"`{target}` does not exist")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def sign_bundle(key: Ed25519PrivateKey, target: Path) -> Path:
    """Sign a directory's files (or one file); returns the manifest path."""
    body = {"version": 1, "files": _digests(target), "signed_at": int(time.time()),
            "key_id": jwk_thumbprint(key.public_key())}
    signature = key.sign(CONTEXT + canonical_json(body))
    path = manifest_path(target)
    path.write_text(json.dumps({**body, "signature": base64.b64encode(signature).decode()},
                               indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def verify_bundle(public_key: Ed25519PublicKey, target: Path) -> dict[str, Any]:
    """Check `target` against its signed manifest; return the manifest. Raises ConfigError."""
    path = manifest_path(target)
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        signature = base64.b64decode(manifest.pop("signature"), validate=True)
        public_key.verify(signature, CONTEXT + canonical_json(manifest))
    except FileNotFoundError as exc:
        raise ConfigError(f"`{target}` is not signed (no `{path.name}`)",
                          hint=f"sign it with `warrant config sign {target}`") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"signature manifest `{path}` is malformed") from exc
    except InvalidSignature as exc:
        raise ConfigError(f"signature manifest `{path}` was not signed by this domain "
                          "(or was edited)") from exc
    signed = manifest.get("files")
    if not isinstance(signed, dict) or not all(isinstance(v, str) for v in signed.values()):
        raise ConfigError(f"signature manifest `{path}` is malformed (no file digests)")
    actual = _digests(target)
    changed = sorted(n for n in signed.keys() & actual.keys() if signed[n] != actual[n])
    added, removed = sorted(actual.keys() - signed.keys()), sorted(signed.keys() - actual.keys())
    if changed or added or removed:
        parts = [f"{label}: {', '.join(names)}" for label, names in
                 (("modified", changed), ("added", added), ("removed", removed)) if names]
        raise ConfigError(f"`{target}` does not match its signature ({'; '.join(parts)})",
                          hint="review the change, then re-sign with `warrant config sign`")
    return manifest
