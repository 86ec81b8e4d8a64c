"""The domain's X.509 certificate authority for mutual TLS between agents and Warrant.

Certificates carry the agent's SPIFFE ID as a URI SAN (X.509-SVID style) and
live as long as a credential: minutes.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from warrant.errors import InvalidCredential
from warrant.types import SpiffeId

CA_LIFETIME = dt.timedelta(days=365)


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def create_ca(key: Ed25519PrivateKey, domain: str, now: float) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Warrant CA {domain}")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_utc(now - 60))
        .not_valid_after(_utc(now) + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"spiffe://{domain}")]),
            critical=False,
        )
        .sign(key, algorithm=None)
    )


def issue_agent_certificate(
    ca_key: Ed25519PrivateKey,
    ca_cert: x509.Certificate,
    *,
    agent_id: str,
    agent_public_key: Ed25519PublicKey,
    now: float,
    ttl_seconds: int,
) -> x509.Certificate:
    """An X.509-SVID for the agent's own key, valid for `ttl_seconds`."""
    spiffe = SpiffeId.parse(agent_id)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spiffe.path)]))
        .issuer_name(ca_cert.subject)
        .public_key(agent_public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_utc(now - 30))
        .not_valid_after(_utc(now + ttl_seconds))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(agent_id)]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .sign(ca_key, algorithm=None)
    )


def verify_agent_certificate(cert_pem: bytes, ca_cert: x509.Certificate, *, now: float) -> str:
    """Return the SPIFFE ID of a certificate issued by this CA and valid now."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise InvalidCredential(f"certificate not issued by this domain: {exc}") from exc
    moment = _utc(now)
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        raise InvalidCredential("certificate not valid at this time")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise InvalidCredential("certificate has no SPIFFE ID") from exc
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1:
        raise InvalidCredential("certificate must carry exactly one SPIFFE ID")
    return uris[0]


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)
