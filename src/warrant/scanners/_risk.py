"""A tool's risk class from its MCP annotations, its name and its description."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from warrant.types import RiskClass

# MCP ToolAnnotations defaults (specification, "Tool annotations").
_DEFAULTS = {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": False,
             "openWorldHint": True}
_READ_VERBS = frozenset({"get", "list", "read", "search", "find", "describe", "view", "show"})
_DESTRUCTIVE = frozenset({
    "delete", "remove", "rm", "rmdir", "unlink", "drop", "destroy", "truncate", "purge", "wipe",
    "erase", "overwrite", "reset", "kill", "terminate", "revoke", "uninstall",
})
_WRITE = _DESTRUCTIVE | frozenset({
    "create", "update", "set", "write", "edit", "add", "insert", "put", "patch", "modify",
    "move", "rename", "upload", "commit", "push", "merge", "post", "send", "save", "apply",
    "assign", "close", "archive", "install", "publish", "invite", "share", "transfer",
})
_SENDING = frozenset({"send", "email", "mail", "post", "reply", "publish", "notify", "tweet",
                      "sms", "webhook", "upload", "share", "invite"})
_EXECUTION = frozenset({"exec", "execute", "eval", "evaluate", "run", "shell", "bash", "cmd",
                        "terminal", "subprocess", "repl", "python", "javascript", "powershell"})
_MONEY = frozenset({"pay", "payment", "payout", "transfer", "refund", "charge", "withdraw",
                    "withdrawal", "purchase", "buy", "wire"})
_NOT_MONEY = frozenset({"file", "files", "ownership", "repo", "repository", "issue", "domain"})
_EXECUTION_TEXT = re.compile(
    r"\b(?:execut(?:e|es|ing)|runs?|evaluat(?:e|es))\s+(?:arbitrary\s+|an?\s+|the\s+(?:given\s+)?)?"
    r"(?:(?:shell|bash|python|javascript|powershell)\b|(?:code|commands?|scripts?)\b)",
    re.IGNORECASE)
_MONEY_TEXT = re.compile(
    r"\b(?:transfer|send|move|pay|wire)s?\s+(?:the\s+)?(?:money|funds|payments?)\b",
    re.IGNORECASE)
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def risk_class_from_annotations(
    annotations: Mapping[str, Any] | None, *, name: str = "", description: str = ""
) -> RiskClass:
    """The risk class of a tool, from its MCP annotation hints, name and description.

    Annotations are untrusted hints: a malicious or careless server can claim
    `readOnlyHint` for a tool that deletes things. This function is a default,
    never a guarantee; the gateway's configuration overrides it per tool, and a
    name or description that says more than the hints always wins. The rules,
    in order:

    1. A hint counts only when it is a JSON boolean; anything else is absent.
       Absent hints take the MCP defaults: `readOnlyHint` false,
       `destructiveHint` true, `idempotentHint` false, `openWorldHint` true
       (`idempotentHint` does not affect the class).
    2. Names are split into words (`get_issue`, `getIssue`, `github.get-issue`);
       the verb is the first word of the last `.`/`/` segment. A name is
       *read-like* when its verb is get, list, read, search, find, describe,
       view or show and no other word is a write verb (create, update, delete...).
    3. A name that is not read-like and has a word such as exec, execute, run,
       eval, shell or bash, or a description saying it executes code, commands,
       scripts, shell, Python or JavaScript, is `code-execution`; one with pay,
       transfer, refund, charge, withdraw, purchase (not "transfer file" or
       "transfer ownership"), or a description saying it moves money, is
       `money-movement`. Annotations cannot express
       these classes, so this step comes first.
    4. With none of the four hints present (no annotations, `{}`, only a
       `title`): read-like names are `read-only`; names with a destructive verb
       (delete, remove, drop, overwrite, reset...) are `destructive`; names with
       a sending word (send, email, post, publish, notify, upload...) are
       `external-communication`; everything else is `write`.
    5. With hints: `readOnlyHint` true gives `read-only`, unless the name has a
       write verb: a claim the name contradicts is dropped and rule 4 decides.
       Otherwise `destructiveHint` (true by default) gives `destructive`, else
       `openWorldHint` (true by default) gives `external-communication`, else
       `write`. A tool both destructive and open-world is `destructive`: one
       class per tool, and an irreversible change is the larger risk to name.
    """
    words = _words(name)
    read_like = bool(words) and words[0] in _READ_VERBS and not _WRITE & set(words[1:])
    if not read_like and (escalated := _beyond_hints(set(words), description)):
        return escalated
    hints = {k: v for k, v in (annotations or {}).items() if k in _DEFAULTS and isinstance(v, bool)}
    value = {**_DEFAULTS, **hints}
    if not hints or (value["readOnlyHint"] and _WRITE & set(words)):
        return _from_name(set(words), read_like=read_like)
    if value["readOnlyHint"]:
        return RiskClass.READ_ONLY
    if value["destructiveHint"]:
        return RiskClass.DESTRUCTIVE
    if value["openWorldHint"]:
        return RiskClass.EXTERNAL_COMMUNICATION
    return RiskClass.WRITE


def _beyond_hints(words: set[str], description: str) -> RiskClass | None:
    """Code execution and money movement: classes the annotation hints cannot express."""
    if _EXECUTION & words or _EXECUTION_TEXT.search(description):
        return RiskClass.CODE_EXECUTION
    if (_MONEY & words and not _NOT_MONEY & words) or _MONEY_TEXT.search(description):
        return RiskClass.MONEY_MOVEMENT
    return None


def _from_name(words: set[str], *, read_like: bool) -> RiskClass:
    """The class of a tool without usable hints, from the words of its name."""
    if read_like:
        return RiskClass.READ_ONLY
    if _DESTRUCTIVE & words:
        return RiskClass.DESTRUCTIVE
    if _SENDING & words:
        return RiskClass.EXTERNAL_COMMUNICATION
    return RiskClass.WRITE


def _words(name: str) -> list[str]:
    """Lower-case words of the last segment of a tool name (`srv.getIssue` -> get, issue)."""
    segment = re.split(r"[./]", name)[-1] if name else ""
    return [w.lower() for w in _WORDS.findall(segment)]
