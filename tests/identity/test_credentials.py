"""Agent credentials: short-lived, bound to the agent's key, one error for every failure."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from warrant import identity
from warrant.errors import IdentityError, InvalidCredential, WarrantSpecError
from warrant.types import AgentRecord, AgentStatus, ToolCall

DOMAIN = "acme.example"
NOW = 1_800_000_000.0
DOMAIN_KEY = identity.generate_key()


def make_agent(**changes: object) -> tuple[AgentRecord, Ed25519PrivateKey]:
    record, key = identity.new_agent(domain=DOMAIN, name="billing", owner="finance",
                                     purpose="pays invoices", now=NOW)
    assert key is not None
    if changes:
        from dataclasses import replace

        record = replace(record, **changes)  # type: ignore[arg-type]  # overrides of any field
    return record, key


def issue(record: AgentRecord | None = None, **kwargs: object) -> identity.IssuedCredential:
    record = record or make_agent()[0]
    return identity.issue_credential(DOMAIN_KEY, domain=DOMAIN, agent=record, now=NOW,
                                     **kwargs)  # type: ignore[arg-type]  # per-test options


def verify(token: str, *, now: float = NOW, domain: str = DOMAIN) -> identity.Credential:
    return identity.verify_credential(token, DOMAIN_KEY.public_key(), domain=domain, now=now)


def test_a_credential_names_the_agent_and_confirms_its_key() -> None:
    record, key = make_agent()
    credential = verify(issue(record).token)
    assert credential.agent_id == "spiffe://acme.example/agent/billing"
    assert credential.confirmation_key == key.public_key()
    assert credential.expires_at - credential.issued_at == identity.DEFAULT_TTL_SECONDS


@pytest.mark.claim("identity.short-lived")
def test_credentials_live_minutes_and_the_cap_cannot_be_exceeded() -> None:
    with pytest.raises(WarrantSpecError):
        issue(ttl_seconds=identity.MAX_TTL_SECONDS + 1)
    with pytest.raises(WarrantSpecError):
        issue(ttl_seconds=0)


@pytest.mark.claim("identity.short-lived")
def test_an_expired_credential_is_rejected() -> None:
    token = issue(ttl_seconds=60).token
    with pytest.raises(InvalidCredential):
        verify(token, now=NOW + 60 + identity.CLOCK_SKEW_SECONDS + 1)


@pytest.mark.claim("identity.short-lived")
def test_a_correctly_signed_token_living_past_the_cap_is_rejected() -> None:
    record, _ = make_agent()
    claims = {"iss": f"spiffe://{DOMAIN}", "sub": record.agent_id, "aud": "warrant",
              "iat": int(NOW), "exp": int(NOW) + 86400, "jti": "x" * 16,
              "cnf": {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "A" * 43}}}
    token = jwt.encode(claims, DOMAIN_KEY, algorithm="EdDSA", headers={"typ": "JWT"})
    with pytest.raises(InvalidCredential):
        verify(token)


def test_retired_agents_get_no_credentials() -> None:
    record, _ = make_agent(status=AgentStatus.RETIRED)
    with pytest.raises(IdentityError, match="retired"):
        issue(record)


@pytest.mark.claim("identity.attestation")
def test_a_bound_attestation_must_be_presented_to_get_a_credential() -> None:
    digest = "sha256:" + "ab" * 32
    record, _ = make_agent(attestation=digest)
    with pytest.raises(IdentityError, match="attestation"):
        issue(record)
    with pytest.raises(IdentityError, match="attestation"):
        issue(record, attestation="sha256:" + "cd" * 32)
    assert verify(issue(record, attestation=digest).token).attestation == digest


def _reencode(token: str, **header: object) -> str:
    _head, body, sig = token.split(".")
    new_head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return ".".join((new_head, body, sig))


@pytest.mark.claim("identity.no-oracle")
@pytest.mark.parametrize("mangle", [
    lambda t: "",
    lambda t: "garbage",
    lambda t: t + "x",
    lambda t: t.rsplit(".", 1)[0] + ".",
    lambda t: _reencode(t, alg="none", typ="JWT"),
    lambda t: _reencode(t, alg="HS256", typ="JWT"),
    lambda t: "A" * 10_000,
])
def test_malformed_or_tampered_credentials_raise_the_one_public_error(
        mangle: Callable[[str], str]) -> None:
    token = issue().token
    with pytest.raises(InvalidCredential) as caught:
        verify(mangle(token))
    assert str(caught.value) == "credential rejected"
    assert caught.value.detail


def test_a_credential_from_another_domain_is_rejected() -> None:
    with pytest.raises(InvalidCredential):
        verify(issue().token, domain="evil.example")


def test_a_credential_signed_by_another_key_is_rejected() -> None:
    record, _ = make_agent()
    forged = identity.issue_credential(identity.generate_key(), domain=DOMAIN, agent=record,
                                       now=NOW)
    with pytest.raises(InvalidCredential):
        verify(forged.token)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400) | st.binary(max_size=400).map(lambda b: b.decode("latin-1")))
def test_random_input_only_ever_raises_invalid_credential(text: str) -> None:
    with pytest.raises(InvalidCredential):
        verify(text)


# -- proof of possession ----------------------------------------------------------------

def _proof(key: Ed25519PrivateKey, token: str, call: ToolCall, *, now: float = NOW,
           warrant: str = "w", nonce: str | None = None) -> str:
    return identity.make_proof(key, credential_token=token, tool=call.qualified_name,
                               argument_digest=call.argument_digest(), warrant_token=warrant,
                               now=now, nonce=nonce)


def _check(proof: str, token: str, call: ToolCall, guard: identity.ReplayGuard, *,
           now: float = NOW, warrant: str = "w") -> None:
    identity.verify_proof(proof, credential=verify(token), tool=call.qualified_name,
                          argument_digest=call.argument_digest(), warrant_token=warrant,
                          now=now, replay_guard=guard)


@pytest.mark.claim("authn.proof-of-possession")
def test_a_proof_is_accepted_once_and_replays_are_refused() -> None:
    record, key = make_agent()
    token, call = issue(record).token, ToolCall("send", {"to": "bob"})
    guard = identity.MemoryReplayGuard()
    proof = _proof(key, token, call)
    _check(proof, token, call, guard)
    with pytest.raises(InvalidCredential, match="credential rejected"):
        _check(proof, token, call, guard)


@pytest.mark.claim("authn.proof-of-possession")
@pytest.mark.parametrize("case", ["other-args", "other-tool", "other-warrant", "too-old",
                                  "from-the-future", "wrong-key"])
def test_a_proof_only_covers_its_own_call_key_and_moment(case: str) -> None:
    record, key = make_agent()
    token = issue(record).token
    call = ToolCall("send", {"to": "bob"})
    guard = identity.MemoryReplayGuard()
    skew = identity.PROOF_WINDOW_SECONDS + 1
    proof = _proof(identity.generate_key() if case == "wrong-key" else key, token, call,
                   now=NOW - skew if case == "too-old" else NOW + skew
                   if case == "from-the-future" else NOW)
    presented = {"other-args": ToolCall("send", {"to": "eve"}),
                 "other-tool": ToolCall("delete", {"to": "bob"})}.get(case, call)
    with pytest.raises(InvalidCredential):
        _check(proof, token, presented, guard,
               warrant="other" if case == "other-warrant" else "w")


def test_the_store_replay_guard_is_shared_between_store_instances(tmp_path: object) -> None:
    from pathlib import Path

    from warrant.store import SqliteStore

    path = Path(str(tmp_path)) / "state.db"
    first, second = SqliteStore(path, create=True), SqliteStore(path)
    assert first.first_use("nonce-1", time.time() + 60)
    assert not second.first_use("nonce-1", time.time() + 60)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=600))
def test_random_proofs_only_ever_raise_invalid_credential(text: str) -> None:
    record, _ = make_agent()
    credential = verify(issue(record).token)
    with pytest.raises(InvalidCredential):
        identity.verify_proof(text, credential=credential, tool="t", argument_digest="d",
                              warrant_token="w", now=NOW,
                              replay_guard=identity.MemoryReplayGuard())
