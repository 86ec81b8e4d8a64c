"""A trust domain with a memory policy, two agents, a test clock and a `GuardedMemory`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from warrant.enforce import GuardedMemory, TrustDomain
from warrant.memory import TtlPolicy
from warrant.types import thaw

DOMAIN = "acme.example"
BILLING = f"spiffe://{DOMAIN}/agent/billing"

#: A test rule on top of the default pack: `agent:billing` belongs to billing alone.
MEMORY_POLICY = """
@id("test.billing-namespace-is-private")
forbid (principal, action in [Warrant::Action::"memory_read", Warrant::Action::"memory_write"],
        resource == Warrant::MemoryNamespace::"agent:billing")
unless { principal == Warrant::Agent::"spiffe://acme.example/agent/billing" };
"""


class Clock:
    """A clock the test moves by hand (no sleeps)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def memory_domain(tmp_path: Path) -> Iterator[TrustDomain]:
    home = tmp_path / "home"
    TrustDomain.init(home, DOMAIN).close()
    (home / "policies" / "memory.cedar").write_text(MEMORY_POLICY, encoding="utf-8")
    domain = TrustDomain.open(home)
    for name in ("billing", "intruder"):
        domain.register_agent(name, owner="finance", purpose="tests memory")
    yield domain
    domain.close()


@pytest.fixture
def memory(memory_domain: TrustDomain, clock: Clock) -> Iterator[GuardedMemory]:
    with GuardedMemory(memory_domain, clock=clock,
                       ttl=TtlPolicy(trusted_seconds=30 * 86400,
                                     untrusted_seconds=3600)) as guarded:
        yield guarded


def raw_db(memory: GuardedMemory) -> sqlite3.Connection:
    """The backing store opened directly, as an attacker with file access would."""
    return sqlite3.connect(str(memory.store.path), isolation_level=None)


def admin_events(domain: TrustDomain, action: str) -> list[dict[str, Any]]:
    """Details of the audit log's admin records named `action`, oldest first."""
    return [thaw(e.record.detail or {}) for e in domain.audit.tail(10_000)
            if e.record.kind == "admin" and e.record.tool == action]
