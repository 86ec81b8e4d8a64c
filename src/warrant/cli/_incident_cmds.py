"""`warrant incidents list|show|ack|close|approve` and `warrant metrics`.

Acknowledging and closing are audited (`incident.ack`, `incident.close`) before
they take effect, and name the person (`user:NAME`, default the OS user).
`approve` runs a playbook step that waited for a human (e.g. `suspend_agent`)
from this process: every step acts through the shared state (revocations,
quarantines), so it takes effect in the gateway on its next decision.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from warrant.enforce import GuardedMemory, TrustDomain
from warrant.errors import StoreError, WarrantError
from warrant.response import (
    INCIDENTS_DB,
    STEPS,
    Alert,
    Notifier,
    Severity,
    Step,
    StepContext,
    StepMode,
    response_metrics,
)
from warrant.store import Incident, SqliteIncidents

from ._common import emit, home_option, json_option, opened


class IncidentError(WarrantError):
    """An incident command could not be carried out (unknown id, already closed)."""

    code = "incident.invalid"


@contextmanager
def _incidents(home: Path | None) -> Iterator[tuple[SqliteIncidents, TrustDomain]]:
    with opened(home) as domain:
        store = SqliteIncidents(domain.home / INCIDENTS_DB)
        try:
            yield store, domain
        finally:
            store.close()


def _when(at: float | None) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _line(i: Incident) -> str:
    acked = f", acked by {i.acked_by}" if i.acked_by else ""
    return (f"{i.incident_id}  [{i.status}{acked}]  {i.severity:<8}  {_when(i.opened_at)}  "
            f"{i.agent or '-'}  {', '.join(i.detections)}\n    {i.title}")


def _plain(value: object) -> str:
    """`key: value, ...` of a mapping (lists joined), for a person rather than a parser."""
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "none"
    return "-" if value is None else str(value)


@click.group("incidents")
def incidents_group() -> None:
    """Incidents the response engine opened: list, show, acknowledge, close."""


@incidents_group.command("list")
@click.option("--status", type=click.Choice(["open", "acked", "contained", "closed"]),
              help="Only incidents with this status.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--follow", "-f", is_flag=True,
              help="Then keep printing new incidents as they open, until interrupted "
                   "(oldest first; with --json, one object per line).")
@click.option("--interval", type=click.FloatRange(0.05, 60), default=0.5, show_default=True,
              help="Seconds between looks for new incidents (with --follow).")
@home_option
@json_option
def incidents_list(status: str | None, limit: int, follow: bool, interval: float,
                   home: Path | None, as_json: bool) -> None:
    """List incidents, newest first (or follow new ones as they open)."""
    with _incidents(home) as (store, _):
        if follow:
            _follow(store, status=status, limit=limit, interval=interval, as_json=as_json)
            return
        items = store.list(status=status, limit=limit)
    emit([_summary(i) for i in items], as_json,
         lambda: click.echo("\n".join(_line(i) for i in items) or "no incidents"))


def _summary(i: Incident) -> dict[str, object]:
    return {k: v for k, v in i.to_json().items() if k not in ("evidence", "timeline")}


#: New incidents looked at per poll while following; more between two polls are
#: reported as a gap (the rest stay in `warrant incidents list`).
FOLLOW_WINDOW = 1_000


def _follow(store: SqliteIncidents, *, status: str | None, limit: int, interval: float,
            as_json: bool) -> None:
    """Print the latest `limit` incidents oldest first, then each new one as it opens.

    Polls the incident tables (the response engine writes them from whatever
    process runs it: the gateway, a Guard) every `interval` seconds.
    """
    seen: set[str] = set()

    def show(items: list[Incident]) -> None:
        for i in reversed(items):  # oldest first, like a log
            if i.incident_id in seen:
                continue
            seen.add(i.incident_id)
            click.echo(json.dumps(_summary(i), sort_keys=True, default=str) if as_json
                       else _line(i))

    show(store.list(status=status, limit=limit))
    try:
        while True:
            time.sleep(interval)
            latest = store.list(status=status, limit=FOLLOW_WINDOW)
            if len(latest) == FOLLOW_WINDOW and not seen & {i.incident_id for i in latest}:
                click.echo(f"(more than {FOLLOW_WINDOW} incidents opened since the last "
                           "look; showing the latest)", err=True)
            show(latest)
            # Older incidents never come back into the window: forget them (bounded memory).
            seen.intersection_update(i.incident_id for i in latest)
    except KeyboardInterrupt:
        return


def _show(i: Incident) -> None:
    click.echo(_line(i))
    click.echo(f"    task {i.task_id or '-'}; contained {_when(i.contained_at)}; "
               f"acked {_when(i.acked_at)} {i.acked_by or ''}")
    disposition = i.disposition
    if disposition:
        click.echo(f"what happened: {disposition.get('what_happened')}")
        click.echo(f"blast radius:  {_plain(disposition.get('blast_radius'))}")
        click.echo(f"next step:     {disposition.get('suggested_next_step')}")
    records = i.evidence.get("records", [])
    click.echo(f"evidence: {len(records)} audit records with inclusion proofs "
               f"(tree size {i.evidence.get('tree_size', '-')})")
    click.echo("timeline:")
    for entry in i.timeline:
        click.echo(f"  {_when(entry['at'])}  {entry['kind']:<17}  {_plain(entry['detail'])}")


@incidents_group.command("show")
@click.argument("incident_id")
@home_option
@json_option
def incidents_show(incident_id: str, home: Path | None, as_json: bool) -> None:
    """Show an incident: disposition, evidence, alerts and timeline."""
    with _incidents(home) as (store, _):
        found = store.get(incident_id)
    if found is None:
        raise IncidentError(f"no incident `{incident_id}`",
                            hint="list them with `warrant incidents list`")
    emit(found.to_json(), as_json, lambda: _show(found))


def _set_status(incident_id: str, status: str, by: str | None, home: Path | None,
                as_json: bool) -> None:
    by = by or f"user:{getpass.getuser()}"
    if not by.startswith("user:") or len(by) < 6:
        raise IncidentError(f"`{by}` must name a person as `user:NAME`")
    with _incidents(home) as (store, domain):
        if store.get(incident_id) is None:
            raise IncidentError(f"no incident `{incident_id}`",
                                hint="list them with `warrant incidents list`")
        action = "incident.ack" if status == "acked" else "incident.close"
        domain.record_admin(action, {"incident_id": incident_id, "by": by})
        try:
            updated = store.set_status(incident_id, status, by=by, at=time.time())
        except StoreError as exc:
            raise IncidentError(exc.message) from exc
    emit(updated.to_json(), as_json, lambda: click.echo(f"{status} {incident_id} by {by}"))


@incidents_group.command("ack")
@click.argument("incident_id")
@click.option("--by", help="The person acknowledging, as user:NAME (default: the OS user).")
@home_option
@json_option
def incidents_ack(incident_id: str, by: str | None, home: Path | None, as_json: bool) -> None:
    """Acknowledge an incident (ends its dwell time)."""
    _set_status(incident_id, "acked", by, home, as_json)


@incidents_group.command("close")
@click.argument("incident_id")
@click.option("--by", help="The person closing, as user:NAME (default: the OS user).")
@home_option
@json_option
def incidents_close(incident_id: str, by: str | None, home: Path | None, as_json: bool) -> None:
    """Close an incident (revocations stay: re-issue credentials deliberately)."""
    _set_status(incident_id, "closed", by, home, as_json)


#: Steps that act on this process's own children (the gateway's sandboxed servers)
#: cannot run from the CLI; the playbook must pre-authorise them.
_NOT_FROM_CLI = frozenset({"kill_sandboxes", "notify"})


@incidents_group.command("approve")
@click.argument("incident_id")
@click.argument("action")
@click.option("--by", help="The person approving, as user:NAME (default: the OS user).")
@home_option
@json_option
def incidents_approve(incident_id: str, action: str, by: str | None, home: Path | None,
                      as_json: bool) -> None:
    """Run a playbook step that waits for a human (e.g. `suspend_agent`), now.

    The step must be pending on the incident (see `warrant incidents show`).
    It is audited with the approver before it runs, and its outcome joins the
    incident's timeline.
    """
    by = by or f"user:{getpass.getuser()}"
    if not by.startswith("user:") or len(by) < 6:
        raise IncidentError(f"`{by}` must name a person as `user:NAME`")
    with _incidents(home) as (store, domain):
        incident = store.get(incident_id)
        if incident is None:
            raise IncidentError(f"no incident `{incident_id}`",
                                hint="list them with `warrant incidents list`")
        waiting = _waiting(incident)
        if action not in waiting:
            raise IncidentError(
                f"`{action}` is not waiting for approval on `{incident_id}` "
                f"(waiting: {', '.join(sorted(waiting)) or 'nothing'})")
        if action in _NOT_FROM_CLI:
            raise IncidentError(f"`{action}` can only run inside the process that started "
                                "the agent's tools; pre-authorise it in the playbook")
        alert = Alert(detection=incident.detections[0] if incident.detections else "manual",
                      severity=Severity(incident.severity), summary=incident.title,
                      event_at=incident.first_event_at, agent=incident.agent,
                      task_id=incident.task_id)
        domain.record_admin("response.action", {
            "incident_id": incident_id, "action": action, "by": by, "approved": True,
            "agent": incident.agent, "task_id": incident.task_id})
        memory = GuardedMemory(domain) if action == "quarantine_memory" else None
        notifier = Notifier()
        try:
            outcome = STEPS[action](StepContext(
                domain, alert, incident_id, Step(action, StepMode.NEEDS_APPROVAL), notifier,
                None, lambda ok, error: None, memory))
        except WarrantError:
            raise
        except Exception as exc:
            store.add_timeline(incident_id, time.time(), "step-failed", {
                "action": action, "by": by, "error": f"{type(exc).__name__}: {exc}"[:300]})
            raise IncidentError(f"`{action}` failed: {exc}") from exc
        finally:
            notifier.close()
            if memory is not None:
                memory.close()
        at = time.time()
        done = {"action": action, "by": by, "status": outcome.status,
                "outcome": outcome.detail}
        store.add_timeline(incident_id, at, "approved", done)
        if outcome.contains:
            store.mark_contained(incident_id, at)
    emit(done, as_json, lambda: click.echo(f"{action} on {incident_id} by {by}: "
                                           f"{outcome.status} — {outcome.detail}"))


def _waiting(incident: Incident) -> set[str]:
    """Steps the incident's timeline shows awaiting approval and not yet approved."""
    waiting: set[str] = set()
    for entry in incident.timeline:
        action = (entry.get("detail") or {}).get("action")
        if entry.get("kind") == "awaiting-approval":
            waiting.add(str(action))
        elif entry.get("kind") == "approved":
            waiting.discard(str(action))
    return waiting


@click.command("metrics")
@home_option
@json_option
def metrics(home: Path | None, as_json: bool) -> None:
    """Response metrics: time to contain, dwell time, coverage, detection latency."""
    with _incidents(home) as (store, _):
        data = response_metrics(store)

    def human() -> None:
        click.echo(f"incidents: {data['incidents']['total']} {data['incidents']['by_status']}")
        for name in ("time_to_contain", "dwell_time", "detection_latency"):
            m = data[name]
            click.echo(f"{name.replace('_', ' ')}: n={m['count']} p50={m['p50_ms']} ms "
                       f"p99={m['p99_ms']} ms max={m['max_ms']} ms")
        cov = data["coverage"]
        click.echo(f"coverage: {cov['triaged']}/{cov['alerts']} alerts triaged")

    emit(data, as_json, human)
