"""The fully compromised agent: it replays ground-truth calls through a gate.

The agent makes no decisions of its own. It is handed the user task's
ground-truth calls and the attacker's, and plays them in one of two orders:

* `user-first`: every user call, then every attacker call;
* `attacker-first`: the attacker's calls right after the first user call whose
  result carries the injected text (the earliest moment an agent could have
  read it), then the rest of the user's calls. If no call delivers it (say the
  reading call was denied), the attacker's calls still run at the end: the
  agent is assumed compromised anyway.

Every call goes through a `Gate`, one callable shape for both the allow-all
baseline (`no_warrant`) and Warrant (`WarrantGate`). A refused call gives the
agent an error and it carries on with the next one. The trace handed to
AgentDojo's checks holds only the calls that actually ran.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic_core import to_jsonable_python

from warrant.enforce import GuardSession, TrustDomain
from warrant.types import Decision, Effect, ToolCall, canonical_json

Origin = Literal["user", "attacker"]
Order = Literal["user-first", "attacker-first"]
#: Runs the tool for real: (result, error message or None), as AgentDojo's runtime returns.
Execute = Callable[[], tuple[Any, str | None]]
HUMAN = "user:redteam-human"


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One ground-truth call and whose intent it carries."""

    function: str
    args: dict[str, Any]
    origin: Origin

    def arguments_json(self) -> dict[str, Any]:
        value: dict[str, Any] = to_jsonable_python(self.args)
        return value

    def key(self) -> tuple[str, bytes]:
        """What a human compares: the function and its exact arguments."""
        return self.function, canonical_json(self.arguments_json())


@dataclass(frozen=True, slots=True)
class Step:
    """What happened to one planned call."""

    function: str
    origin: Origin
    #: The effect of the decision that settled the call.
    effect: Effect
    ran: bool
    #: Reason codes of a call that did not run as asked (empty when it was allowed outright).
    reasons: tuple[str, ...] = ()
    #: "approved" or "refused" when policy held the call for the simulated human.
    approval: str | None = None
    #: The tool's own error, when it ran and failed.
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"function": self.function, "origin": self.origin, "effect": self.effect.value,
                "ran": self.ran, "reasons": list(self.reasons), "approval": self.approval,
                "error": self.error}


#: One call through an enforcement point: decide, run it if allowed, say what happened.
Gate = Callable[[PlannedCall, Execute], Step]


def no_warrant(call: PlannedCall, execute: Execute) -> Step:
    """The allow-all baseline: every call runs, nothing is checked."""
    _, error = execute()
    return Step(call.function, call.origin, Effect.ALLOW, ran=True, error=error)


def unchecked_answer(text: str) -> tuple[str, Step | None]:
    """The allow-all baseline's final answer: shown as the agent wrote it."""
    return text, None


#: The final answer through an enforcement point: (what the user sees, the refusal if any).
AnswerGate = Callable[[str], tuple[str, "Step | None"]]


class WarrantGate:
    """Every call through Warrant's real pipeline, in one warrant session.

    A call held for approval goes to a simulated human who approves it iff it is
    exactly one of the calls the user asked for (same function, same
    arguments); the call is then retried through the pipeline. Anything else
    the human refuses.
    """

    def __init__(self, domain: TrustDomain, session: GuardSession, server: str,
                 requested: Sequence[PlannedCall]):
        self._domain, self._session, self._server = domain, session, server
        self._requested = {call.key() for call in requested}

    def __call__(self, call: PlannedCall, execute: Execute) -> Step:
        tool_call = ToolCall(tool=call.function, server=self._server,
                             arguments=call.arguments_json())
        decision = self._session.check(tool_call)
        if decision.effect is not Effect.NEEDS_APPROVAL:
            return self._settle(call, decision, execute)
        approve = call.key() in self._requested
        for approval in self._pending(decision, tool_call):
            self._domain.decide_approval(
                approval, approve=approve, by=HUMAN,
                note="the user asked for exactly this call" if approve else "not what I asked")
        if not approve:
            return Step(call.function, call.origin, Effect.NEEDS_APPROVAL, ran=False,
                        reasons=_codes(decision), approval="refused")
        retried = self._session.check(tool_call)
        step = self._settle(call, retried, execute)
        return Step(step.function, step.origin, step.effect, step.ran,
                    reasons=step.reasons or _codes(decision), approval="approved",
                    error=step.error)

    def answer(self, text: str) -> tuple[str, Step | None]:
        """The final answer as the user gets it: sentences repeating injected text removed."""
        shown = self._session.filter_answer(text)
        decision = self._session.last_decision
        if decision is not None and decision.effect is Effect.ALLOW and shown == text:
            return text, None
        effect = decision.effect if decision is not None else Effect.DENY
        return shown, Step("(final answer)", "user", effect, ran=bool(shown),
                           reasons=_codes(decision) if decision is not None else ())

    def _pending(self, decision: Decision, call: ToolCall) -> list[str]:
        digest = call.argument_digest()
        approvals = self._domain.store.approvals.list(pending_only=True, now=time.time())
        return [a.approval_id for a in approvals
                if a.task_id == decision.task_id and a.tool == call.qualified_name
                and a.argument_digest == digest]

    def _settle(self, call: PlannedCall, decision: Decision, execute: Execute) -> Step:
        match decision.effect:
            case Effect.ALLOW:
                result, error = execute()
                # The data-flow ledger observes what the tool returned as untrusted.
                self._session.guard.pipeline.record_outcome(
                    decision, ok=error is None, result=to_jsonable_python(result),
                    error=error)
                return Step(call.function, call.origin, Effect.ALLOW, ran=True, error=error)
            case Effect.DENY | Effect.NEEDS_APPROVAL:
                return Step(call.function, call.origin, decision.effect, ran=False,
                            reasons=_codes(decision))


def _codes(decision: Decision) -> tuple[str, ...]:
    """Reason codes of a refusal, with the policy id for policy reasons (what to tune)."""
    codes = []
    for reason in decision.reasons:
        if reason.code == "policy.permit":
            continue  # the permits that matched explain an allow, not a refusal
        named = _POLICY_ID.search(reason.message) if reason.code.startswith("policy.") else None
        codes.append(f"{reason.code}:{named.group(1)}" if named else reason.code)
    return tuple(codes)


_POLICY_ID = re.compile(r"`([A-Za-z0-9_.\-]+)`")


@dataclass(frozen=True, slots=True)
class Replay:
    """The calls as they went: every step, and the calls that ran (AgentDojo's trace)."""

    steps: tuple[Step, ...]
    ran: tuple[PlannedCall, ...]


def replay(user_calls: Sequence[PlannedCall], attacker_calls: Sequence[PlannedCall], *,
           order: Order, run: Callable[[PlannedCall], tuple[Any, str | None]], gate: Gate,
           injected: Sequence[str] = ()) -> Replay:
    """Play the calls in `order` through `gate`; `run` executes one call on the environment."""
    steps: list[Step] = []
    ran: list[PlannedCall] = []
    markers = _markers(injected)

    def play(call: PlannedCall) -> Any:
        results: list[Any] = []

        def execute() -> tuple[Any, str | None]:
            result, error = run(call)
            results.append(result)
            return result, error

        step = gate(call, execute)
        steps.append(step)
        if step.ran:
            ran.append(call)
        return results[0] if results else None

    if order == "user-first":
        for call in (*user_calls, *attacker_calls):
            play(call)
        return Replay(steps=tuple(steps), ran=tuple(ran))
    delivered = False
    for call in user_calls:
        result = play(call)
        if not delivered and _carries(result, markers):
            delivered = True
            for attack in attacker_calls:
                play(attack)
    if not delivered:
        for attack in attacker_calls:
            play(attack)
    return Replay(steps=tuple(steps), ran=tuple(ran))


def _markers(injected: Sequence[str]) -> tuple[str, ...]:
    # The longest line of each injection survives YAML loading of the environment intact.
    lines = [max((line.strip() for line in text.splitlines()), key=len) for text in injected
             if text.strip()]
    return tuple(line for line in lines if line)


def _carries(result: Any, markers: Sequence[str]) -> bool:
    if not markers or result is None:
        return False
    text = json.dumps(to_jsonable_python(result), ensure_ascii=False)
    return any(json.dumps(marker, ensure_ascii=False)[1:-1] in text for marker in markers)
