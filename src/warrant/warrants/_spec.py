"""A one-line grammar for tool grants, for the command line.

    SPEC       := TOOL [ ":" CONSTRAINT { "," CONSTRAINT } ] [ "@" BUDGET ]
    CONSTRAINT := ARG "=" VALUE          equality: `to=bob@example.com`
                | ARG "=" V1 "|" V2 ...  one of a set: `currency=EUR|USD`
                | ARG "=" LO ".." HI     integer range, inclusive: `amount=0..100`
                | ARG "~" REGEX          the whole value matches: `path~reports/[a-z]+\\.csv`
                | ARG "^=" PREFIX        starts with: `url^=https://api.example.com/`

Examples: `search`, `send_email:to^=ops@@5`, `transfer:amount=0..100,currency=EUR|USD@3`.

- A value that is an integer (`-?[0-9]+`) is an integer; wrap it in double
  quotes (`zip="01234"`) to mean the string. Quotes are stripped, nothing else
  is unquoted.
- `,` separates constraints; write `\\,` for a literal comma inside a value
  (e.g. `code~[0-9]{2\\,4}`). No other escapes are interpreted.
- The budget is a trailing `@` followed by digits, so a value may contain `@`
  (`to=ops@example.com`); to constrain a value ending in `@` plus digits, add a
  budget or a further constraint after it.
- Regexes use the subset both Python and Biscuit agree on (see `_regex`).
"""

from __future__ import annotations

import re

from warrant.errors import WarrantSpecError
from warrant.warrants._constraints import Constraint, Equals, InRange, Matches, OneOf, Prefix
from warrant.warrants._model import ToolGrant

_BUDGET = re.compile(r"(?P<body>.*)@(?P<budget>[0-9]+)", re.DOTALL)
_ITEM = re.compile(r"(?P<arg>[A-Za-z0-9_][A-Za-z0-9_.\-]*)(?P<op>\^=|~|=)(?P<value>.*)", re.DOTALL)
_INT = re.compile(r"-?[0-9]{1,19}")
_RANGE = re.compile(r"(?P<low>-?[0-9]{1,19})\.\.(?P<high>-?[0-9]{1,19})")
_HINT = "write NAME[:ARG=VALUE|ARG=A|B|ARG=LO..HI|ARG~REGEX|ARG^=PREFIX,...][@BUDGET]"


def _scalar(text: str, spec: str) -> str | int:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    if _INT.fullmatch(text):
        return int(text)
    if not text:
        raise WarrantSpecError(f"empty value in `{spec}`", hint='write `""` for an empty string')
    return text


def _constraint(item: str, spec: str) -> Constraint:
    match = _ITEM.fullmatch(item)
    if match is None:
        raise WarrantSpecError(f"cannot read constraint `{item}` in `{spec}`", hint=_HINT)
    arg, op, value = match.group("arg", "op", "value")
    if op == "~":
        return Matches(arg, value)
    if op == "^=":
        return Prefix(arg, value)
    if (bounds := _RANGE.fullmatch(value)) is not None:
        return InRange(arg, int(bounds.group("low")), int(bounds.group("high")))
    if "|" in value:
        values = [_scalar(v, spec) for v in value.split("|")]
        if len({type(v) for v in values}) != 1:
            raise WarrantSpecError(
                f"allowed values in `{item}` mix integers and strings",
                hint='quote integers meant as strings, e.g. `code="1"|"a"`',
            )
        return OneOf(arg, tuple(values))
    return Equals(arg, _scalar(value, spec))


def parse_tool_spec(spec: str) -> ToolGrant:
    """Parse one tool grant written in the grammar above; raises `WarrantSpecError`."""
    if not isinstance(spec, str) or not spec.strip():
        raise WarrantSpecError("empty tool spec", hint=_HINT)
    body, budget = spec, None
    if (tail := _BUDGET.fullmatch(spec)) is not None:
        body, budget = tail.group("body"), int(tail.group("budget"))
    name, colon, rest = body.partition(":")
    if colon and not rest:
        raise WarrantSpecError(f"`{spec}` has `:` but no constraints", hint=_HINT)
    items = re.split(r"(?<!\\),", rest) if rest else []
    constraints = tuple(_constraint(i.replace("\\,", ","), spec) for i in items)
    try:
        return ToolGrant(name, constraints, budget)
    except WarrantSpecError as exc:
        raise WarrantSpecError(f"{exc.message} in `{spec}`", hint=exc.hint or _HINT) from None
