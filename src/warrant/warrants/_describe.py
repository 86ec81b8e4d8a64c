"""Plain-English description of a verified warrant (what `warrant inspect` prints)."""

from __future__ import annotations

from datetime import datetime

from warrant.warrants._model import Warrant


def _relative(when: datetime, now: datetime) -> str:
    seconds = int((when - now).total_seconds())
    if seconds < 0:
        return "expired"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"in {count} {unit}{'s' if count != 1 else ''}"
    return f"in {seconds} second{'s' if seconds != 1 else ''}"


def _calls(budget: int | None) -> str:
    if budget is None:
        return "no call limit"
    return f"at most {budget} call{'s' if budget != 1 else ''}"


def describe_warrant(w: Warrant, *, now: datetime | None = None) -> str:
    """What the warrant allows, for whom, until when — in plain English."""
    now = now or datetime.now(w.expires_at.tzinfo)
    chain = " → ".join(w.principal_chain)
    lines = [f"Warrant for task `{w.task_id}` in trust domain `{w.domain}`."]
    if w.on_behalf_of:
        lines.append(f"Acting for {w.on_behalf_of}; held by {w.holder}.")
    else:
        lines.append(f"Held by {w.holder}.")
    lines.append(f"Principal chain: {chain}.")
    absolute = w.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    lines.append(f"Expires {_relative(w.expires_at, now)} ({absolute}).")
    total = w.total_budget
    lines.append(
        "No limit on the total number of calls."
        if total is None
        else f"At most {total} tool call{'s' if total != 1 else ''} in total."
    )
    if w.depth_remaining:
        lines.append(f"May be delegated {w.depth_remaining} more level(s), only by narrowing it.")
    else:
        lines.append("May not be delegated further.")
    lines.append("Allowed tools:")
    for name in w.tools:
        lines.append(f"  - {name} ({_calls(w.tool_budget(name))})")
        constraints = w.constraints_for(name)
        if not constraints:
            lines.append("      any arguments")
        for layer, constraint in constraints:
            origin = "" if layer == 0 else f" (added by delegation {layer})"
            lines.append(f"      {constraint.describe()}{origin}")
    if len(w.layers) > 1:
        lines.append(f"Narrowed {len(w.layers) - 1} time(s) since it was issued.")
    return "\n".join(lines)
