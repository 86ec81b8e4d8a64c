"""Shared CLI plumbing: the home option, JSON output, durations, error handling, token input."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from warrant.config import resolve_home
from warrant.enforce import TrustDomain
from warrant.errors import ConfigError, WarrantError

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes: 0 success/allow, 1 deny, 2 error, 3 needs approval.
EXIT_DENY, EXIT_ERROR, EXIT_APPROVAL = 1, 2, 3

_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def home_option(fn: F) -> F:
    return click.option(
        "--home", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Trust domain state directory (default: $WARRANT_HOME, else ./.warrant).",
    )(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(fn)


def parse_duration(text: str) -> int:
    """`90s`, `10m`, `1h`, `2d` or plain seconds → seconds."""
    match = _DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) <= 0:
        raise click.BadParameter(f"`{text}` is not a duration like 90s, 10m, 1h")
    return int(match.group(1)) * _UNITS[match.group(2)]


def read_token(value: str, what: str) -> str:
    """A token given inline, as `@FILE`, or `-` for stdin (keeps tokens out of `ps`)."""
    if value == "-":
        text = sys.stdin.read()
    elif value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {what} file `{value[1:]}`: {exc.strerror}") from exc
    else:
        text = value
    return text.strip()


def emit(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        human()


@contextmanager
def opened(home: Path | None) -> Iterator[TrustDomain]:
    with TrustDomain.open(resolve_home(home)) as domain:
        yield domain


def fail(exc: WarrantError, as_json: bool = False) -> None:
    if as_json:
        click.echo(json.dumps({"error": {"code": exc.code, "message": exc.message,
                                         "hint": exc.hint or None}}), err=True)
    else:
        click.echo(exc.diagnostics(), err=True)
    sys.exit(EXIT_ERROR)


def write_output(path: Path, text: str) -> None:
    """Write a report file the user asked for; a failure is a `ConfigError` naming it."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write `{path}`: {exc.strerror}") from exc
    click.echo(f"wrote {path}", err=True)
