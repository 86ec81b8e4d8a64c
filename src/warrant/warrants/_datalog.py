"""A warrant layer as a Biscuit block: canonical Datalog out, strict parse back in.

Each block states its layer twice: as facts (what `verify_warrant` reads) and
as `check if` rules (what any standard Biscuit authorizer enforces, given
`tool(..)`, `arg(..)` and `time(..)` facts). The text is canonical: one layer
has exactly one rendering.

INVARIANT: grant facts never share a name with request facts (`tool`, `arg`,
`time`): a block's checks see the block's own facts, so a grant fact named
`tool("x")` would satisfy its own `check if tool($t), ...` for any request.

INVARIANT: `parse_block` accepts a block only if re-rendering the facts it read
gives back the block's printed source byte for byte. A block with anything else
in it — a foreign fact, a weaker check, a rule, a `trusting` scope — is refused,
so the facts and the Datalog checks cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from warrant.warrants._constraints import KINDS, Constraint, InRange, OneOf, lit
from warrant.warrants._model import WARRANT_VERSION, ToolGrant, WarrantLayer

_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_TERM_SYNTAX = r'"([^"\n]*)"|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)|(-?\d{1,19})|\[([^\]\n]*)\]'
_TERM = re.compile(_TERM_SYNTAX)
_TERM_LIST = re.compile(f"(?:{_TERM_SYNTAX})(?:, (?:{_TERM_SYNTAX}))*")

Term = str | int | datetime | tuple["Term", ...]


class BlockFormatError(ValueError):
    """A block is not a canonical warrant layer (the message says why)."""


@dataclass(frozen=True, slots=True)
class Header:
    """The facts of the authority block that are not part of a layer's grant."""

    task_id: str
    domain: str
    on_behalf_of: str | None


@lru_cache(maxsize=256)
def date(value: datetime) -> str:
    return value.astimezone(UTC).strftime(_DATE_FORMAT)


def _constraint_check(tool: str, c: Constraint) -> str:
    guard = f"tool($t), $t != {lit(tool)}"
    return f"check if {guard} or tool({lit(tool)}), arg({lit(c.arg)}, $a), {c.datalog('$a')};"


def render_block(layer: WarrantLayer, header: Header | None) -> str:
    """The Datalog source of a block (strings escaped for the Biscuit parser)."""
    lines = [f"warrant_version({WARRANT_VERSION});"]
    if header is not None:
        lines += [f"task({lit(header.task_id)});", f"domain({lit(header.domain)});"]
    if layer.holder is not None:
        lines.append(f"holder({lit(layer.holder)});")
    if header is not None and header.on_behalf_of is not None:
        lines.append(f"on_behalf_of({lit(header.on_behalf_of)});")
    lines += [f"expires({date(layer.expires_at)});", f"max_depth({layer.max_depth});"]
    if layer.total_budget is not None:
        lines.append(f"total_budget({layer.total_budget});")
    checks = [f"check if time($t), $t <= {date(layer.expires_at)};"]
    names = ", ".join(lit(t.name) for t in layer.tools)
    checks.append(f"check if tool($t), [{names}].contains($t);")
    for grant in layer.tools:
        lines.append(f"grant_tool({lit(grant.name)});")
        if grant.budget is not None:
            lines.append(f"tool_budget({lit(grant.name)}, {grant.budget});")
        for c in grant.constraints:
            terms = ", ".join((lit(grant.name), lit(c.arg), lit(c.kind), *c.terms()))
            lines.append(f"constraint({terms});")
            checks.append(_constraint_check(grant.name, c))
    return "\n".join(lines + checks) + "\n"


def printed(source: str) -> str:
    """How Biscuit prints a block rendered by `render_block` (it does not escape strings)."""
    return source.replace("\\\\", "\\")


def _terms(text: str) -> tuple[Term, ...]:
    """Terms of a printed fact: strings, integers, dates and flat arrays, `, `-separated."""
    if not text:
        return ()
    if _TERM_LIST.fullmatch(text) is None:
        raise BlockFormatError(f"unreadable terms `{text[:60]}`")
    terms: list[Term] = []
    for match in _TERM.finditer(text):
        value = match.group(match.lastindex or 0)
        match match.lastindex:
            case 1:  # string
                terms.append(value)
            case 2:  # date (Biscuit prints UTC with a `Z`)
                terms.append(datetime.fromisoformat(value))
            case 3:  # integer
                terms.append(int(value))
            case _:  # array: nested arrays do not match the syntax, so this recursion is flat
                terms.append(_terms(value))
    return tuple(terms)


_SCALARS: dict[str, re.Pattern[str]] = {
    "warrant_version": re.compile(r"warrant_version\((\d{1,19})\);"),
    "task": re.compile(r'task\("([^"\n]*)"\);'),
    "domain": re.compile(r'domain\("([^"\n]*)"\);'),
    "holder": re.compile(r'holder\("([^"\n]*)"\);'),
    "on_behalf_of": re.compile(r'on_behalf_of\("([^"\n]*)"\);'),
    "expires": re.compile(r"expires\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\);"),
    "max_depth": re.compile(r"max_depth\((\d{1,19})\);"),
    "total_budget": re.compile(r"total_budget\((\d{1,19})\);"),
}
_TOOL = re.compile(r'grant_tool\("([^"\n]*)"\);')
_TOOL_BUDGET = re.compile(r'tool_budget\("([^"\n]*)", (\d{1,19})\);')
_CONSTRAINT = re.compile(r'constraint\("([^"\n]*)", "([^"\n]*)", "([a-z_]{1,16})", (.*)\);')


_Grants = list[tuple[str, list[Constraint], list[int]]]


def _read_facts(text: str) -> tuple[dict[str, str], _Grants]:
    """The single-valued facts by name, and the tool grants in order."""
    scalars: dict[str, str] = {}
    grants: _Grants = []
    for line in text.split("\n"):
        if line.startswith("check if ") or not line:
            continue  # checks are compared as a whole against the rendering below
        name = line[: line.find("(")]
        if (pattern := _SCALARS.get(name)) is not None:
            match = pattern.fullmatch(line)
            if match is None or name in scalars:
                raise BlockFormatError(f"malformed or repeated `{name}`")
            scalars[name] = match.group(1)
        elif (match := _TOOL.fullmatch(line)) is not None:
            grants.append((match.group(1), [], []))
        elif (match := _TOOL_BUDGET.fullmatch(line)) is not None:
            if not grants or grants[-1][0] != match.group(1):
                raise BlockFormatError("`tool_budget` does not follow its tool")
            grants[-1][2].append(int(match.group(2)))
        elif (match := _CONSTRAINT.fullmatch(line)) is not None:
            if not grants or grants[-1][0] != match.group(1):
                raise BlockFormatError("`constraint` does not follow its tool")
            grants[-1][1].append(_constraint(match.group(2), match.group(3), match.group(4)))
        else:
            raise BlockFormatError(f"unexpected line `{line[:60]}`")
    return scalars, grants


def _parse_block(text: str, authority: bool) -> tuple[WarrantLayer, Header | None]:
    scalars, grants = _read_facts(text)
    if scalars.get("warrant_version") != str(WARRANT_VERSION):
        raise BlockFormatError("missing or unknown warrant_version")
    if "expires" not in scalars or "max_depth" not in scalars:
        raise BlockFormatError("every block needs expires and max_depth")
    header = None
    if authority:
        if "task" not in scalars or "domain" not in scalars:
            raise BlockFormatError("the authority block needs task and domain")
        header = Header(scalars["task"], scalars["domain"], scalars.get("on_behalf_of"))
    total = scalars.get("total_budget")
    layer = WarrantLayer(
        tools=tuple(ToolGrant(n, tuple(cs), bs[0] if bs else None) for n, cs, bs in grants),
        expires_at=datetime.fromisoformat(scalars["expires"]),
        max_depth=int(scalars["max_depth"]),
        total_budget=None if total is None else int(total),
        holder=scalars.get("holder"),
    )
    if render_block(layer, header) != escape_printed(text):
        raise BlockFormatError("block is not in canonical warrant form")
    return layer, header


#: Parsing is a pure function of the (signature-checked) block text, so results
#: are cached: a task's authority block is shared by every token derived from it.
_cached_parse = lru_cache(maxsize=4096)(_parse_block)


def parse_block(text: str, *, authority: bool) -> tuple[WarrantLayer, Header | None]:
    """Read a printed block back into a layer; raises `BlockFormatError` (or
    `WarrantSpecError` for invalid values) unless the block is canonical."""
    return _cached_parse(text, authority)


#: The `cache_clear` of every cache holding values built from parsed blocks (the
#: verified-token cache of `_token`), so that `clear_parse_cache` empties them too.
DERIVED_CACHES: list[Callable[[], None]] = []


def clear_parse_cache() -> None:
    """Forget cached block parses and everything built from them (benchmarks use it
    to measure the cold path: a token never seen, blocks never parsed)."""
    _cached_parse.cache_clear()
    for clear in DERIVED_CACHES:
        clear()


def escape_printed(text: str) -> str:
    """Inverse of `printed`: the source Biscuit would print as `text`."""
    return text.replace("\\", "\\\\")


def _constraint(arg: str, kind: str, values_text: str) -> Constraint:
    cls = KINDS.get(kind)
    if cls is None:
        raise BlockFormatError(f"unknown constraint kind `{kind}`")
    values = _terms(values_text)
    if cls is OneOf:
        if len(values) != 1 or not isinstance(values[0], tuple):
            raise BlockFormatError("malformed one_of constraint")
        return OneOf(arg, values[0])  # type: ignore[arg-type]  # OneOf validates its values
    if len(values) != (2 if cls is InRange else 1):
        raise BlockFormatError(f"malformed {kind} constraint")
    return cls(arg, *values)
