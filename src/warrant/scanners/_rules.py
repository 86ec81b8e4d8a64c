"""The poisoning rules. Each is a function `(view, context) -> Iterator[Finding]`.

Adding a rule is adding a function here and listing it in `RULES`; codes are
stable (`poisoning.<name>`) because quarantine events and policy refer to them.
A rule sees one `TextView` of one field at a time and yields at most a few
findings for it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from . import _patterns as pat
from ._findings import Finding, Severity
from ._text import (
    MAX_SCAN_CHARS,
    TAG_FIRST,
    TAG_LAST,
    TextView,
    excerpt,
    invisible_positions,
    is_invisible,
    scripts,
    skeleton,
)

#: Descriptions (and any other string) longer than this are reported as oversized.
MAX_DESCRIPTION_CHARS = 4_000
_NAME_KINDS = frozenset({"name", "parameter-name"})
_SEPARATED = re.compile(r"[._\-/]|[a-z][A-Z]")


@dataclass(frozen=True, slots=True)
class ScanContext:
    """What a rule knows beyond the field: the tool's own name and its neighbours."""

    tool_name: str
    #: Names of other servers' tools, without this tool's own name.
    other_tools: frozenset[str]


Rule = Callable[[TextView, ScanContext], Iterator[Finding]]


def invisible_characters(view: TextView, ctx: ScanContext) -> Iterator[Finding]:
    """Zero-width, bidi-control and tag characters: text a person cannot see."""
    if view.encoding:
        return
    positions = invisible_positions(view.raw)
    if not positions:
        return
    tags = sum(TAG_FIRST <= ord(view.raw[i]) <= TAG_LAST for i in positions)
    # Tag characters carry hidden ASCII; alone, zero-width characters are only suspicious.
    severity = Severity.HIGH if tags else Severity.MEDIUM
    detail = f", {tags} of them Unicode tag characters carrying hidden text" if tags else ""
    yield Finding("poisoning.invisible-characters", severity,
                  f"{len(positions)} invisible character(s){detail}", view.where,
                  excerpt(view.raw, positions[0], positions[0] + 1))


def hidden_instruction(view: TextView, ctx: ScanContext) -> Iterator[Finding]:
    """Text addressed to the model: instruction tags, overrides, concealment, urgency.

    One finding per kind of instruction found, so a reviewer sees each.
    """
    for label, severity, pattern in pat.HIDDEN_INSTRUCTIONS:
        if match := pattern.search(view.scan):
            yield Finding("poisoning.hidden-instruction", severity, f"hidden instruction: {label}",
                          view.where, excerpt(view.display, match.start(), match.end()))


def exfiltration(view: TextView, ctx: ScanContext) -> Iterator[Finding]:
    """A sentence telling the model to move sensitive data to a URL, address or parameter."""
    for start, sentence in _sentences(view.scan):
        if label := _exfiltration_in(sentence, ctx):
            shown = view.display[start : start + len(sentence)]
            yield Finding("poisoning.exfiltration", Severity.CRITICAL,
                          f"exfiltration instruction: {label}", view.where, excerpt(shown))
            return


def secret_reference(view: TextView, ctx: ScanContext) -> Iterator[Finding]:
    """Paths and names of secrets (SSH keys, MCP client configs, AWS keys, `.env`)."""
    for label, pattern in pat.SECRET_REFERENCES:
        if match := pattern.search(view.scan):
            yield Finding("poisoning.secret-reference", Severity.HIGH,
                          f"reference to secrets: {label}", view.where,
                          excerpt(view.display, match.start(), match.end()))
            return


def cross_tool(view: TextView, ctx: ScanContext) -> Iterator[Finding]:
    """Instructions about another server's tool (shadowing: changing how it is used)."""
    for tool in sorted(ctx.other_tools):
        mention = _mention(tool)
        for start, sentence in _sentences(view.scan):
            match = mention.search(sentence)
            if match and pat.DIRECTIVE.search(sentence):
                shown = view.display[start : start + len(sentence)]
                yield Finding("poisoning.cross-tool", Severity.HIGH,
                              f"instructs how another tool, `{tool}`, must be used", view.where,
                              excerpt(shown, match.start(), match.end()))
                break


def confusable_name(view: TextView, ctx: ScanContext) -> Iterator[Finding]:
    """Tool and parameter names in mixed scripts, compatibility forms or look-alike letters."""
    if view.kind not in _NAME_KINDS or view.encoding:
        return
    found = scripts(view.display)
    mapped = skeleton(view.display)
    if view.display != "".join(c for c in view.raw[:MAX_SCAN_CHARS] if not is_invisible(c)):
        reason = "changes under Unicode normalisation (compatibility characters)"
    elif mapped != view.display and mapped.lower() in {t.lower() for t in ctx.other_tools}:
        reason = f"imitates the tool `{mapped}` with look-alike letters"
    elif len(found) > 1:
        reason = f"mixes scripts ({', '.join(sorted(found))})"
    elif mapped != view.display and mapped.isascii():
        reason = "is written entirely in letters that imitate Latin ones"
    else:
        return
    yield Finding("poisoning.confusable-name", Severity.HIGH, f"{view.kind} {reason}",
                  view.where, excerpt(view.raw, ascii_only=True))


def encoded_payload(view: TextView, ctx: ScanContext) -> Iterator[Finding]:
    """Instructions or secret references that appear only once hidden text is decoded."""
    if not view.encoding:
        return
    added = instruction_labels(view.scan, ctx) - instruction_labels(view.parent_scan, ctx)
    if added:
        yield Finding("poisoning.encoded-payload", Severity.CRITICAL,
                      f"{view.encoding}-encoded text contains: {', '.join(sorted(added))}",
                      view.where, excerpt(view.display))


def oversized(view: TextView, ctx: ScanContext) -> Iterator[Finding]:
    """Very long text: room to bury instructions far from what a reviewer reads."""
    if not view.encoding and len(view.raw) > MAX_DESCRIPTION_CHARS:
        yield Finding("poisoning.oversized", Severity.MEDIUM,
                      f"{view.kind} is {len(view.raw)} characters long "
                      f"(limit {MAX_DESCRIPTION_CHARS})", view.where, excerpt(view.raw, 0, 60))


RULES: tuple[Rule, ...] = (
    invisible_characters, hidden_instruction, exfiltration, secret_reference, cross_tool,
    confusable_name, encoded_payload, oversized,
)


def instruction_labels(text: str, ctx: ScanContext) -> set[str]:
    """Labels of every instruction, exfiltration or secret pattern that matches `text`."""
    labels = {label for label, _, p in pat.HIDDEN_INSTRUCTIONS if p.search(text)}
    labels |= {label for label, p in pat.SECRET_REFERENCES if p.search(text)}
    labels |= {f"exfiltration ({lab})" for _, s in _sentences(text)
               if (lab := _exfiltration_in(s, ctx))}
    return labels


def _exfiltration_in(sentence: str, ctx: ScanContext) -> str:
    if not pat.EXFIL_VERB.search(sentence):
        return ""
    remote = bool(pat.REMOTE_SINK.search(sentence)) or any(
        _mention(t).search(sentence) for t in ctx.other_tools)
    sink = remote or bool(pat.SINK.search(sentence))
    secret = next((label for label, p in pat.SECRET_REFERENCES if p.search(sentence)), "")
    if secret and sink:
        return f"{secret} to another destination"
    if pat.CONTEXT_DATA.search(sentence) and sink:
        return "the model's context to another destination"
    if pat.REMOTE_SENSITIVE.search(sentence) and remote:
        return "credentials or user data to a remote destination"
    if pat.COVERT_SEND.search(sentence) and pat.REMOTE_SINK.search(sentence):
        return "covert copy to a remote address"
    return ""


def _sentences(text: str) -> Iterator[tuple[int, str]]:
    start = 0
    for boundary in pat.SENTENCE_END.finditer(text):
        yield start, text[start : boundary.start()]
        start = boundary.end()
    yield start, text[start:]


@functools.lru_cache(maxsize=1024)
def _mention(tool: str) -> re.Pattern[str]:
    """How a tool name is mentioned; a plain English word (`add`) only in quotes or as a tool."""
    name = re.escape(tool)
    if _SEPARATED.search(tool) or len(tool) > 12:
        return re.compile(rf"(?<![A-Za-z0-9]){name}(?![A-Za-z0-9])", re.IGNORECASE)
    return re.compile(rf"[`'\"]{name}[`'\"]|\b{name}\s+(?:tool|function)\b", re.IGNORECASE)
