"""`warrant policy check` and `warrant policy test`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from warrant import policy
from warrant.config import resolve_home
from warrant.enforce import SCHEMA_FILE
from warrant.errors import StateError

from ._common import EXIT_DENY, emit, home_option, json_option


def _policy_dir(home: Path | None, directory: Path | None) -> Path:
    path = directory or resolve_home(home) / "policies"
    if not path.is_dir():
        raise StateError(f"policy directory `{path}` does not exist",
                         hint="pass --dir, or run `warrant init` first")
    return path


def _schema(path: Path) -> str:
    try:
        return (path / SCHEMA_FILE).read_text(encoding="utf-8")
    except OSError as exc:
        raise StateError(f"no schema `{SCHEMA_FILE}` in `{path}`") from exc


@click.group("policy")
def policy_group() -> None:
    """Check and test the domain's Cedar policies."""


@policy_group.command("check")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Policy directory (default: HOME/policies).")
@home_option
@json_option
def policy_check(directory: Path | None, home: Path | None, as_json: bool) -> None:
    """Parse, validate against the schema, and warn on risky patterns.

    Exit status 1 when there is any error; warnings alone exit 0.
    """
    path = _policy_dir(home, directory)
    files = sorted(path.glob("*.cedar"))
    findings = policy.check_policies(files, schema=_schema(path))
    errors = [f for f in findings if f.severity == "error"]
    revision = None if errors or not files else policy.load_policy_set(
        files, schema=_schema(path)).revision
    data = {"directory": str(path), "files": [f.name for f in files], "revision": revision,
            "findings": [{"severity": f.severity, "message": f.message, "policy_id": f.policy_id,
                          "source": f.source, "line": f.line} for f in findings]}

    def human() -> None:
        for f in findings:
            where = ":".join(str(x) for x in (f.source, f.line) if x is not None)
            click.echo(f"{f.severity}: {where + ': ' if where else ''}"
                       f"{'[' + f.policy_id + '] ' if f.policy_id else ''}{f.message}")
        if not errors:
            click.echo(f"ok: {len(files)} file(s), revision {revision}, "
                       f"{len(findings)} warning(s)")

    emit(data, as_json, human)
    if errors:
        sys.exit(EXIT_DENY)


@policy_group.command("test")
@click.argument("cases_file", required=False,
                type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Policy directory (default: HOME/policies).")
@home_option
@json_option
def policy_test(cases_file: Path | None, directory: Path | None, home: Path | None,
                as_json: bool) -> None:
    """Run declarative test cases (request → expected decision) against the policies.

    CASES_FILE defaults to tests.json in the policy directory. Exit status 1 if any fails.
    """
    path = _policy_dir(home, directory)
    files = sorted(path.glob("*.cedar"))
    compiled = policy.load_policy_set(files, schema=_schema(path))
    cases = policy.load_policy_tests(cases_file or path / "tests.json")
    results = policy.run_policy_tests(compiled, cases)
    failed = [r for r in results if not r.passed]
    data = {"revision": compiled.revision, "passed": len(results) - len(failed),
            "failed": len(failed), "results": [
                {"name": r.name, "passed": r.passed, "expected": r.expected.value,
                 "actual": r.actual.value if r.actual else None, "message": r.message}
                for r in results]}

    def human() -> None:
        for r in results:
            click.echo(f"{'PASS' if r.passed else 'FAIL'}  {r.name}"
                       + ("" if r.passed else f"  — {r.message}"))
        click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")

    emit(data, as_json, human)
    if failed:
        sys.exit(EXIT_DENY)
