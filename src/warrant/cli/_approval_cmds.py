"""`warrant approvals list|approve|deny`: humans decide calls that policy held."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import time
from pathlib import Path

import click

from warrant.store import Approval

from ._common import emit, home_option, json_option, opened


def _default_approver() -> str:
    return f"user:{getpass.getuser()}"


def _utc(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _line(a: Approval) -> str:
    # What the person deciding needs to judge the exact call: its arguments as JSON,
    # the argument digest it is bound to, until when it can be approved, and why it
    # waits (the held rule and, for data-flow holds, which argument came from where;
    # `approval.pending` is this very listing).
    why = [str(r.get("message", "")) for r in a.reasons if r.get("code") != "approval.pending"]
    return (f"{a.approval_id}  [{a.status}]  {_utc(a.created_at)}  {a.tool}  "
            f"{json.dumps(a.arguments, sort_keys=True, ensure_ascii=False)}\n"
            f"    agent {a.agent_id}, task {a.task_id}"
            + (f", decided by {a.decided_by}" if a.decided_by else "") + "\n"
            f"    argument digest {a.argument_digest}, expires {_utc(a.expires_at)}"
            + "".join(f"\n    why: {message}" for message in why))


@click.group("approvals")
def approvals_group() -> None:
    """Calls held for human approval: list them, approve or deny them."""


@approvals_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include decided and expired approvals.")
@home_option
@json_option
def approvals_list(show_all: bool, home: Path | None, as_json: bool) -> None:
    """List pending approvals (exact call, argument digest, expiry)."""
    with opened(home) as domain:
        items = domain.store.approvals.list(pending_only=not show_all, now=time.time())
    emit([a.to_json() for a in items], as_json, lambda: click.echo(
        "\n".join(_line(a) for a in items) or "no pending approvals"))


def _decide(approval_id: str, approve: bool, by: str | None, note: str | None,
            home: Path | None, as_json: bool) -> None:
    with opened(home) as domain:
        decided = domain.decide_approval(approval_id, approve=approve,
                                         by=by or _default_approver(), note=note)
    emit(decided.to_json(), as_json, lambda: click.echo(
        f"{decided.status} {decided.approval_id}: {decided.tool} for {decided.agent_id}"
        + (" (the agent's retried call will go through once)" if approve else "")))


@approvals_group.command("approve")
@click.argument("approval_id")
@click.option("--by", help="The approving person as user:NAME (default: the OS user).")
@click.option("--note", help="Why it was approved (kept in the audit log).")
@home_option
@json_option
def approvals_approve(approval_id: str, by: str | None, note: str | None, home: Path | None,
                      as_json: bool) -> None:
    """Approve a held call; the agent's identical retry goes through exactly once."""
    _decide(approval_id, True, by, note, home, as_json)


@approvals_group.command("deny")
@click.argument("approval_id")
@click.option("--by", help="The deciding person as user:NAME (default: the OS user).")
@click.option("--note", help="Why it was denied (kept in the audit log).")
@home_option
@json_option
def approvals_deny(approval_id: str, by: str | None, note: str | None, home: Path | None,
                   as_json: bool) -> None:
    """Deny a held call."""
    _decide(approval_id, False, by, note, home, as_json)
