"""`warrant sandbox run|profiles`: run a command under a sandbox profile, list profiles."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import click

from warrant.config import CONFIG_FILE, resolve_home
from warrant.enforce import TrustDomain, egress_recorder, record_run
from warrant.sandbox import (
    BUILTIN_PROFILES,
    DEFAULT_PROFILE,
    SandboxError,
    SandboxLimits,
    SandboxProfile,
    get_profile,
    load_profiles,
    run_sandboxed,
)

from ._common import emit, home_option, json_option

#: Exit statuses like timeout(1): 124 when the time limit stopped the command,
#: 125 when the sandbox itself failed; otherwise the command's own status.
EXIT_TIMEOUT, EXIT_SANDBOX_FAILED = 124, 125

_config_option = click.option(
    "--config", "config", type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A TOML or JSON file of extra profiles ([profile.NAME] tables).")


def _profiles(config: Path | None) -> dict[str, SandboxProfile]:
    return load_profiles(config) if config else dict(BUILTIN_PROFILES)


@click.group("sandbox")
def sandbox_group() -> None:
    """Run commands with no network, no host files and hard limits."""


@sandbox_group.command("run", context_settings={"ignore_unknown_options": True})
@click.option("--profile", "profile_name", default=DEFAULT_PROFILE, show_default=True,
              help="The sandbox profile to run under.")
@_config_option
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
              help="Wall-clock limit in seconds (overrides the profile's).")
@home_option
@json_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def sandbox_run(profile_name: str, config: Path | None, timeout: float | None,
                home: Path | None, as_json: bool, command: tuple[str, ...]) -> None:
    """Run COMMAND in the sandbox; exit with its status (124 timeout, 125 sandbox failure)."""
    try:
        profile = get_profile(profile_name, profiles=_profiles(config))
        if timeout is not None:
            profile = dataclasses.replace(profile, limits=dataclasses.replace(
                profile.limits, timeout_seconds=timeout))
        with _domain(home) as domain:
            hook = None if domain is None else egress_recorder(
                domain, command=list(command), profile=profile.name)
            result = run_sandboxed(list(command), profile, on_egress=hook)
            if domain is not None:
                record_run(domain, command=list(command), result=result)
    except SandboxError as exc:
        _failed(exc, as_json)
    audited = domain is not None

    def human() -> None:
        sys.stdout.buffer.write(result.stdout)
        sys.stdout.flush()
        sys.stderr.buffer.write(result.stderr)
        for violation in result.violations:
            click.echo(f"sandbox: {violation.kind}: {violation.detail}", err=True)
        if not audited:
            click.echo("sandbox: no trust domain here, so nothing was audited "
                       "(see --home)", err=True)

    emit({**result.to_json(), "audited": audited}, as_json, human)
    sys.exit(EXIT_TIMEOUT if result.killed_by == "timeout" else result.exit_code)


@contextlib.contextmanager
def _domain(home: Path | None) -> Iterator[TrustDomain | None]:
    """The trust domain to audit into, opened for the whole run (egress is recorded as it
    happens), or None when there is none here."""
    path = resolve_home(home)
    if not (path / CONFIG_FILE).exists():
        yield None
        return
    with TrustDomain.open(path) as domain:
        yield domain


def _failed(exc: SandboxError, as_json: bool) -> NoReturn:
    emit({"error": {"code": exc.code, "message": exc.message, "hint": exc.hint or None}},
         as_json, lambda: click.echo(exc.diagnostics(), err=True))
    sys.exit(EXIT_SANDBOX_FAILED)


@sandbox_group.command("profiles")
@_config_option
@json_option
def sandbox_profiles(config: Path | None, as_json: bool) -> None:
    """List the sandbox profiles (built-ins, plus those in --config)."""
    profiles = _profiles(config)

    def human() -> None:
        for name in sorted(profiles):
            p = profiles[name]
            limits: SandboxLimits = p.limits
            click.echo(f"{name:<24} network={p.network:<17} workspace={p.workspace:<10} "
                       f"cpu={limits.cpu_seconds}s mem={limits.address_space_bytes >> 20}MiB "
                       f"nproc={limits.nproc} timeout={limits.timeout_seconds:g}s")

    emit([profiles[name].to_json() for name in sorted(profiles)], as_json, human)
