"""Render an `Assessment`: JSON (versioned), a terminal table, Markdown and HTML.

HTML is built with `html.escape` over every value (evidence quotes file paths,
policy ids and declarations a person typed), so no template engine is needed.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from ._assess import Assessed, Assessment
from ._catalogue import DOMAINS, Tier

REPORT_VERSION = 1
_MARK = {"met": "✔", "declared": "◆", "not-met": "✘", "not-applicable": "-"}


def tier_label(tier: Tier | None) -> str:
    return tier.label if tier is not None else "below foundation"


def _control_json(a: Assessed) -> dict[str, Any]:
    c, r = a.control, a.result
    return {"id": c.id, "domain": c.domain, "tier": c.tier.label, "kind": c.kind,
            "severity": c.severity, "title": c.title, "framework": c.framework,
            "status": r.status.value, "evidence": r.evidence, "reason": r.reason or None,
            "remedy": c.remedy, "counts": a.counts, "evidence_possible": c.evidence_possible}


def to_json(a: Assessment) -> dict[str, Any]:
    """The versioned JSON form (`warrant assess --json`)."""
    return {
        "version": REPORT_VERSION, "home": a.evidence.home,
        "assessed_at": dt.datetime.fromtimestamp(a.evidence.collected_at, dt.UTC).isoformat(),
        "overall": a.overall.label if a.overall else None,
        "target": a.target.label if a.target else None,
        "domains": [{"domain": d.domain, "title": d.title,
                     "tier": d.tier.label if d.tier else None,
                     "satisfied": d.satisfied, "counted": d.counted} for d in a.domains],
        "gaps": [{"priority": i + 1, **_control_json(g)} for i, g in enumerate(a.gaps)],
        "controls": [_control_json(c) for c in a.controls],
        "sources": dict(a.evidence.sources),
    }


def _gap_line(i: int, g: Assessed) -> str:
    return (f"{i:>3}. [{g.control.tier.label}/{g.control.severity}] {g.control.id}: "
            f"{g.result.reason}\n       fix: {g.control.remedy}")


def to_text(a: Assessment, *, verbose: bool = False) -> str:
    """The terminal table: tier per domain, overall, then the prioritised gaps."""
    width = max(len(t) for t in DOMAINS.values())
    lines = [f"{'domain':<{width}}  {'tier':<17}  controls satisfied"]
    for d in a.domains:
        lines.append(f"{d.title:<{width}}  {tier_label(d.tier):<17}  {d.satisfied}/{d.counted}")
    lines.append(f"{'overall':<{width}}  {tier_label(a.overall)}")
    if verbose:
        lines.append("")
        for c in a.controls:
            lines.append(f"{_MARK[c.result.status.value]} {c.control.id} "
                         f"({c.control.tier.label}): {c.result.status.value}")
            lines.append(f"    evidence: {c.result.evidence}")
    scope = f"to reach {a.target.label}" if a.target else "to reach each domain's next tier"
    lines += ["", f"gaps {scope} ({len(a.gaps)}):" if a.gaps else f"no gaps {scope}"]
    lines += [_gap_line(i, g) for i, g in enumerate(a.gaps, 1)]
    lines.append("")
    lines.append("organisational controls are declared, not verified; friction-only "
                 "controls never count")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(a: Assessment) -> str:
    data = to_json(a)
    out = [f"# Warrant maturity assessment — {tier_label(a.overall)}", "",
           f"Domain home `{data['home']}`, assessed {data['assessed_at']}.", "",
           "| domain | tier | controls satisfied |", "|---|---|---|"]
    out += [f"| {d.title} | {tier_label(d.tier)} | {d.satisfied}/{d.counted} |"
            for d in a.domains]
    out += ["", f"**Overall: {tier_label(a.overall)}** (the lowest domain tier).", "",
            "## Gaps, in priority order", ""]
    out += [f"{i}. **{g.control.id}** ({g.control.tier.label}, {g.control.severity}): "
            f"{_md(g.result.reason)}. *Fix:* {_md(g.control.remedy)}"
            for i, g in enumerate(a.gaps, 1)] or ["None."]
    out += ["", "## Controls", "", "| control | tier | kind | status | evidence |",
            "|---|---|---|---|---|"]
    out += [f"| {c.control.id} | {c.control.tier.label} | {c.control.kind}"
            f"{' (friction only)' if not c.counts else ''} | {c.result.status.value} | "
            f"{_md(c.result.evidence)}{' — ' + _md(c.result.reason) if c.result.reason else ''} |"
            for c in a.controls]
    out += ["", "Organisational controls are reported as declared, not verified. This report "
            "is evidence gathered from the running system, not a claim of compliance.", ""]
    return "\n".join(out)


def to_html(a: Assessment) -> str:
    e = html.escape
    data = to_json(a)
    rows = "".join(f"<tr><td>{e(d.title)}</td><td>{e(tier_label(d.tier))}</td>"
                   f"<td>{d.satisfied}/{d.counted}</td></tr>" for d in a.domains)
    gaps = "".join(f"<li><strong>{e(g.control.id)}</strong> ({e(g.control.tier.label)}, "
                   f"{e(g.control.severity)}): {e(g.result.reason)}<br>"
                   f"<em>Fix:</em> {e(g.control.remedy)}</li>" for g in a.gaps) or "<li>None</li>"
    controls = "".join(
        f"<tr class=\"{e(c.result.status.value)}\"><td>{e(c.control.id)}</td>"
        f"<td>{e(c.control.tier.label)}</td><td>{e(c.control.kind)}</td>"
        f"<td>{e(c.result.status.value)}</td><td>{e(c.result.evidence)}</td>"
        f"<td>{e(c.result.reason)}</td></tr>" for c in a.controls)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Warrant maturity assessment</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em;vertical-align:top}}
tr.not-met td:nth-child(4){{color:#b00}}tr.met td:nth-child(4){{color:#070}}</style></head>
<body><h1>Warrant maturity assessment: {e(tier_label(a.overall))}</h1>
<p>Domain home <code>{e(str(data['home']))}</code>, assessed {e(str(data['assessed_at']))}.</p>
<table><tr><th>domain</th><th>tier</th><th>controls satisfied</th></tr>{rows}</table>
<h2>Gaps, in priority order</h2><ol>{gaps}</ol>
<h2>Controls</h2><table><tr><th>control</th><th>tier</th><th>kind</th><th>status</th>
<th>evidence</th><th>reason</th></tr>{controls}</table>
<p>Organisational controls are reported as declared, not verified. This report is evidence
gathered from the running system, not a claim of compliance.</p></body></html>
"""
