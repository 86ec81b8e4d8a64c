"""The trust domain's key material on disk: signing key, CA key and CA certificate.

Layout under the keys directory:
    signing.key   Ed25519, signs credentials, warrants and audit checkpoints
    ca.key        Ed25519, signs agent certificates
    ca.pem        the CA certificate (public)
Private keys are 0600 and encrypted when $WARRANT_KEY_PASSPHRASE is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warrant.errors import StateError

from ._ca import certificate_pem, create_ca, load_certificate
from ._keys import generate_key, jwk_thumbprint, read_private_key, write_private_key

SIGNING_KEY = "signing.key"
CA_KEY = "ca.key"
CA_CERT = "ca.pem"


@dataclass(frozen=True, slots=True)
class DomainKeys:
    signing_key: Ed25519PrivateKey
    ca_key: Ed25519PrivateKey
    ca_certificate: x509.Certificate

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key.public_key()

    @property
    def key_id(self) -> str:
        return jwk_thumbprint(self.public_key)


def create_domain_keys(keys_dir: Path, domain: str, now: float) -> DomainKeys:
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(keys_dir, 0o700)
    signing, ca_key = generate_key(), generate_key()
    ca_cert = create_ca(ca_key, domain, now)
    write_private_key(keys_dir / SIGNING_KEY, signing)
    write_private_key(keys_dir / CA_KEY, ca_key)
    (keys_dir / CA_CERT).write_bytes(certificate_pem(ca_cert))
    return DomainKeys(signing_key=signing, ca_key=ca_key, ca_certificate=ca_cert)


def load_domain_keys(keys_dir: Path) -> DomainKeys:
    signing = read_private_key(keys_dir / SIGNING_KEY)
    ca_key = read_private_key(keys_dir / CA_KEY)
    try:
        ca_cert = load_certificate((keys_dir / CA_CERT).read_bytes())
    except FileNotFoundError as exc:
        raise StateError(f"CA certificate `{keys_dir / CA_CERT}` is missing") from exc
    except ValueError as exc:
        raise StateError(f"CA certificate `{keys_dir / CA_CERT}` is corrupt") from exc
    return DomainKeys(signing_key=signing, ca_key=ca_key, ca_certificate=ca_cert)
