"""Markdown and HTML renderings of a compliance report (its JSON is the source of truth).

The report is first laid out as a list of blocks (heading, paragraph, list,
table, code); each format renders the same blocks, so the two never disagree.
HTML is escaped with the standard library and carries no scripts.
"""

from __future__ import annotations

import html
import json
from typing import Any

Block = tuple[str, Any]

_ORDER = ("evidence-present", "partial-evidence", "no-evidence-yet", "evidence-failed")
_STATUS_LABELS = {"ok": "ok", "empty": "no activity yet", "failed": "FAILED"}


def _compact(value: Any, limit: int = 240) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _evidence_blocks(kind: str, item: dict[str, Any]) -> list[Block]:
    data: dict[str, Any] = item["data"]
    blocks: list[Block] = [("h3", f"{kind}: {_STATUS_LABELS.get(item['status'], item['status'])}"),
                           ("p", item["summary"])]
    if kind == "audit-checkpoint" and data.get("note"):
        blocks.append(("code", data["note"]))
    if kind == "audit-sample" and data.get("records"):
        rows = [[str(r["seq"]), r["record"]["kind"], r["record"]["time"],
                 r["record"].get("agent") or "-", r["record"].get("tool") or "-",
                 r["record"].get("effect") or (r["record"].get("outcome") or {}).get("status")
                 or "-", "verified" if r["verified"] else "DOES NOT VERIFY"]
                for r in data["records"]]
        blocks.append(("table", (["seq", "kind", "time", "agent", "tool", "effect / outcome",
                                  "inclusion proof"], rows)))
    if kind == "incidents" and data.get("recent"):
        rows = [[i["incident_id"], i["severity"], i["status"], i["opened_at"],
                 "-" if i["contain_seconds"] is None else f"{i['contain_seconds']}s", i["title"]]
                for i in data["recent"]]
        blocks.append(("table", (["incident", "severity", "status", "opened",
                                  "detection to containment", "title"], rows)))
    facts = [f"{k}: {_compact(v)}" for k, v in sorted(data.items())
             if k not in ("note", "records", "recent") and v is not None]
    if facts:
        blocks.append(("ul", facts))
    return blocks


def layout(report: dict[str, Any]) -> list[Block]:
    """The report as blocks, statement first."""
    regime = report["regime"]
    blocks: list[Block] = [
        ("statement", report["statement"]),
        ("h1", f"Compliance evidence report: {regime['name']}"),
        ("ul", [f"Trust domain: {report['domain']}", f"Generated: {report['generated_at']}",
                f"Regime document: {regime['document']}"
                + (f" ({regime['url']})" if regime.get("url") else ""),
                f"Scope: {regime['scope']}",
                f"Signed by the domain key {report['signing_key']}; check with "
                "`warrant compliance verify DIR`."]),
        ("h2", "Summary"),
        ("table", (["status", "requirements"],
                   [[s, str(report["summary"]["by_status"][s])] for s in _ORDER
                    if s in report["summary"]["by_status"]])),
        ("p", "`evidence-present`: every kind of evidence listed for the requirement was "
              "gathered and checks. It says the supporting control runs here, not that the "
              "requirement is met."),
        ("h2", "Requirements"),
        ("table", (["requirement", "title", "Warrant control", "evidence", "status", "source"],
                   [[r["requirement"], r["title"], r["control"], ", ".join(r["evidence"]),
                     r["status"], r["source"]] for r in report["requirements"]])),
        ("h2", "Evidence"),
    ]
    for kind, item in report["evidence"].items():
        blocks += _evidence_blocks(kind, item)
    return blocks


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any]) -> str:
    out: list[str] = []
    for kind, value in layout(report):
        match kind:
            case "h1" | "h2" | "h3":
                out.append(f"{'#' * int(kind[1])} {value}\n")
            case "statement":
                out.append(f"> **{value}**\n")
            case "p":
                out.append(f"{value}\n")
            case "ul":
                out.append("\n".join(f"- {item}" for item in value) + "\n")
            case "code":
                out.append(f"```\n{value.rstrip()}\n```\n")
            case "table":
                header, rows = value
                lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
                out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def render_html(report: dict[str, Any]) -> str:
    esc = html.escape
    body: list[str] = []
    for kind, value in layout(report):
        match kind:
            case "h1" | "h2" | "h3":
                body.append(f"<{kind}>{esc(value)}</{kind}>")
            case "statement":
                body.append(f'<p class="statement"><strong>{esc(value)}</strong></p>')
            case "p":
                body.append(f"<p>{esc(value)}</p>")
            case "ul":
                body.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in value) + "</ul>")
            case "code":
                body.append(f"<pre>{esc(value)}</pre>")
            case "table":
                header, rows = value
                head = "".join(f"<th>{esc(h)}</th>" for h in header)
                cells = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                                for row in rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
    title = esc(f"Compliance evidence report: {report['regime']['name']}")
    style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;"
             "padding:.3em .5em;vertical-align:top;text-align:left}"
             ".statement{border:2px solid #a00;padding:.8em}pre{background:#f4f4f4;padding:.8em}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}'
            f"</title><style>{style}</style></head><body>\n" + "\n".join(body)
            + "\n</body></html>\n")
