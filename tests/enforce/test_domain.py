"""Opening a trust domain: missing or corrupt state is a clear error, never a silent default."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warrant.config import load_config
from warrant.enforce import TrustDomain
from warrant.errors import ConfigError, PolicyError, StateError, StoreError, WarrantError


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    TrustDomain.init(path, "acme.example").close()
    return path


def test_a_new_domain_has_keys_policies_state_and_a_witnessed_checkpoint(home: Path) -> None:
    for part in ("config.toml", "keys/signing.key", "keys/ca.key", "keys/ca.pem", "state.db",
                 "policies/baseline.cedar", "policies/schema.cedarschema", "checkpoint"):
        assert (home / part).exists(), part
    with TrustDomain.open(home) as domain:
        assert domain.verify_audit().size >= 1


def test_init_refuses_to_overwrite_an_existing_domain(home: Path) -> None:
    with pytest.raises(StateError, match="already holds a trust domain"):
        TrustDomain.init(home, "acme.example")


def test_a_bad_domain_name_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DNS-like"):
        TrustDomain.init(tmp_path / "h", "Not A Domain")
    assert not (tmp_path / "h" / "keys").exists()


@pytest.mark.parametrize(("damage", "error", "message"), [
    (lambda h: (h / "config.toml").unlink(), StateError, "no trust domain"),
    (lambda h: (h / "config.toml").write_text("domain = "), ConfigError, "not valid TOML"),
    (lambda h: (h / "config.toml").write_text('domain = "acme.example"\nstrictt = true\n'),
     ConfigError, "strictt"),
    (lambda h: (h / "keys" / "signing.key").unlink(), StateError, "missing"),
    (lambda h: shutil.rmtree(h / "policies"), StateError, "policy directory"),
    (lambda h: [p.unlink() for p in (h / "policies").glob("*.cedar")], PolicyError,
     "no policies"),
    (lambda h: (h / "policies" / "baseline.cedar").write_text("permit (principal"),
     PolicyError, "baseline.cedar"),
    (lambda h: (h / "state.db").write_bytes(b"garbage" * 1000), StoreError, "database"),
    (lambda h: (h / "state.db").unlink(), StoreError, "does not exist"),
])
def test_missing_or_corrupt_state_is_a_clear_error(home: Path, damage: Callable[[Path], object],
                                                    error: type[WarrantError],
                                                    message: str) -> None:
    damage(home)
    with pytest.raises(error, match=message):
        TrustDomain.open(home).close()


@pytest.mark.claim("audit.tamper-evident")
def test_a_truncated_log_is_caught_against_the_checkpoint_kept_outside_the_database(
        home: Path) -> None:
    import sqlite3

    with TrustDomain.open(home) as domain:
        domain.register_agent("a", owner="o", purpose="p")
    with sqlite3.connect(home / "state.db") as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)")
        conn.execute("DELETE FROM audit_checkpoints")
    domain = TrustDomain.open(home)
    with pytest.raises(WarrantError):
        domain.verify_audit()
    domain.audit.close()
    domain.store.close()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_any_config_text_loads_or_raises_a_config_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    with contextlib.suppress(ConfigError, StateError):
        load_config(tmp_path)


@pytest.mark.claim("audit.tamper-evident")
def test_a_rewritten_log_is_never_blessed_by_a_new_signed_checkpoint(home: Path) -> None:
    import hashlib
    import sqlite3

    from warrant.errors import AuditIntegrityError

    with sqlite3.connect(home / "state.db") as conn:
        record = conn.execute("SELECT record FROM audit_log WHERE seq = 0").fetchone()[0]
        forged = bytes(record).replace(b"acme.example", b"evil.example")
        # A careful attacker recomputes the leaf hash too.
        leaf = hashlib.sha256(b"\x00" + forged).digest()
        conn.execute("UPDATE audit_log SET record = ?, leaf_hash = ? WHERE seq = 0",
                     (forged, leaf))
    domain = TrustDomain.open(home)
    domain.register_agent("later", owner="o", purpose="p")
    with pytest.raises(AuditIntegrityError):
        domain.checkpoint()
    with pytest.raises(AuditIntegrityError):
        domain.close()


@pytest.mark.parametrize(("settings", "problem"), [
    ({"audit_durability": "sometimes"}, "audit_durability"),
    ({"no_such_setting": 1}, "no_such_setting"),
])
def test_invalid_settings_for_a_new_domain_are_refused_and_create_nothing(
        tmp_path: Path, settings: dict[str, object], problem: str) -> None:
    home = tmp_path / "home"
    with pytest.raises(ValueError, match=problem):
        TrustDomain.init(home, "acme.example", settings=settings)
    assert not home.exists()


def test_a_new_domain_takes_its_settings_at_creation(tmp_path: Path) -> None:
    with TrustDomain.init(tmp_path / "home", "acme.example",
                          settings={"audit_durability": "normal"}) as domain:
        assert domain.config.audit_durability == "normal"
    assert 'audit_durability = "normal"' in (tmp_path / "home" / "config.toml").read_text()
