"""`warrant respond`: the response engine for every PEP of a domain, from its audit log."""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from warrant.errors import StateError
from warrant.response import AuditFollower, ResponseLock, domain_engine

from ._common import home_option, opened


@click.command("respond")
@click.option("--interval", type=click.FloatRange(0.01, 60), default=0.05, show_default=True,
              help="Seconds between looks for new audit records.")
@click.option("--once", is_flag=True,
              help="Examine what was appended since the last run, then exit (for cron, or "
                   "to catch up after downtime).")
@home_option
def respond(interval: float, once: bool, home: Path | None) -> None:
    """Run detection and containment for every enforcement point of the domain.

    \b
    `warrant hook claude-code`, `warrant check` and SDK guards in short-lived
    processes write their decisions to the audit log but run no response engine.
    This command follows the log (every record any process appends, in order)
    and runs the engine over it: incidents open, and playbooks revoke tasks and
    suspend agents, as they do inside a gateway. Revocations take effect on the
    compromised agent's next call, in every process.

    \b
    One engine per record: while this runs, gateways started on the domain leave
    detection to it (they lose only the inline kill of their sandboxed servers),
    and it refuses to start while a gateway runs an engine of its own.
    Where it stopped is kept in `response.cursor` in the home: after downtime it
    examines what was appended meanwhile. Incidents: `warrant incidents list -f`.
    """
    with opened(home) as domain:
        lock = ResponseLock(domain.home)
        if not lock.exclusive():
            raise StateError(
                "another process does detection for this domain: a gateway with its own "
                "response engine, or another `warrant respond`",
                hint="stop it first, then start `warrant respond` before any gateway "
                     "(gateways started after it leave detection to it)")
        try:
            engine = domain_engine(domain, domain.public_key, domain.config)
            engine.observe(_report)
            follower = AuditFollower(domain, engine, interval=interval)
            follower.start()
            try:
                if once:
                    while follower.poll():
                        pass
                    click.echo(f"examined the audit log up to record {follower.next_seq - 1}")
                    return
                click.echo(f"following the audit log of {domain.home} from record "
                           f"{follower.next_seq} (Ctrl-C to stop)", err=True)
                _run_until_signalled(follower)
            finally:
                follower.close()
        finally:
            lock.release()


def _run_until_signalled(follower: AuditFollower) -> None:
    stop = threading.Event()

    def on_term(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        follower.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _report(kind: str, incident_id: str, detail: Mapping[str, Any]) -> None:
    """One line per alert and containment action, for the person watching."""
    if kind == "alert":
        click.echo(f"{incident_id}: {detail.get('detection', '?')}: "
                   f"{detail.get('summary', '')}".rstrip(": "))
    elif kind in ("action", "contained", "pending", "step-failed"):
        click.echo(f"{incident_id}: {kind} {detail.get('action', '')}".rstrip())
