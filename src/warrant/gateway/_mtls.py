"""Mutual TLS: which agent the client certificate of a connection names.

With `--mtls` the TLS layer accepts only client certificates issued by the
domain's CA; that authenticates the channel, not the caller. To bind the two,
each request's credential must name the same agent as its connection's
certificate (checked in `_http`).

uvicorn does not put the peer certificate in the ASGI scope (0.54: no `tls`
extension, no transport). So the HTTP protocol is subclassed: once the TLS
handshake is done (`connection_made`), the certificate is read and verified
once per connection, and the result rides in that connection's copy of the
app state, which uvicorn copies into every request's `scope["state"]`.

INVARIANT: reading never raises. Any failure (no certificate, not from the
domain CA, no single SPIFFE ID, another trust domain) is a `ClientCertificate`
with an `error`, which `_http` refuses; so does a scope without one.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from uvicorn.protocols.http.h11_impl import H11Protocol

from warrant import identity
from warrant.errors import InvalidCredential
from warrant.types import SpiffeId

log = logging.getLogger("warrant.gateway")

#: Where a connection's `ClientCertificate` sits in each request's `scope["state"]`.
STATE_KEY = "warrant.client_certificate"


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """The agent a connection's client certificate names, or why it names none."""

    #: The SPIFFE ID in the certificate's URI SAN (None when `error` is set).
    agent_id: str | None = None
    #: Unix time after which the certificate no longer vouches for anyone.
    not_after: float = 0.0
    error: str | None = None


def read_client_certificate(transport: asyncio.BaseTransport, ca: x509.Certificate,
                            domain: str, *, now: float | None = None) -> ClientCertificate:
    """The verified identity in the connection's client certificate (never raises)."""
    try:
        ssl_object = transport.get_extra_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            return ClientCertificate(error="the connection is not TLS")
        der = ssl_object.getpeercert(binary_form=True)
        if not der:
            return ClientCertificate(error="no client certificate")
        now = time.time() if now is None else now
        # The TLS layer checked the chain; check again here, with the SPIFFE ID rules.
        agent_id = identity.verify_agent_certificate(
            ssl.DER_cert_to_PEM_cert(der).encode("ascii"), ca, now=now)
        if SpiffeId.parse(agent_id).domain != domain:
            return ClientCertificate(error=f"certificate names `{agent_id[:200]}`, outside "
                                           f"the trust domain `{domain}`")
        not_after = x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
        return ClientCertificate(agent_id=agent_id, not_after=not_after)
    except InvalidCredential as exc:
        return ClientCertificate(error=exc.detail)
    except Exception as exc:  # fail closed: an unreadable certificate binds no one
        log.warning("could not read a client certificate", exc_info=True)
        return ClientCertificate(error=f"client certificate unreadable: {type(exc).__name__}")


def connection_certificate(scope: Mapping[str, Any]) -> ClientCertificate:
    """The `ClientCertificate` of the request's connection; an error one if there is none."""
    state = scope.get("state")
    found = state.get(STATE_KEY) if isinstance(state, Mapping) else None
    if isinstance(found, ClientCertificate):
        return found
    return ClientCertificate(error="no client certificate identity on the connection")


def protocol_reading_certificates(
        read: Callable[[asyncio.BaseTransport], ClientCertificate]) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, also reading each connection's client certificate."""

    class CertificateReadingProtocol(H11Protocol):
        def connection_made(  # type: ignore[override]  # uvicorn narrows it to Transport
                self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            # The app state is shared by all connections; this copy is this connection's.
            self.app_state = {**self.app_state, STATE_KEY: read(transport)}

    return CertificateReadingProtocol
