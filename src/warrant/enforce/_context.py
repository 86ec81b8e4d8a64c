"""What flows through the pipeline: the request, and the working state of one decision."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from warrant.flow import FlowTrace
from warrant.identity import Credential
from warrant.types import (
    AgentRecord,
    Effect,
    Reason,
    ToolCall,
    ToolInfo,
    digest_arguments,
    sha256_hex,
)
from warrant.warrants import Warrant


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One call as a PEP receives it: the call, the caller's tokens, the proof of possession.

    `traceparent` is the caller's W3C trace context (a PEP fills it from the
    call's metadata), so the decision's span joins the caller's trace.

    `requester_warrant` is set when the agent acts on another agent's message
    (from a verified envelope): the call must then be allowed by that warrant too.
    """

    call: ToolCall
    credential: str
    warrant: str
    proof: str | None = None
    traceparent: str | None = None
    requester_warrant: str | None = None


@dataclass(slots=True)
class CallContext:
    """The working state of one decision. Private to the pipeline and its stages.

    Stages fill in what they establish (credential, agent, warrant, tool) and
    add reasons. `effect` starts at ALLOW and only ever moves towards DENY.
    """

    request: CallRequest
    now: float
    decision_id: str
    #: Set by an in-process session that already proved possession of the key.
    session_credential: Credential | None = None
    credential: Credential | None = None
    agent: AgentRecord | None = None
    warrant: Warrant | None = None
    tool: ToolInfo | None = None
    effect: Effect = Effect.ALLOW
    reasons: list[Reason] = field(default_factory=list)
    #: Internal detail for the audit record only (never shown to the caller).
    detail: dict[str, Any] = field(default_factory=dict)
    policy_revision: str | None = None
    #: The verified warrant of the agent whose request this call acts on (if any).
    requester: Warrant | None = None
    #: Where the arguments came from (set by the data-flow stage, when it runs).
    flow: FlowTrace | None = None
    #: Labels policy sees in `context.labels` (data flow, content inspection).
    labels: set[str] = field(default_factory=set)
    #: The arguments with the secrets DLP found replaced (set by the DLP stage, which
    #: has walked them anyway); what the audit log and approvals start from.
    secrets_redacted: dict[str, Any] | None = None
    # Thawed arguments and their digest, computed at most once per decision.
    _arguments: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _digest: str | None = field(default=None, init=False, repr=False)
    #: The arguments have no canonical JSON form (set by `argument_digest`).
    malformed: bool = field(default=False, init=False)

    def arguments(self) -> dict[str, Any]:
        """The call's arguments as plain JSON values (do not mutate: shared by stages)."""
        if self._arguments is None:
            self._arguments = self.request.call.arguments_json()
        return self._arguments

    def argument_digest(self) -> str:
        """`ToolCall.argument_digest()` of this call, computed once.

        Arguments that are not valid Unicode (lone surrogates, which JSON escapes
        can carry), or not JSON at all (NaN, infinities, bytes, integers too long
        to print), have no canonical form: they get a digest of their escaped
        form and the call is `malformed` (the pipeline denies it).
        """
        if self._digest is None:
            try:
                self._digest = digest_arguments(self.arguments())
            except (UnicodeEncodeError, ValueError, TypeError):
                self.malformed = True
                try:
                    escaped = json.dumps(self.arguments(), sort_keys=True, ensure_ascii=True,
                                         default=repr)
                except ValueError:  # an integer too long to print (sys.get_int_max_str_digits)
                    escaped = '"unprintable arguments"'
                self._digest = sha256_hex(escaped.encode("ascii"))
        return self._digest

    def deny(self, code: str, message: str, source: str) -> Effect:
        self.effect = Effect.DENY
        self.reasons.append(Reason(code=code, message=message, source=source))
        return Effect.DENY

    def needs_approval(self, reasons: tuple[Reason, ...]) -> None:
        if self.effect is Effect.ALLOW:
            self.effect = Effect.NEEDS_APPROVAL
        self.reasons.extend(reasons)


class Stage(Protocol):
    """One step of the decision. Return `Effect.DENY` to stop the pipeline, else None."""

    def __call__(self, ctx: CallContext) -> Effect | None: ...
