"""Who counts as a person: the only principals that may approve, lift or decide."""

from __future__ import annotations

import pytest

from warrant import identity


@pytest.mark.parametrize(("principal", "person"), [
    ("user:alice", True), ("user:a", True), ("user:", False), ("user:al ice", False),
    ("user:alice\n", False), ("spiffe://acme.example/agent/bot", False), ("alice", False),
])
def test_only_a_named_user_is_a_person(principal: str, person: bool) -> None:
    assert identity.is_person(principal) is person
