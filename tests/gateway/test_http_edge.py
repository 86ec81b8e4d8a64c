"""The HTTP edge's bounded audit of refusals, and its fail-closed mTLS binding.

End to end (real TLS, a real flood) in `test_gateway_http.py`; here the parts
alone, with a clock the test moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from hypothesis import given
from hypothesis import strategies as st

from warrant.enforce import TrustDomain
from warrant.errors import ConfigError
from warrant.gateway._http import Listen, _tls, certificate_mismatch, credential_subject
from warrant.gateway._mtls import STATE_KEY, ClientCertificate, read_client_certificate
from warrant.gateway._ratelimit import (
    MAX_REASONS,
    OTHER_CLIENTS,
    REJECTED_ACTION,
    SUMMARY_ACTION,
    AuditThrottle,
)
from warrant.gateway._server import Presented


@dataclass
class Log:
    """Audit records as `TrustDomain.record_admin` would get them."""

    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, action: str, detail: Mapping[str, Any]) -> None:
        self.records.append((action, dict(detail)))

    def full(self) -> list[dict[str, Any]]:
        return [d for a, d in self.records if a == REJECTED_ACTION]

    def summaries(self) -> list[dict[str, Any]]:
        return [d for a, d in self.records if a == SUMMARY_ACTION]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(log: Log, clock: Clock, **options: Any) -> AuditThrottle:
    return AuditThrottle(log, clock=clock, **{"per_client": 3, "window_s": 10.0,
                                               "max_clients": 2, **options})


def test_each_client_gets_a_few_records_in_full_then_one_summary_per_window() -> None:
    log, clock = Log(), Clock()
    edge = throttle(log, clock)
    for _ in range(50):
        edge.rejected("10.0.0.1", {"reason": "bad"})
    edge.rejected("10.0.0.2", {"reason": "bad"})
    assert len(log.full()) == 4 and log.summaries() == []  # counts wait for the window's end
    clock.now += 10
    edge.tick()
    assert log.summaries() == [{"client": "10.0.0.1", "suppressed": 47, "recorded": 3,
                                "reasons": {"bad": 47}, "window_s": 10.0}]
    # A new window: the allowance is back.
    edge.rejected("10.0.0.1", {"reason": "bad"})
    assert len(log.full()) == 5


def test_addresses_beyond_the_cap_are_counted_together() -> None:
    log, clock = Log(), Clock()
    edge = throttle(log, clock)
    for host in range(1000):
        edge.rejected(f"10.0.{host // 256}.{host % 256}", {"reason": "bad"})
    edge.flush()
    assert len(log.full()) == 2  # one each for the two tracked addresses
    assert log.summaries() == [{"client": OTHER_CLIENTS, "suppressed": 998, "recorded": 0,
                                "reasons": {"bad": 998}, "window_s": 10.0}]


def test_distinct_reasons_are_counted_under_a_bounded_number_of_keys() -> None:
    log, clock = Log(), Clock()
    edge = throttle(log, clock, per_client=0)
    for n in range(100):
        edge.rejected("10.0.0.1", {"reason": f"reason {n}"})
    edge.flush()
    [summary] = log.summaries()
    assert len(summary["reasons"]) == MAX_REASONS + 1
    assert summary["reasons"]["other reasons"] == 100 - MAX_REASONS
    assert summary["suppressed"] == 100


def test_a_window_without_suppressed_refusals_writes_no_summary() -> None:
    log, clock = Log(), Clock()
    edge = throttle(log, clock)
    edge.rejected("10.0.0.1", {"reason": "bad"})
    edge.flush()
    edge.flush()
    assert log.summaries() == [] and len(log.full()) == 1


def test_a_throttle_that_could_not_bound_anything_is_refused() -> None:
    with pytest.raises(ValueError, match="max_clients"):
        AuditThrottle(Log(), max_clients=0)


@given(st.lists(st.tuples(st.integers(0, 9), st.sampled_from(["a", "b"]),
                          st.floats(0, 7, allow_nan=False)), max_size=300))
def test_every_refusal_is_recorded_or_counted_and_each_window_is_bounded(
        events: list[tuple[int, str, float]]) -> None:
    log, clock = Log(), Clock()
    edge = throttle(log, clock, per_client=2, max_clients=3)
    start, per_window = clock.now, [0]  # full records in each 10 s window
    for host, reason, advance in events:
        clock.now += advance
        if clock.now - start >= 10:
            start, per_window = clock.now, [*per_window, 0]
        before = len(log.full())
        edge.rejected(f"10.0.0.{host}", {"reason": reason})
        per_window[-1] += len(log.full()) - before
    edge.flush()
    suppressed = sum(s["suppressed"] for s in log.summaries())
    assert len(log.full()) + suppressed == len(events)
    assert max(per_window) <= 2 * 3  # per_client * max_clients
    assert len(log.summaries()) <= len(per_window) * (3 + 1)  # tracked clients + "other"


# -- mTLS binding: every failure refuses --------------------------------------------------

BOT = "spiffe://acme.example/agent/bot"
PRESENTED = Presented(credential="a.b.c", warrant="w")


def scope_with(certificate: object) -> dict[str, Any]:
    return {"type": "http", "state": {STATE_KEY: certificate}}


def test_a_request_without_a_certificate_identity_is_refused() -> None:
    for scope in ({"type": "http"}, {"type": "http", "state": {}}, scope_with("forged")):
        for presented in (PRESENTED, None):  # anonymous requests too
            mismatch = certificate_mismatch(scope, presented)
            assert mismatch is not None
            assert mismatch["reason"] == ("client certificate refused: no client certificate "
                                          "identity on the connection")


def test_an_unreadable_certificate_or_credential_is_refused() -> None:
    refused = ClientCertificate(error="certificate not issued by this domain: bad signature")
    mismatch = certificate_mismatch(scope_with(refused), PRESENTED)
    assert mismatch == {"reason": "client certificate refused: certificate not issued by "
                                  "this domain: bad signature"}
    valid = ClientCertificate(agent_id=BOT, not_after=4e9)
    assert credential_subject("a.b.c") is None
    mismatch = certificate_mismatch(scope_with(valid), PRESENTED)
    assert mismatch is not None and mismatch["credential_subject"] is None
    assert certificate_mismatch(scope_with(valid), None) is None  # anonymous binds nothing


def test_a_certificate_that_expired_on_a_kept_alive_connection_is_refused() -> None:
    expired = ClientCertificate(agent_id=BOT, not_after=1.0)
    assert certificate_mismatch(scope_with(expired), None) == {
        "reason": "client certificate expired", "certificate": BOT}


class BrokenTransport(asyncio.BaseTransport):
    def __init__(self, ssl_object: object = None, fails: bool = False):
        super().__init__()
        self.ssl_object, self.fails = ssl_object, fails

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if self.fails:
            raise RuntimeError("transport gone")
        return self.ssl_object if name == "ssl_object" else default


def test_reading_a_certificate_fails_closed_and_never_raises(tmp_path: Path) -> None:
    with TrustDomain.init(tmp_path / "home", "acme.example") as domain:
        ca = domain.keys.ca_certificate
    plain = read_client_certificate(BrokenTransport(), ca, "acme.example")
    assert plain == ClientCertificate(error="the connection is not TLS")
    broken = read_client_certificate(BrokenTransport(fails=True), ca, "acme.example")
    assert broken == ClientCertificate(error="client certificate unreadable: RuntimeError")


def test_tls_material_that_cannot_be_loaded_is_named_in_the_error(tmp_path: Path) -> None:
    cert, key = tmp_path / "gw.crt", tmp_path / "gw.key"  # neither exists
    listen = Listen.parse("127.0.0.1:8443", tls_cert=cert, tls_key=key)
    config = uvicorn.Config(app="not.loaded:app", ssl_certfile=cert, ssl_keyfile=key)
    with pytest.raises(ConfigError) as caught:
        _tls(config, listen, b"")
    assert str(cert) in caught.value.message and str(key) in caught.value.message
