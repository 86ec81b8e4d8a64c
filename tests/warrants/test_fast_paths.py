"""The shortcuts in verification decide exactly what the full checks decide.

`verify_warrant` keeps what is layer-by-layer allowed as running bounds instead
of re-reading every layer above each block, accepts the usual SPIFFE shape in
one match, and remembers verified tokens by exact text and root key. Each is
compared here with the plain form it replaced, or shown to re-check what may
change between calls.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warrant.errors import InvalidWarrant, WarrantSpecError
from warrant.types import SpiffeId
from warrant.warrants import ToolGrant, WarrantLayer, verify_warrant
from warrant.warrants._datalog import clear_parse_cache
from warrant.warrants._names import check_text
from warrant.warrants._token import _Bounds, _check_narrows, _principal, _read_cached

from ._support import DOMAIN, HOUR, NOW, OTHER_KEY, ROOT_PUBLIC, SUB_AGENTS, TOOLS, mint

# -- narrowing: running bounds against every layer above ------------------------------


def _within(budget: int | None, above: list[int | None]) -> bool:
    limits = [b for b in above if b is not None]
    return not limits or (budget is not None and budget <= min(limits))


def _reference_narrows(index: int, parents: list[WarrantLayer], layer: WarrantLayer) -> None:
    """The check as it was before the running bounds: every parent re-read for each block."""
    last = parents[-1]
    effective = {t.name for t in parents[0].tools}.intersection(
        *({t.name for t in p.tools} for p in parents[1:]))
    problems = [f"tool `{t.name}` is not granted above"
                for t in layer.tools if t.name not in effective]
    if layer.max_depth >= last.max_depth:
        problems.append(f"depth {layer.max_depth} does not decrease from {last.max_depth}")
    if layer.expires_at > min(p.expires_at for p in parents):
        problems.append("expiry is later than the warrant's")
    if not _within(layer.total_budget, [p.total_budget for p in parents]):
        problems.append("total budget is larger than the warrant's")
    for grant in layer.tools:
        above = [g.budget for p in parents if (g := p.tool(grant.name)) is not None]
        if not _within(grant.budget, above):
            problems.append(f"budget of `{grant.name}` is larger than the warrant's")
    if layer.holder is not None:
        domain_of = str(parents[0].holder).removeprefix("spiffe://").split("/")[0]
        try:
            _principal("holder", layer.holder, domain_of)
        except WarrantSpecError as exc:
            problems.append(exc.message)
    if problems:
        raise InvalidWarrant(f"block {index} widens the warrant: {'; '.join(problems)}")


_BUDGET = st.none() | st.integers(min_value=0, max_value=6)


@st.composite
def _layers(draw: st.DrawFn) -> WarrantLayer:
    # Duplicate tool names are allowed on purpose: a hand-built block may repeat a
    # grant, and a layer's budget for a tool is then its first grant's.
    names = draw(st.lists(st.sampled_from(TOOLS), min_size=1, max_size=5))
    return WarrantLayer(
        tools=tuple(ToolGrant(n, (), draw(_BUDGET)) for n in names),
        expires_at=NOW + timedelta(seconds=draw(st.integers(min_value=0, max_value=4))),
        max_depth=draw(st.integers(min_value=0, max_value=4)),
        total_budget=draw(_BUDGET),
        holder=draw(st.none() | st.sampled_from(
            (*SUB_AGENTS, "spiffe://other.example/agent/x", "not a principal"))),
    )


def _outcome(check: object) -> str:
    try:
        check()  # type: ignore[operator]
    except InvalidWarrant as exc:
        return str(exc.detail)
    return "narrows"


@settings(max_examples=400, deadline=None)
@given(authority=_layers(), blocks=st.lists(_layers(), min_size=1, max_size=5))
def test_running_bounds_refuse_exactly_what_rereading_every_layer_refuses(
        authority: WarrantLayer, blocks: list[WarrantLayer]) -> None:
    authority = WarrantLayer(authority.tools, authority.expires_at, authority.max_depth,
                             authority.total_budget, SUB_AGENTS[0])
    parents, bounds = [authority], _Bounds.of(authority)
    for index, layer in enumerate(blocks, start=1):
        expected = _outcome(lambda: _reference_narrows(index, parents, layer))  # noqa: B023
        assert _outcome(lambda: _check_narrows(index, bounds, layer)) == expected  # noqa: B023
        bounds.narrow(layer)
        parents.append(layer)


# -- principals: the one-match shape against the full SPIFFE check ---------------------


def _reference_principal(value: str, domain: str) -> str | None:
    try:
        spiffe = SpiffeId.parse(check_text("holder", value))
    except (ValueError, WarrantSpecError):
        return None
    return str(spiffe) if spiffe.domain == domain else None


_PRINCIPALS = st.one_of(
    st.sampled_from(SUB_AGENTS),
    st.builds(lambda d, p: f"spiffe://{d}/{p}",
              st.sampled_from((DOMAIN, "ACME.example", "acme.example.", "-a", "a", "")),
              st.text(alphabet="az09._-/\"\n é", max_size=12)),
    st.text(alphabet="spife:/.az-\n", max_size=24),
)


@settings(max_examples=600, deadline=None)
@given(value=_PRINCIPALS, domain=st.sampled_from((DOMAIN, "a", "other.example")))
def test_a_principal_is_accepted_exactly_when_the_full_spiffe_check_accepts_it(
        value: str, domain: str) -> None:
    try:
        got: str | None = _principal("holder", value, domain)
    except WarrantSpecError:
        got = None
    assert got == _reference_principal(value, domain)


def test_a_principal_one_character_too_long_takes_the_full_check_and_is_refused() -> None:
    long = "spiffe://acme.example/agent/" + "/".join(["a" * 100] * 5)
    assert len(long) > 512
    with pytest.raises(WarrantSpecError):
        _principal("holder", long, DOMAIN)


# -- verified tokens: remembered by text and key, re-checked for domain and time --------


def test_a_remembered_token_is_still_checked_for_its_domain_and_expiry() -> None:
    token = mint([ToolGrant("read_file")], expires_at=NOW + HOUR)
    assert verify_warrant(token, ROOT_PUBLIC, domain=DOMAIN, now=NOW).tools == ("read_file",)
    with pytest.raises(InvalidWarrant):
        verify_warrant(token, ROOT_PUBLIC, domain="other.example", now=NOW)
    with pytest.raises(InvalidWarrant):
        verify_warrant(token, ROOT_PUBLIC, domain=DOMAIN, now=NOW + HOUR + timedelta(seconds=1))


def test_a_token_remembered_under_one_root_key_is_not_trusted_under_another() -> None:
    token = mint([ToolGrant("read_file")], key=OTHER_KEY)
    verify_warrant(token, OTHER_KEY.public_key(), domain=DOMAIN, now=NOW)
    with pytest.raises(InvalidWarrant):
        verify_warrant(token, ROOT_PUBLIC, domain=DOMAIN, now=NOW)


def test_a_refused_token_is_not_remembered() -> None:
    clear_parse_cache()
    with pytest.raises(InvalidWarrant):
        verify_warrant(mint([ToolGrant("read_file")], key=OTHER_KEY), ROOT_PUBLIC,
                       domain=DOMAIN, now=NOW)
    assert _read_cached.cache_info().currsize == 1  # only the mint's own read-back


def test_clearing_the_parse_cache_forgets_verified_tokens_too() -> None:
    # The benchmarks measure first sight by clearing this cache: it must be cold after.
    verify_warrant(mint([ToolGrant("read_file")]), ROOT_PUBLIC, domain=DOMAIN, now=NOW)
    assert _read_cached.cache_info().currsize > 0
    clear_parse_cache()
    assert _read_cached.cache_info().currsize == 0


def test_a_token_that_is_not_a_plain_string_is_refused_not_hashed() -> None:
    tokens: list[object] = [[], {"a": 1}, b"bytes", None]
    for token in tokens:
        with pytest.raises(InvalidWarrant):
            verify_warrant(token, ROOT_PUBLIC, domain=DOMAIN,  # type: ignore[arg-type]
                           now=datetime.now().astimezone())
