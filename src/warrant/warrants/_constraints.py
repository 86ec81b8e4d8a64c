"""Argument constraints: one frozen value per kind, all with the same shape.

Each constraint names the argument it applies to and answers
`check(value) -> bool`; `describe()` says in plain words what it requires and
`datalog(var)` gives the equivalent Biscuit expression. Adding a kind is adding
a class here (and a line in `KINDS`).

INVARIANT: `check` fails closed. A value of the wrong type (a bool where an
integer is expected, a number where a string is expected, a float, null, a list)
never satisfies a constraint; the Datalog expressions fail the same way (type
errors deny, and no `arg` fact is produced for non-scalar values).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, ClassVar

from warrant.errors import WarrantSpecError
from warrant.warrants._names import ARG_NAME, check_int, check_name, check_text
from warrant.warrants._regex import validate_regex

Scalar = str | int


def lit(value: Scalar) -> str:
    """A Datalog literal for a string or integer (strings are quote-free by construction)."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\") + '"'
    return str(value)


def _check_scalar(kind: str, value: object) -> Scalar:
    if isinstance(value, str):
        return check_text(kind, value)
    return check_int(kind, value)


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


@dataclass(frozen=True, slots=True)
class Constraint:
    """Base of every argument constraint; `arg` is the argument it applies to."""

    kind: ClassVar[str] = ""
    arg: str

    def __post_init__(self) -> None:
        check_name("argument name", self.arg, ARG_NAME)

    def check(self, value: Any) -> bool:  # pragma: no cover - every kind overrides
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - every kind overrides
        raise NotImplementedError

    def datalog(self, var: str) -> str:  # pragma: no cover - every kind overrides
        raise NotImplementedError

    def terms(self) -> tuple[str, ...]:  # pragma: no cover - every kind overrides
        """The constraint's value terms, as Datalog literals, after the kind."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:  # pragma: no cover - every kind overrides
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Equals(Constraint):
    """The argument must equal `value` (same type: string or integer)."""

    kind: ClassVar[str] = "eq"
    value: Scalar

    def __post_init__(self) -> None:
        Constraint.__post_init__(self)
        _check_scalar("an equality value", self.value)

    def check(self, value: Any) -> bool:
        return type(value) is type(self.value) and bool(value == self.value)

    def describe(self) -> str:
        return f"`{self.arg}` must be {_show(self.value)}"

    def datalog(self, var: str) -> str:
        return f"{var} == {lit(self.value)}"

    def terms(self) -> tuple[str, ...]:
        return (lit(self.value),)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "arg": self.arg, "value": self.value}


@dataclass(frozen=True, slots=True)
class OneOf(Constraint):
    """The argument must be one of `values` (all strings or all integers; kept sorted)."""

    kind: ClassVar[str] = "one_of"
    values: tuple[Scalar, ...]

    def __post_init__(self) -> None:
        Constraint.__post_init__(self)
        values = tuple(self.values) if isinstance(self.values, tuple | list | frozenset) else ()
        if not values or len({type(v) for v in values}) != 1:
            raise WarrantSpecError(
                f"allowed values for `{self.arg}` must be a non-empty list of strings or integers"
            )
        for v in values:
            _check_scalar("an allowed value", v)
        object.__setattr__(self, "values", tuple(sorted(set(values))))

    def check(self, value: Any) -> bool:
        return type(value) is type(self.values[0]) and value in self.values

    def describe(self) -> str:
        return f"`{self.arg}` must be one of {', '.join(_show(v) for v in self.values)}"

    def datalog(self, var: str) -> str:
        return f"{self.terms()[0]}.contains({var})"

    def terms(self) -> tuple[str, ...]:
        return ("[" + ", ".join(lit(v) for v in self.values) + "]",)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "arg": self.arg, "values": list(self.values)}


@dataclass(frozen=True, slots=True)
class Matches(Constraint):
    """The whole string argument must match `pattern` (the safe subset in `_regex`)."""

    kind: ClassVar[str] = "regex"
    pattern: str

    def __post_init__(self) -> None:
        Constraint.__post_init__(self)
        check_text("a regex", self.pattern)
        validate_regex(self.pattern)

    def check(self, value: Any) -> bool:
        return isinstance(value, str) and re.fullmatch(self.pattern, value) is not None

    def describe(self) -> str:
        return f"`{self.arg}` must match the pattern /{self.pattern}/"

    def datalog(self, var: str) -> str:
        return f"{var}.matches({lit('^(?:' + self.pattern + ')$')})"

    def terms(self) -> tuple[str, ...]:
        return (lit(self.pattern),)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "arg": self.arg, "pattern": self.pattern}


@dataclass(frozen=True, slots=True)
class InRange(Constraint):
    """The argument must be an integer (not a bool) with `low <= value <= high`."""

    kind: ClassVar[str] = "range"
    low: int
    high: int

    def __post_init__(self) -> None:
        Constraint.__post_init__(self)
        check_int("a range bound", self.low)
        check_int("a range bound", self.high)
        if self.low > self.high:
            raise WarrantSpecError(f"empty range `{self.low}..{self.high}` for `{self.arg}`")

    def check(self, value: Any) -> bool:
        return type(value) is int and self.low <= value <= self.high

    def describe(self) -> str:
        return f"`{self.arg}` must be an integer in {self.low}..{self.high}"

    def datalog(self, var: str) -> str:
        return f"{var} >= {self.low}, {var} <= {self.high}"

    def terms(self) -> tuple[str, ...]:
        return (str(self.low), str(self.high))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "arg": self.arg, "low": self.low, "high": self.high}


@dataclass(frozen=True, slots=True)
class Prefix(Constraint):
    """The argument must be a string starting with `prefix`, with no `..` path segment
    after it: `/repo/../etc/shadow` starts with `/repo/` but names a file outside it
    (also percent-encoded, or between backslashes)."""

    kind: ClassVar[str] = "prefix"
    prefix: str

    def __post_init__(self) -> None:
        Constraint.__post_init__(self)
        check_text("a prefix", self.prefix)

    def check(self, value: Any) -> bool:
        return (isinstance(value, str) and value.startswith(self.prefix)
                and not climbs_out(value[len(self.prefix):]))

    def describe(self) -> str:
        return f'`{self.arg}` must start with "{self.prefix}" (and not climb out with `..`)'

    def datalog(self, var: str) -> str:
        return f"{var}.starts_with({lit(self.prefix)})"

    def terms(self) -> tuple[str, ...]:
        return (lit(self.prefix),)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "arg": self.arg, "prefix": self.prefix}


_SEGMENTS = re.compile(r"[/\\]")
_DOTS = re.compile(r"\s*\.{2,}\s*")
#: Rounds of percent-decoding (`%252e` is `%2e` decoded once): servers decode once or twice.
_DECODE_ROUNDS = 3


def climbs_out(path: str) -> bool:
    """True if `path` has a `..` segment (split at `/` or `\\`, percent-escapes decoded,
    a segment of only dots and spaces counting as one: Windows drops trailing ones)."""
    for _ in range(_DECODE_ROUNDS):
        decoded = urllib.parse.unquote(path)
        if decoded == path:
            break
        path = decoded
    return any(_DOTS.fullmatch(segment) for segment in _SEGMENTS.split(path))


#: Constraint classes by their Datalog kind name.
KINDS: dict[str, type[Constraint]] = {
    cls.kind: cls for cls in (Equals, OneOf, Matches, InRange, Prefix)
}
