"""Domain keys on disk and X.509 certificates for mutual TLS."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from warrant import identity
from warrant.errors import IdentityError, InvalidCredential, StateError

NOW = time.time()


@pytest.mark.claim("identity.keys-protected")
def test_private_keys_are_written_0600_in_a_0700_directory(tmp_path: Path) -> None:
    identity.create_domain_keys(tmp_path / "keys", "acme.example", NOW)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    for name in ("signing.key", "ca.key"):
        assert stat.S_IMODE((tmp_path / "keys" / name).stat().st_mode) == 0o600


@pytest.mark.claim("identity.keys-protected")
def test_keys_are_encrypted_with_the_passphrase_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(identity.PASSPHRASE_ENV, "correct horse")
    created = identity.create_domain_keys(tmp_path / "keys", "acme.example", NOW)
    assert b"ENCRYPTED" in (tmp_path / "keys" / "signing.key").read_bytes()
    assert identity.load_domain_keys(tmp_path / "keys").key_id == created.key_id
    monkeypatch.setenv(identity.PASSPHRASE_ENV, "wrong")
    with pytest.raises(StateError, match="wrong passphrase"):
        identity.load_domain_keys(tmp_path / "keys")
    monkeypatch.delenv(identity.PASSPHRASE_ENV)
    with pytest.raises(StateError, match="encrypted"):
        identity.load_domain_keys(tmp_path / "keys")


def test_a_corrupt_or_missing_key_file_is_a_clear_state_error(tmp_path: Path) -> None:
    identity.create_domain_keys(tmp_path / "keys", "acme.example", NOW)
    (tmp_path / "keys" / "signing.key").write_text("not a key")
    with pytest.raises(StateError, match="could not be loaded"):
        identity.load_domain_keys(tmp_path / "keys")
    (tmp_path / "keys" / "signing.key").unlink()
    with pytest.raises(StateError, match="missing"):
        identity.load_domain_keys(tmp_path / "keys")


@pytest.mark.claim("identity.mtls")
def test_an_agent_certificate_carries_its_spiffe_id_and_verifies_against_the_domain_ca(
        tmp_path: Path) -> None:
    keys = identity.create_domain_keys(tmp_path / "keys", "acme.example", NOW)
    agent_key = identity.generate_key()
    cert = identity.issue_agent_certificate(
        keys.ca_key, keys.ca_certificate, agent_id="spiffe://acme.example/agent/billing",
        agent_public_key=agent_key.public_key(), now=NOW, ttl_seconds=600)
    pem = identity.certificate_pem(cert)
    assert identity.verify_agent_certificate(pem, keys.ca_certificate, now=NOW) == \
        "spiffe://acme.example/agent/billing"
    with pytest.raises(InvalidCredential):
        identity.verify_agent_certificate(pem, keys.ca_certificate, now=NOW + 3600)
    other = identity.create_domain_keys(tmp_path / "other", "evil.example", NOW)
    with pytest.raises(InvalidCredential):
        identity.verify_agent_certificate(pem, other.ca_certificate, now=NOW)


@pytest.mark.parametrize(("name", "problem"), [
    ("Billing", "invalid agent name"), ("../etc", "invalid agent name"), ("", "invalid agent name"),
])
def test_bad_agent_names_are_refused(name: str, problem: str) -> None:
    with pytest.raises(IdentityError, match=problem):
        identity.new_agent(domain="acme.example", name=name, owner="o", purpose="p", now=NOW)


def test_an_agent_can_enrol_its_own_key_and_warrant_never_sees_the_private_half(
        tmp_path: Path) -> None:
    own = identity.generate_key()
    (tmp_path / "agent.pub").write_text(identity.raw_public(own.public_key()).hex())
    key = identity.load_public_key_file(tmp_path / "agent.pub")
    record, private = identity.new_agent(domain="acme.example", name="self-keyed", owner="o",
                                         purpose="p", now=NOW, public_key=key)
    assert private is None and not record.key_generated_by_domain
    assert record.public_key == identity.raw_public(own.public_key())
    (tmp_path / "bad.pub").write_text("zz")
    with pytest.raises(IdentityError, match="neither a PEM"):
        identity.load_public_key_file(tmp_path / "bad.pub")
