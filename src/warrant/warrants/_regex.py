"""The regular-expression subset that Python `re` and Biscuit (Rust `regex`) agree on.

A warrant's regex constraint is evaluated twice: by `Warrant.check` in Python
and by any Biscuit authorizer through `$a.matches("^(?:PATTERN)$")`. Both must
give the same verdict, so patterns are limited to syntax with one meaning in
both engines:

- literals, `.`, escaped metacharacters (`\\.` `\\*` `\\(` …);
- classes `[...]` / `[^...]` with literals, ranges and escaped metacharacters
  (no nested `[`, no `&&` `--` `~~` `||`, no `]` as first member);
- groups `(...)` and `(?:...)`, alternation `|`;
- quantifiers `*` `+` `?` `{m}` `{m,}` `{m,n}` (m, n <= 64), optionally lazy `?`.

Not allowed: anchors `^` `$` (the whole value always has to match), shorthand
classes (`\\d` `\\w` `\\s` `\\b` differ in Unicode tables), flags, lookaround,
backreferences, quotes and control characters.
"""

from __future__ import annotations

import re
from functools import lru_cache

from warrant.errors import WarrantSpecError

MAX_PATTERN = 256
_ESCAPABLE = frozenset(".^$*+?()[]{}|\\-")
_COUNTED = re.compile(r"\{(\d{1,2})(,(\d{1,2})?)?\}")
_MAX_REPEAT = 64


def _fail(pattern: str, why: str) -> WarrantSpecError:
    return WarrantSpecError(
        f"regex `{pattern}` is not supported: {why}",
        hint="use literals, `.`, `[a-z]` classes, groups, `|` and `* + ? {m,n}` quantifiers",
    )


def _class_end(pattern: str, start: int) -> int:
    """Index just past the class that opens at `start`; raises on unsupported syntax."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        raise _fail(pattern, "`]` right after `[` is ambiguous; escape it as `\\]`")
    while i < len(pattern):
        ch = pattern[i]
        if ch == "]":
            return i + 1
        if ch == "[":
            raise _fail(pattern, "nested `[` in a class; escape it as `\\[`")
        if ch == "\\":
            if i + 1 >= len(pattern) or pattern[i + 1] not in _ESCAPABLE:
                raise _fail(pattern, "only metacharacters may be escaped")
            i += 2
            continue
        if pattern[i : i + 2] in {"&&", "--", "~~", "||"}:
            raise _fail(pattern, f"`{pattern[i : i + 2]}` inside a class")
        i += 1
    raise _fail(pattern, "unterminated `[`")


@lru_cache(maxsize=1024)
def validate_regex(pattern: str) -> str:  # noqa: PLR0912 - one branch per token kind
    """Return `pattern` if it is in the shared subset and compiles, else raise."""
    if len(pattern) > MAX_PATTERN:
        raise _fail(pattern[:40] + "…", f"longer than {MAX_PATTERN} characters")
    i, depth, quantifiable = 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern) or pattern[i + 1] not in _ESCAPABLE:
                raise _fail(pattern, "only metacharacters may be escaped (no `\\d`, `\\w`, …)")
            i, quantifiable = i + 2, True
        elif ch == "[":
            i, quantifiable = _class_end(pattern, i), True
        elif ch == "(":
            if pattern.startswith("(?", i) and not pattern.startswith("(?:", i):
                raise _fail(pattern, "only `(?:` groups are allowed (no flags, lookaround)")
            i, depth, quantifiable = (
                i + (3 if pattern.startswith("(?:", i) else 1),
                depth + 1,
                False,
            )
        elif ch == ")":
            if depth == 0:
                raise _fail(pattern, "unbalanced `)`")
            i, depth, quantifiable = i + 1, depth - 1, True
        elif ch in "*+?{":
            if not quantifiable:
                raise _fail(pattern, f"`{ch}` does not follow something it can repeat")
            i = _quantifier_end(pattern, i)
            quantifiable = False
        elif ch in "^$}":
            raise _fail(pattern, f"`{ch}` must be escaped (the whole value always has to match)")
        elif ch == "|":
            i, quantifiable = i + 1, False
        elif ch == '"' or (not ch.isprintable() and ch != " "):
            raise _fail(pattern, "quotes and control characters are not allowed")
        else:
            i, quantifiable = i + 1, True
    if depth:
        raise _fail(pattern, "unbalanced `(`")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise _fail(pattern, str(exc)) from None
    return pattern


def _quantifier_end(pattern: str, i: int) -> int:
    if pattern[i] == "{":
        match = _COUNTED.match(pattern, i)
        if match is None:
            raise _fail(pattern, "a counted repeat is `{m}`, `{m,}` or `{m,n}`")
        low, high = int(match.group(1)), match.group(3)
        if low > _MAX_REPEAT or (high is not None and not low <= int(high) <= _MAX_REPEAT):
            raise _fail(pattern, f"repeat counts must be ordered and at most {_MAX_REPEAT}")
        i = match.end()
    else:
        i += 1
    if i < len(pattern) and pattern[i] == "?":
        i += 1
    return i
