"""Validation of the names and strings that go into a warrant.

Every string in a warrant ends up inside a Biscuit Datalog block. Biscuit prints
block contents without escaping, so strings must not contain double quotes or
control characters: with that rule a printed block reads back unambiguously,
which is what lets `verify_warrant` insist that every block is in canonical form.
"""

from __future__ import annotations

import re

from warrant.errors import WarrantSpecError

#: Tool names: MCP-style names, optionally qualified with a server (`github/create_issue`).
TOOL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,127}")
#: Argument names: JSON object keys of the usual identifier-like shape.
ARG_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
#: Task ids: opaque, short, printable.
TASK_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,127}")
#: Free text (principals, string values): no quotes, no control characters.
_UNSAFE_TEXT = re.compile(r'["\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]')

MAX_TEXT = 512
#: Biscuit integers are signed 64-bit.
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1


def check_name(kind: str, value: object, pattern: re.Pattern[str]) -> str:
    """Return `value` if it is a string fully matching `pattern`, else raise."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise WarrantSpecError(
            f"invalid {kind} `{value}`",
            hint=f"a {kind} uses letters, digits and `_.-` and is at most 128 characters",
        )
    return value


def check_text(kind: str, value: object, *, allow_empty: bool = True) -> str:
    """Return `value` if it is a string a warrant can carry, else raise."""
    if not isinstance(value, str):
        raise WarrantSpecError(f"{kind} must be a string, got `{value!r}`")
    if len(value) > MAX_TEXT or (not allow_empty and not value):
        raise WarrantSpecError(f"{kind} `{value[:40]}` must be 1..{MAX_TEXT} characters")
    if _UNSAFE_TEXT.search(value):
        raise WarrantSpecError(
            f"{kind} `{value!r}` contains a double quote or a control character",
            hint='warrant strings cannot carry `"` or control characters',
        )
    return value


def check_int(kind: str, value: object, *, minimum: int = INT_MIN) -> int:
    """Return `value` if it is an int (not a bool) within Biscuit's range, else raise."""
    if type(value) is not int or not minimum <= value <= INT_MAX:
        low = "0" if minimum == 0 else "-2^63"
        raise WarrantSpecError(f"{kind} must be an integer in {low}..2^63-1, got `{value!r}`")
    return value
