"""Policy source text: reading files, the default pack, and locating statements.

Cedar's parser reports *what* is wrong but not *where*; this module splits a
source into its statements so an error can name the file, the policy and the
line it starts on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from os import PathLike
from pathlib import Path

from warrant.errors import PolicyError

#: `(name, text)` pairs, e.g. `("baseline.cedar", "permit (...);")`.
Source = tuple[str, str]
Sources = Sequence[Source] | Sequence[str | PathLike[str]]

SCHEMA_FILE = "schema.cedarschema"


@dataclass(frozen=True, slots=True)
class Statement:
    """One policy statement of a source: where it starts and its text."""

    source: str
    line: int
    text: str


def _statement_spans(text: str) -> Iterator[tuple[int, int]]:
    """Yield `(start, end)` of each `;`-terminated statement, skipping strings and comments."""
    start, i, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif text.startswith("//", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
        elif ch == ";":
            yield start, i + 1
            start = i + 1
        i += 1
    if start < n:
        yield start, n


def _first_code_offset(text: str, start: int, end: int) -> int | None:
    """Offset of the first character that is neither blank nor inside a comment."""
    i = start
    while i < end:
        if text[i].isspace():
            i += 1
        elif text.startswith("//", i):
            newline = text.find("\n", i)
            i = end if newline < 0 else newline
        else:
            return i
    return None


def split_statements(name: str, text: str) -> list[Statement]:
    """The statements of `text` in order, each with the line it starts on (1-based)."""
    statements = []
    for start, end in _statement_spans(text):
        first = _first_code_offset(text, start, end)
        if first is not None:
            line = text.count("\n", 0, first) + 1
            statements.append(Statement(name, line, text[start:end]))
    return statements


def read_sources(sources: Sources) -> list[Source]:
    """Turn paths (files or directories of `*.cedar`) or `(name, text)` pairs into pairs."""
    result: list[Source] = []
    for item in sources:
        if isinstance(item, tuple):
            name, text = item
            result.append((str(name), str(text)))
            continue
        path = Path(item)
        files = sorted(path.glob("*.cedar")) if path.is_dir() else [path]
        if path.is_dir() and not files:
            raise PolicyError(f"no `*.cedar` files in `{path}`")
        for file in files:
            try:
                result.append((str(file), file.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                raise PolicyError(f"cannot read policy file `{file}`: {exc}") from exc
    return result


def _pack_text(name: str) -> str:
    return (
        resources.files("warrant.policy")
        .joinpath("pack")
        .joinpath(name)
        .read_text(encoding="utf-8")
    )


def default_schema_text() -> str:
    """The Warrant Cedar schema shipped in the default pack."""
    return _pack_text(SCHEMA_FILE)


def default_pack_sources() -> list[Source]:
    """The default policy pack's `*.cedar` files as `(name, text)` pairs, sorted by name."""
    pack = resources.files("warrant.policy").joinpath("pack")
    names = sorted(e.name for e in pack.iterdir() if e.name.endswith(".cedar"))
    return [(f"pack/{n}", _pack_text(n)) for n in names]


def default_pack_tests_text() -> str:
    """The default pack's own test cases (JSON text)."""
    return _pack_text("tests.json")
