"""`warrant assess` (maturity against the framework) and `warrant plan` (the eight phases).

Both read the live deployment through `warrant.governance`: the assessment is a
report, so it exits 0 whatever the tier; only errors (no domain, a bad
governance or gateway file) exit 2.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from warrant import governance
from warrant.enforce import TrustDomain
from warrant.governance import _report
from warrant.governance._evidence import Evidence
from warrant.governance._governance_file import GOVERNANCE_FILE
from warrant.governance._plan import PhaseStatus, open_store

from ._common import emit, home_option, json_option, opened, write_output

_TIERS = ("foundation", "advanced", "enterprise", "optimized")

_gateway_option = click.option(
    "--gateway-config", type=click.Path(dir_okay=False, path_type=Path),
    help="The gateway config the deployment runs with (`warrant gateway --config`).")
_governance_option = click.option(
    "--governance", "governance_path", type=click.Path(dir_okay=False, path_type=Path),
    help=f"Organisational declarations (default: {GOVERNANCE_FILE} in the domain home).")


def _evidence(domain: TrustDomain, gateway_config: Path | None,
              governance_path: Path | None) -> Evidence:
    declared = governance.load_governance(
        governance_path or domain.home / GOVERNANCE_FILE, explicit=governance_path is not None)
    return governance.collect_evidence(domain, governance=declared,
                                       gateway_config=gateway_config)


@click.command("assess")
@home_option
@_gateway_option
@_governance_option
@click.option("--target", type=click.Choice(_TIERS, case_sensitive=False),
              help="List every gap up to this tier (enterprise = advanced).")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as Markdown to this file.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as HTML to this file.")
@click.option("--controls", "show_controls", is_flag=True,
              help="List every control with its evidence.")
@json_option
def assess(home: Path | None, gateway_config: Path | None, governance_path: Path | None,
           target: str | None, markdown_path: Path | None, html_path: Path | None,
           show_controls: bool, as_json: bool) -> None:
    """Assess the live deployment against every control of the seven domains x three tiers.

    \b
    Prints the tier per domain, the overall tier (the lowest), and the gaps to
    the next tier with exactly what to change. Organisational controls come
    from governance.toml ([acceptable-use], [named-approver], ... each with
    `owner` and `document`) and are reported as declared, not verified.
    Exit status 0 for any tier (it is a report); 2 on errors.
    """
    wanted = governance.Tier.parse(target) if target else None
    with opened(home) as domain:
        result = governance.assess(_evidence(domain, gateway_config, governance_path),
                                   target=wanted)
    if markdown_path is not None:
        write_output(markdown_path, _report.to_markdown(result))
    if html_path is not None:
        write_output(html_path, _report.to_html(result))
    emit(_report.to_json(result), as_json,
         lambda: click.echo(_report.to_text(result, verbose=show_controls)))


def _plan_json(plan: tuple[PhaseStatus, ...],
               store: governance.PlanStore) -> dict[str, Any]:
    return {
        "version": 1,
        "phases": [{"phase": p.phase.number, "title": p.phase.title, "done": p.done,
                    "total": len(p.items),
                    "items": [{"id": i.item.id, "title": i.item.title, "done": i.done,
                               "auto": not i.item.manual, "control": i.item.control,
                               "detail": i.detail, "next_action": None if i.done else i.action}
                              for i in p.items]} for p in plan],
        "next_actions": [{"id": i.item.id, "action": i.action}
                         for i in governance.next_actions(plan)],
        "progress": store.snapshots(),
    }


def _plan_text(plan: tuple[PhaseStatus, ...]) -> str:
    lines = []
    for p in plan:
        lines.append(f"Phase {p.phase.number}: {p.phase.title} ({p.done}/{len(p.items)})")
        for i in p.items:
            how = "auto" if not i.item.manual else "manual"
            lines.append(f"  [{'x' if i.done else ' '}] {i.item.id} ({how}): {i.item.title}")
            lines.append(f"        {i.detail}")
    todo = governance.next_actions(plan)
    lines += ["", "next actions:" if todo else "every item is done"]
    lines += [f"  - {i.item.id}: {i.action}" for i in todo]
    return "\n".join(lines)


@click.group("plan", invoke_without_command=True)
@home_option
@_gateway_option
@_governance_option
@json_option
@click.pass_context
def plan_group(ctx: click.Context, home: Path | None, gateway_config: Path | None,
               governance_path: Path | None, as_json: bool) -> None:
    """The eight implementation phases: checklist, next actions, progress over time.

    Without a subcommand, same as `warrant plan show`.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(plan_show, home=home, gateway_config=gateway_config,
                   governance_path=governance_path, as_json=as_json)


@plan_group.command("show")
@home_option
@_gateway_option
@_governance_option
@json_option
def plan_show(home: Path | None, gateway_config: Path | None, governance_path: Path | None,
              as_json: bool) -> None:
    """Each phase with its items (auto-checked now, or marked by hand) and the next actions."""
    with opened(home) as domain:
        evidence = _evidence(domain, gateway_config, governance_path)
        store = open_store(domain)
        try:
            plan = governance.plan_status(evidence, store.marks())
            store.snapshot([(p.phase.number, p.done, len(p.items)) for p in plan], time.time())
            data = _plan_json(plan, store)
        finally:
            store.close()
    emit(data, as_json, lambda: click.echo(_plan_text(plan)))


@plan_group.command("done")
@click.argument("item")
@click.option("--by", required=True, help="Who signs the item off (a person: `alice`).")
@click.option("--note", help="Why it is done: a link, a ticket, a sentence.")
@home_option
@json_option
def plan_done(item: str, by: str, note: str | None, home: Path | None, as_json: bool) -> None:
    """Mark a manual plan ITEM done (audited)."""
    with opened(home) as domain:
        store = open_store(domain)
        try:
            mark = governance.mark_done(domain, store, item, by=by, note=note)
        finally:
            store.close()
    emit({"item": mark.item, "by": mark.by, "at": mark.at, "note": mark.note}, as_json,
         lambda: click.echo(f"done {mark.item} (by {mark.by})"))


@plan_group.command("undo")
@click.argument("item")
@click.option("--by", required=True, help="Who reopens the item (a person: `alice`).")
@home_option
@json_option
def plan_undo(item: str, by: str, home: Path | None, as_json: bool) -> None:
    """Reopen a manual plan ITEM (audited; the earlier mark stays in the history)."""
    with opened(home) as domain:
        store = open_store(domain)
        try:
            governance.undo(domain, store, item, by=by)
        finally:
            store.close()
    emit({"item": item, "undone": True}, as_json, lambda: click.echo(f"reopened {item}"))


@plan_group.command("history")
@home_option
@json_option
def plan_history(home: Path | None, as_json: bool) -> None:
    """Every mark and undo, and the stored progress snapshots."""
    with opened(home) as domain:
        store = open_store(domain)
        try:
            data = {"marks": store.history(), "progress": store.snapshots()}
        finally:
            store.close()

    def human() -> None:
        for m in data["marks"]:
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(m["at"]))
            click.echo(f"{when} UTC  {m['action']:<4} {m['item']} by {m['by']}"
                       f"{': ' + m['note'] if m['note'] else ''}")
        if not data["marks"]:
            click.echo("no manual item has been marked yet")

    emit(data, as_json, human)
