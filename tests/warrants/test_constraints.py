"""Argument constraints, the shared regex subset and the tool-spec grammar."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warrant.errors import WarrantSpecError
from warrant.warrants import (
    Constraint,
    Equals,
    InRange,
    Matches,
    OneOf,
    Prefix,
    ToolGrant,
    parse_tool_spec,
    validate_regex,
)


@pytest.mark.claim("warrant.argument-constraints")
@pytest.mark.parametrize(
    ("constraint", "good", "bad"),
    [
        (Equals("to", "bob"), ["bob"], ["Bob", "bob ", 1, None, ["bob"]]),
        (Equals("n", 1), [1], [True, 1.0, "1", 2]),
        (OneOf("cur", ("USD", "EUR")), ["EUR", "USD"], ["GBP", "eur", 1, None]),
        (OneOf("n", (1, 2)), [1, 2], [True, 3, "1"]),
        (InRange("amount", 0, 100), [0, 50, 100], [-1, 101, 50.0, "50", True, False, None]),
        (Prefix("url", "https://a/"), ["https://a/x", "https://a/"], ["http://a/", 5, None]),
        # `..` after the prefix names something outside it, however it is spelt.
        (Prefix("path", "/repo/"), ["/repo/a/b.txt", "/repo/a..b", "/repo/.hidden"],
         ["/repo/../etc/shadow", "/repo/a/../../etc", "/repo/..", "/repo/%2e%2e/etc",
          "/repo/%252E%252e/etc", "/repo/..\\x", "/repo/a\\..\\..\\x", "/repo/... /x"]),
        (Prefix("uri", "file:///docs/"), ["file:///docs/a.md"],
         ["file:///docs/../secrets.txt", "file:///docs/x/%2E%2E/%2e%2e/y"]),
        (Matches("path", "[a-z]+\\.csv"), ["ab.csv"], ["ab.csv\n", "x/ab.csv", "abXcsv", 3]),
    ],
)
def test_constraints_accept_only_values_of_the_right_type_and_shape(
    constraint: Constraint, good: list[Any], bad: list[Any]
) -> None:
    assert all(constraint.check(v) for v in good)
    assert not any(constraint.check(v) for v in bad)
    assert f"`{constraint.arg}`" in constraint.describe()


def test_one_of_values_are_kept_sorted_and_must_share_a_type() -> None:
    assert OneOf("c", ("b", "a", "b")).values == ("a", "b")
    with pytest.raises(WarrantSpecError):
        OneOf("c", ("a", 1))
    with pytest.raises(WarrantSpecError):
        OneOf("c", ())


@pytest.mark.parametrize(
    "make",
    [
        lambda: InRange("a", 5, 1),
        lambda: InRange("a", True, 3),
        lambda: InRange("a", 0, 2**63),
        lambda: Equals("a", 1.5),  # type: ignore[arg-type]  # the wrong type is the point
        lambda: Equals("a", 'x"y'),
        lambda: Prefix("a", "line\nbreak"),
        lambda: Equals("bad arg!", "x"),
    ],
)
def test_invalid_constraints_are_refused(make: Any) -> None:
    with pytest.raises(WarrantSpecError):
        make()


@pytest.mark.parametrize(
    "pattern",
    ["^a", "a$", "\\d+", "\\w", "(?i)a", "(?=a)", "(a)\\1", "a**", "a*+", "[[a]]", "[a&&b]",
     "[]a]", "a{1,100}", "a{,3}", "(a", "a)", "*a", 'a"b', "a\tb", "x" * 300],
)  # fmt: skip
def test_regexes_outside_the_shared_subset_are_refused(pattern: str) -> None:
    with pytest.raises(WarrantSpecError, match="regex"):
        validate_regex(pattern)


@pytest.mark.parametrize(
    "pattern",
    ["", "abc", "a.c", "[a-z0-9_]+", "[^/]*", "(?:ab|cd)+?", "x{2}", "x{2,}", "x{1,3}",
     "\\.\\*\\(\\)\\[\\]\\{\\}\\|\\-", "é+", "a b#c"],
)  # fmt: skip
def test_regexes_in_the_shared_subset_are_accepted(pattern: str) -> None:
    assert validate_regex(pattern) == pattern
    re.compile(pattern)


@given(st.text(max_size=30))
def test_regex_validation_only_ever_raises_a_spec_error(pattern: str) -> None:
    with contextlib.suppress(WarrantSpecError):
        validate_regex(pattern)


@pytest.mark.parametrize(
    ("spec", "grant"),
    [
        ("search", ToolGrant("search")),
        ("search@3", ToolGrant("search", budget=3)),
        (
            "transfer:amount=0..100,currency=EUR|USD@5",
            ToolGrant(
                "transfer", (InRange("amount", 0, 100), OneOf("currency", ("EUR", "USD"))), 5
            ),
        ),
        ("send:to=ops@example.com", ToolGrant("send", (Equals("to", "ops@example.com"),))),
        ("send:to^=ops@@2", ToolGrant("send", (Prefix("to", "ops@"),), 2)),
        ('zip:code="01234"', ToolGrant("zip", (Equals("code", "01234"),))),
        ("n:x=-5", ToolGrant("n", (Equals("x", -5),))),
        ("n:x=1|2|3", ToolGrant("n", (OneOf("x", (1, 2, 3)),))),
        ("f:path~[a-z]{1\\,3}\\.csv", ToolGrant("f", (Matches("path", "[a-z]{1,3}\\.csv"),))),
        ("github/create_issue", ToolGrant("github/create_issue")),
    ],
)
def test_tool_specs_parse_into_grants(spec: str, grant: ToolGrant) -> None:
    assert parse_tool_spec(spec) == grant


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("send:", "no constraints"),
        ("send:to", "cannot read constraint `to`"),
        ("send:to=", "empty value"),
        ("n:x=1|a", "mix integers and strings"),
        ("n:x=9..1", "empty range"),
        ("f:path~\\d+", "regex `\\\\d\\+`"),
        ("bad name!", "invalid tool name `bad name!`"),
        ("t@99999999999999999999", "budget"),
    ],
)
def test_bad_tool_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(WarrantSpecError, match=message):
        parse_tool_spec(spec)


@given(st.text(max_size=40))
def test_tool_spec_parsing_only_ever_raises_a_spec_error(spec: str) -> None:
    with contextlib.suppress(WarrantSpecError):
        parse_tool_spec(spec)
