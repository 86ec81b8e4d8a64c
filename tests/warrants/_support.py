"""Shared keys, clocks and Hypothesis strategies for the warrant tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import biscuit_auth as ba
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

from warrant.types import ToolCall
from warrant.warrants import (
    Constraint,
    Equals,
    InRange,
    Matches,
    OneOf,
    Prefix,
    ToolGrant,
    mint_warrant,
)

DOMAIN = "acme.example"
AGENT = "spiffe://acme.example/agent/orchestrator"
SUB_AGENTS = tuple(f"spiffe://acme.example/agent/sub-{n}" for n in range(3))
ROOT_KEY = Ed25519PrivateKey.generate()
ROOT_PUBLIC = ROOT_KEY.public_key()
OTHER_KEY = Ed25519PrivateKey.generate()
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

TOOLS = ("read_file", "send_email", "transfer", "rm_rf")
ARGS = ("to", "amount", "path")
PATTERNS = ("[a-c]+", "a.c", "(?:ab|cd)*", "x?[0-9]{1,3}", "[^a]b*", "\\.[a-z]+", "é+")
_TEXT = st.text(alphabet="abcx.é9", max_size=4)
_SMALL_INT = st.integers(min_value=-5, max_value=120)


def biscuit_public_key() -> ba.PublicKey:
    raw = ROOT_PUBLIC.public_bytes_raw()
    return ba.PublicKey.from_bytes(raw, ba.Algorithm.Ed25519)  # type: ignore[call-arg, attr-defined]  # stub predates 0.4.0


def biscuit_private_key(key: Ed25519PrivateKey = ROOT_KEY) -> ba.PrivateKey:
    raw = key.private_bytes_raw()
    return ba.PrivateKey.from_bytes(raw, ba.Algorithm.Ed25519)  # type: ignore[call-arg, attr-defined]  # stub predates 0.4.0


def mint(
    tools: Sequence[ToolGrant],
    *,
    total_budget: int | None = 20,
    max_depth: int = 3,
    expires_at: datetime | None = None,
    key: Ed25519PrivateKey = ROOT_KEY,
    on_behalf_of: str | None = "user:alice",
) -> str:
    return mint_warrant(
        key,
        domain=DOMAIN,
        task_id="task-42",
        agent=AGENT,
        tools=tools,
        on_behalf_of=on_behalf_of,
        total_budget=total_budget,
        expires_at=expires_at or NOW + HOUR,
        max_depth=max_depth,
        now=NOW,
    )


@st.composite
def constraints(draw: st.DrawFn, arg: str | None = None) -> Constraint:
    name = arg or draw(st.sampled_from(ARGS))
    kind = draw(st.sampled_from(("eq", "one_of", "range", "prefix", "regex")))
    if kind == "eq":
        return Equals(name, draw(st.one_of(_TEXT, _SMALL_INT)))
    if kind == "one_of":
        values: list[Any] = draw(
            st.one_of(
                st.lists(_TEXT, min_size=1, max_size=3),
                st.lists(_SMALL_INT, min_size=1, max_size=3),
            )
        )
        return OneOf(name, tuple(values))
    if kind == "range":
        low = draw(_SMALL_INT)
        return InRange(name, low, draw(st.integers(min_value=low, max_value=150)))
    if kind == "prefix":
        return Prefix(name, draw(_TEXT))
    return Matches(name, draw(st.sampled_from(PATTERNS)))


@st.composite
def tool_grants(draw: st.DrawFn, names: Sequence[str] = TOOLS) -> list[ToolGrant]:
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    grants = []
    for name in chosen:
        cs = draw(st.lists(constraints(), max_size=3, unique=True))
        budget = draw(st.none() | st.integers(min_value=0, max_value=10))
        grants.append(ToolGrant(name, tuple(cs), budget))
    return grants


_ARG_VALUE = st.one_of(
    _TEXT,
    _SMALL_INT,
    st.booleans(),
    st.none(),
    st.floats(min_value=0, max_value=10),
    st.lists(st.integers(), max_size=2),
    st.integers(min_value=2**63, max_value=2**70),
)


@st.composite
def tool_calls(draw: st.DrawFn) -> ToolCall:
    tool = draw(st.sampled_from((*TOOLS, "unknown")))
    args = draw(st.dictionaries(st.sampled_from(ARGS), _ARG_VALUE, max_size=3))
    return ToolCall(tool, args)


def times() -> st.SearchStrategy[datetime]:
    """Whole-second instants around the warrant's life (Biscuit dates have second precision)."""
    return st.integers(min_value=-600, max_value=4 * 3600).map(lambda s: NOW + timedelta(seconds=s))
