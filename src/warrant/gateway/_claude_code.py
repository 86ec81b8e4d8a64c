"""`warrant hook claude-code`: Claude Code's PreToolUse / PostToolUse hook protocol.

Claude Code runs the hook before each tool use with a JSON object on stdin
(`hook_event_name`, `tool_name`, `tool_input`, `tool_use_id`, `session_id`, …).
For `PreToolUse` the hook answers on stdout with
`{"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision":
"allow" | "deny" | "ask", "permissionDecisionReason": "..."}}` and exit status
0; for `PostToolUse` Warrant records the outcome and answers `{}`.

Tool names map onto Warrant's: built-in tools keep their names (`Bash`,
`Edit`, `WebFetch`, …); MCP tools arrive as `mcp__SERVER__TOOL` and become the
server's tool `SERVER/TOOL`. The agent's credential, warrant and key come from
the environment exactly as for the gateway (see `_auth`).

INVARIANT: anything that goes wrong — unreadable input, no trust domain, a
rejected credential, a crash — denies, with exit status 2 and the reason on
stderr, which Claude Code treats as a block.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warrant.enforce import Guard, GuardSession, Pipeline, TrustDomain, session_ledgers
from warrant.errors import WarrantError
from warrant.types import Decision, Effect, RiskClass, ToolCall, ToolInfo, canonical_json

from ._auth import open_session

#: Risk classes of Claude Code's built-in tools (policy decides on these).
BUILTIN_TOOLS: Mapping[str, RiskClass] = {
    "Read": RiskClass.READ_ONLY, "Glob": RiskClass.READ_ONLY, "Grep": RiskClass.READ_ONLY,
    "LS": RiskClass.READ_ONLY, "NotebookRead": RiskClass.READ_ONLY,
    "TodoWrite": RiskClass.READ_ONLY,
    "Edit": RiskClass.WRITE, "MultiEdit": RiskClass.WRITE, "Write": RiskClass.WRITE,
    "NotebookEdit": RiskClass.WRITE, "Task": RiskClass.WRITE,
    "Bash": RiskClass.CODE_EXECUTION, "BashOutput": RiskClass.READ_ONLY,
    "KillShell": RiskClass.WRITE,
    "WebFetch": RiskClass.EXTERNAL_COMMUNICATION, "WebSearch": RiskClass.EXTERNAL_COMMUNICATION,
}
MAX_INPUT_BYTES = 1_000_000
PENDING_DIR = "hooks/claude-code"


class HookInputError(ValueError):
    """The hook's stdin is not a Claude Code hook payload."""


@dataclass(frozen=True, slots=True)
class HookAnswer:
    """What to print and which exit status to use."""

    stdout: str
    stderr: str
    exit_code: int


def tool_call(payload: Mapping[str, Any]) -> ToolCall:
    name, arguments = payload.get("tool_name"), payload.get("tool_input", {})
    if not isinstance(name, str) or not name:
        raise HookInputError("`tool_name` is missing")
    if not isinstance(arguments, dict):
        raise HookInputError("`tool_input` is not an object")
    if name.startswith("mcp__"):
        server, sep, tool = name[len("mcp__"):].partition("__")
        if not sep or not server or not tool:
            raise HookInputError(f"MCP tool name `{name}` is not mcp__SERVER__TOOL")
        return ToolCall(tool=tool, server=server, arguments=arguments)
    return ToolCall(tool=name, arguments=arguments)


def parse_payload(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_INPUT_BYTES:
        raise HookInputError(f"hook input is larger than {MAX_INPUT_BYTES} bytes")
    try:
        payload = json.loads(raw)
    except RecursionError as exc:
        raise HookInputError("hook input is nested too deeply") from exc
    except ValueError as exc:  # bad JSON or UTF-8, an integer too long to convert
        raise HookInputError(f"hook input is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise HookInputError("hook input is not a JSON object")
    return payload


def blocked(reason: str) -> HookAnswer:
    """Fail closed: exit status 2 blocks the tool use; stderr tells Claude why."""
    return HookAnswer("", f"Warrant blocked this tool use: {reason}\n", 2)


def register_builtin_tools(guard: Guard) -> None:
    """Put Claude Code's built-in tools in the catalogue once (their risk classes)."""
    store = guard.domain.store
    for name, risk in BUILTIN_TOOLS.items():
        if store.get_tool(name) is None:
            guard.register_tool(ToolInfo(name=name, risk_class=risk,
                                         description="Claude Code built-in tool"))


def pre_tool_use(guard: Guard, session: GuardSession, payload: Mapping[str, Any]) -> HookAnswer:
    call = tool_call(payload)
    decision = session.check(call)
    reasons = "; ".join(r.message for r in decision.reasons)
    verdict = {Effect.ALLOW: "allow", Effect.DENY: "deny", Effect.NEEDS_APPROVAL: "ask"}
    if decision.effect is Effect.ALLOW:
        _remember(guard, payload, decision)
    output = {"hookSpecificOutput": {
        "hookEventName": "PreToolUse",
        "permissionDecision": verdict[decision.effect],
        "permissionDecisionReason": f"Warrant: {reasons} (decision {decision.decision_id})",
    }}
    return HookAnswer(json.dumps(output), "", 0)


def post_tool_use(guard: Guard, payload: Mapping[str, Any]) -> HookAnswer:
    decision = _recall(guard, payload)
    if decision is not None:
        response = payload.get("tool_response")
        failed = isinstance(response, dict) and bool(response.get("is_error") or
                                                     response.get("error"))
        guard.pipeline.record_outcome(decision, ok=not failed, result=response,
                                      error="tool reported an error" if failed else None)
    return HookAnswer("{}", "", 0)


def run_hook(guard: Guard, raw: bytes, env: Mapping[str, str] | None = None) -> HookAnswer:
    """Answer one hook invocation. Never raises: every failure blocks."""
    try:
        payload = parse_payload(raw)
        event = payload.get("hook_event_name")
        if event == "PostToolUse":
            return post_tool_use(guard, payload)
        if event != "PreToolUse":
            return blocked(f"unsupported hook event {event!r}")
        register_builtin_tools(guard)
        session = open_session(guard, os.environ if env is None else env)
        if session is None:
            return blocked("credential rejected")
        return pre_tool_use(guard, session, payload)
    except (HookInputError, WarrantError) as exc:  # e.g. the state store cannot be written
        return blocked(exc.message if isinstance(exc, WarrantError) else str(exc))
    except Exception as exc:
        return blocked(f"internal error: {type(exc).__name__}")


def answer_hook(home: Path, raw: bytes, env: Mapping[str, str] | None = None) -> HookAnswer:
    """Open the trust domain in `home`, answer one hook invocation, close it. Never raises."""
    try:
        domain = TrustDomain.open(home)
        # The hook sees calls, never results: data flow is traced against the
        # user's instruction alone (destinations it does not give are held).
        guard = Guard(domain, Pipeline(domain, ledgers=session_ledgers(
            domain, observes_results=False)))
    except WarrantError as exc:
        return blocked(exc.message)
    except Exception as exc:  # any other exit status than 2 lets Claude Code run the tool
        return blocked(f"internal error: {type(exc).__name__}")
    answer = run_hook(guard, raw, env)
    try:
        guard.close()
    except WarrantError as exc:  # e.g. the audit log no longer verifies: block
        return blocked(exc.message)
    except Exception as exc:  # e.g. the checkpoint cannot be read or written: block
        return blocked(f"internal error: {type(exc).__name__}")
    return answer


# An allowed PreToolUse and its PostToolUse are separate processes: the decision
# waits in a small file keyed by Claude Code's tool_use_id.

def _pending_path(guard: Guard, payload: Mapping[str, Any]) -> Path | None:
    tool_use_id = payload.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id.replace("_", "").isalnum():
        return None
    return guard.domain.home / PENDING_DIR / f"{tool_use_id}.json"


def _remember(guard: Guard, payload: Mapping[str, Any], decision: Decision) -> None:
    path = _pending_path(guard, payload)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(canonical_json({**decision.to_json(), "saved_at": time.time()}))


def _recall(guard: Guard, payload: Mapping[str, Any]) -> Decision | None:
    path = _pending_path(guard, payload)
    if path is None or not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    path.unlink(missing_ok=True)
    return Decision(effect=Effect(data["effect"]), reasons=(), decision_id=data["decision_id"],
                    policy_revision=data["policy_revision"], latency_us=0.0,
                    tool=data["tool"], agent=data["agent"], task_id=data["task_id"],
                    principal_chain=tuple(data["principal_chain"]))
