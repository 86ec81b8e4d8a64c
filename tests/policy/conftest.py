"""Fixtures for policy tests."""

from __future__ import annotations

import pytest

from warrant.policy import CompiledPolicy, default_pack_sources, load_policy_set


@pytest.fixture(scope="session")
def pack() -> CompiledPolicy:
    return load_policy_set(default_pack_sources())
