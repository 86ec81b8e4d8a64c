"""`Guard`: the in-process enforcement point for Python tools.

    guard = Guard.open()
    @guard.tool(risk="external-communication")
    def send_email(to: str, body: str) -> str: ...

    with guard.session(credential=cred, warrant=token, agent_key=key):
        send_email(to="bob@acme.example", body="hi")   # raises Denied unless allowed

A session proves possession of the agent's key once when it opens (the key
signs a proof bound to the credential and the warrant); every call through it
then runs the full pipeline (warrant, revocation, policy, budgets, audit).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warrant import identity, scanners, warrants
from warrant.config import resolve_home
from warrant.errors import InvalidCredential, InvalidEnvelope, WarrantError
from warrant.sandbox import SandboxProfile  # sandbox= (issue 5)
from warrant.types import (
    Decision,
    Effect,
    Reason,
    RiskClass,
    ToolCall,
    ToolInfo,
    canonical_json,
    sha256_hex,
)

from ._context import CallRequest
from ._domain import TrustDomain
from ._messages import (
    DEFAULT_ENVELOPE_TTL_SECONDS,
    Envelope,
    InboundMessage,
    message_source,
    receive_message,
    seal_message,
)
from ._pipeline import Pipeline
from ._sandboxed import resolve_profile, sandboxed_tool  # sandbox= (issue 5)

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger("warrant.guard")

SESSION_TOOL = "warrant:session-open"
_current: contextvars.ContextVar[GuardSession | None] = contextvars.ContextVar(
    "warrant_session", default=None)


class Denied(WarrantError):  # noqa: N818 - reads as what happened to the call
    """The call was not allowed; `decision` says why."""

    code = "decision.denied"

    def __init__(self, decision: Decision):
        reasons = "; ".join(r.message for r in decision.reasons) or "no reason given"
        super().__init__(f"`{decision.tool}` {decision.effect.value}: {reasons}")
        self.decision = decision


class ApprovalRequired(Denied):
    """The call needs a human's approval before it may run."""

    code = "decision.needs-approval"


def current_session() -> GuardSession | None:
    """The session open in this context (`with guard.session(...)`), if any."""
    return _current.get()


class Guard:
    """The enforcement point for in-process tools. One per trust domain and process."""

    def __init__(self, domain: TrustDomain, pipeline: Pipeline | None = None):
        self.domain = domain
        self.pipeline = pipeline or Pipeline(domain)

    @classmethod
    def open(cls, home: str | Path | None = None) -> Guard:
        return cls(TrustDomain.open(resolve_home(home)))

    def close(self) -> None:
        self.domain.close()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self, call: ToolCall, *, credential: str, warrant: str,
              proof: str | None = None) -> Decision:
        """Decide one call presented with its tokens (the remote-PEP path)."""
        return self.pipeline.decide(CallRequest(call=call, credential=credential,
                                                warrant=warrant, proof=proof))

    @contextmanager
    def session(self, *, credential: str, warrant: str, agent_key: Ed25519PrivateKey,
                traceparent: str | None = None) -> Iterator[GuardSession]:
        """An agent's session on one task. `traceparent` joins every decision to a
        caller's trace (e.g. `message.traceparent` of the message that handed it work)."""
        session = GuardSession(self, credential=credential, warrant=warrant, agent_key=agent_key,
                               traceparent=traceparent)
        token = _current.set(session)
        try:
            yield session
        finally:
            _current.reset(token)

    def receive(self, envelope: Envelope | Mapping[str, Any], body: Any, *,
                recipient: str) -> InboundMessage:
        """Verify and record a message from another agent; raises `InvalidEnvelope`.

        The body enters the task's data-flow ledger as untrusted content
        (`message_source(sender)`): values an agent relays are traced like any
        tool result. `GuardSession.acting_for` adds it to the acting session's
        own task too.
        """
        message = receive_message(self.domain, envelope, body, recipient=recipient)
        # The sender's task is also the task of a handed-over warrant.
        self.pipeline.ledgers.observe(message.task_id, message_source(message.sender), body)
        return message

    def register_tool(self, info: ToolInfo) -> None:
        self.domain.store.put_tool(info, time.time())

    def tool(self, *, risk: RiskClass | str, name: str | None = None, server: str | None = None,
             description: str | None = None, toolsets: tuple[str, ...] = (),
             sandbox: str | SandboxProfile | None = None,
             ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Wrap a function as a guarded tool.

        It runs only when the current session's call is allowed. With `sandbox`
        (a profile name such as "none-network", or a `SandboxProfile`) it runs in
        that sandbox, its result coming back as JSON.
        """

        def wrap(fn: Callable[P, R]) -> Callable[P, R]:
            info = ToolInfo(name=name or fn.__name__, risk_class=RiskClass(risk), server=server,
                            description=description or (fn.__doc__ or "").strip(),
                            toolsets=toolsets)
            # --- sandbox= (issue 5): the allowed call runs in the sandbox, audited there ---
            target: Callable[..., Any] = fn if sandbox is None else sandboxed_tool(
                self.domain, fn, resolve_profile(sandbox))
            # --- end sandbox= ---
            self.register_tool(info)

            @functools.wraps(fn)
            def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
                if args:
                    raise TypeError(f"guarded tool `{info.name}` takes keyword arguments only")
                session = _current.get()
                if session is None or session.guard is not self:
                    raise Denied(_no_session_decision(info.qualified_name))
                return cast(R, session.run(target, ToolCall(tool=info.name, server=server,
                                                            arguments=dict(kwargs))))

            return guarded

        return wrap


class GuardSession:
    """An authenticated agent working on one task, in this process."""

    def __init__(self, guard: Guard, *, credential: str, warrant: str,
                 agent_key: Ed25519PrivateKey, traceparent: str | None = None):
        self.guard = guard
        self.warrant = warrant
        self.credential_token = credential
        #: The most recent decision made in this session (for display and tests).
        self.last_decision: Decision | None = None
        self._agent_key = agent_key
        self._verified: warrants.Warrant | None = None
        # The warrant of the agent whose message this session is acting on, if any.
        self._requester: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            "warrant_requester", default=None)
        # The trace the calls join: the session's own, or a message's while acting for it.
        self._trace: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            "warrant_trace", default=traceparent)
        domain = guard.domain
        now = time.time()
        # Prove possession once, bound to this credential and this warrant.
        proof = identity.make_proof(agent_key, credential_token=credential, tool=SESSION_TOOL,
                                    argument_digest=_EMPTY_DIGEST, warrant_token=warrant, now=now)
        try:
            self.credential = identity.verify_credential(credential, domain.public_key,
                                                         domain=domain.domain, now=now)
            identity.verify_proof(proof, credential=self.credential, tool=SESSION_TOOL,
                                  argument_digest=_EMPTY_DIGEST, warrant_token=warrant, now=now,
                                  replay_guard=domain.store)
        except InvalidCredential as exc:
            domain.record_admin("session.rejected", {"detail": exc.detail})
            raise

    def check(self, call: ToolCall) -> Decision:
        self.last_decision = self.guard.pipeline.decide(
            CallRequest(call=call, credential=self.credential_token, warrant=self.warrant,
                        requester_warrant=self._requester.get(),
                        traceparent=self._trace.get()),
            session_credential=self.credential)
        return self.last_decision

    def seal(self, recipient: str, body: Any, *,
             delegate: Sequence[warrants.ToolGrant] | None = None,
             delegate_ttl_seconds: int | None = None,
             ttl_seconds: int = DEFAULT_ENVELOPE_TTL_SECONDS) -> Envelope:
        """Seal a message to another agent (name or id), signed with this agent's key.

        With `delegate`, hand work over: the envelope carries this session's
        warrant narrowed to those tools and naming the recipient as holder.
        """
        return seal_message(self.guard.domain, agent_key=self._agent_key,
                            credential=self.credential, credential_token=self.credential_token,
                            warrant=self.warrant, recipient=recipient, body=body,
                            delegate=delegate, delegate_ttl_seconds=delegate_ttl_seconds,
                            ttl_seconds=ttl_seconds)

    @contextmanager
    def acting_for(self, message: InboundMessage) -> Iterator[GuardSession]:
        """Calls in this block act on `message`: its sender's warrant must allow them too."""
        if message.recipient != self.credential.agent_id:
            raise InvalidEnvelope(f"the message is for {message.recipient}, not for "
                                  f"{self.credential.agent_id}", reason="delegation.misaddressed")
        task_id = self._task_id()
        if task_id != message.task_id:
            # Acting under its own warrant is another task, whose ledger must see it too.
            self.guard.pipeline.ledgers.observe(task_id, message_source(message.sender),
                                                message.body)
        token = self._requester.set(message.requester_warrant)
        trace = self._trace.set(message.traceparent or self._trace.get())
        try:
            yield self
        finally:
            self._trace.reset(trace)
            self._requester.reset(token)

    def check_answer(self, text: str) -> Decision:
        """May this final answer reach the user? (Denied if it carries injected content.)"""
        self.last_decision = self.guard.pipeline.check_answer(
            text, task_id=self._task_id(), agent=self.credential.agent_id)
        return self.last_decision

    def filter_answer(self, text: str) -> str:
        """This final answer without the sentences that repeat injected instructions."""
        shown, self.last_decision = self.guard.pipeline.filter_answer(
            text, task_id=self._task_id(), agent=self.credential.agent_id)
        return shown

    def _task_id(self) -> str:
        # The token is fixed for the session: verify it once, then only its expiry (an
        # expired warrant is verified again, which raises, exactly as before).
        now = dt.datetime.now(dt.UTC)
        if self._verified is None or now > self._verified.expires_at:
            domain = self.guard.domain
            self._verified = warrants.verify_warrant(self.warrant, domain.public_key,
                                                     domain=domain.domain, now=now)
        return self._verified.task_id

    def run(self, fn: Callable[..., R], call: ToolCall) -> R:
        """Run `fn(**arguments)` only if the call is allowed; record its outcome."""
        decision = self.admit(call)
        try:
            result = fn(**call.arguments_json())
        except Exception as exc:
            self._record(decision, ok=False, error=f"{type(exc).__name__}: {exc}")
            raise
        return cast(R, self.deliver(decision, result))

    async def run_async(self, invoke: Callable[[], Awaitable[Any]], call: ToolCall, *,
                        as_json: Callable[[Any], Any] | None = None) -> Any:
        """`run` for a coroutine (`invoke()` is awaited only if the call is allowed)."""
        decision = self.admit(call)
        try:
            result = await invoke()
        except Exception as exc:
            self._record(decision, ok=False, error=f"{type(exc).__name__}: {exc}")
            raise
        return self.deliver(decision, result, as_json=as_json)

    def admit(self, call: ToolCall) -> Decision:
        """The decision for `call`; raises `Denied` / `ApprovalRequired` unless allowed."""
        decision = self.check(call)
        match decision.effect:
            case Effect.ALLOW:
                return decision
            case Effect.NEEDS_APPROVAL:
                raise ApprovalRequired(decision)
            case Effect.DENY:
                raise Denied(decision)

    def deliver(self, decision: Decision, result: Any, *,
                as_json: Callable[[Any], Any] | None = None) -> Any:
        """Record the outcome of an allowed call and return `result` as the agent may see it.

        JSON-like results are redacted. Other objects are returned as they are,
        since redacting inside one would hand the caller something of another
        type — unless `as_json` gives their JSON form (an SDK's output model):
        that form is scanned, and if anything had to be redacted the agent gets
        it instead, so a secret never rides out inside an object.
        """
        pipeline = self.guard.pipeline
        if isinstance(result, str | dict | list):
            shown, redactions = pipeline.inspect_output(result)
            self._record(decision, ok=True, result=result, redactions=redactions)
            return shown
        if as_json is None:
            self._record(decision, ok=True, result=result)
            return result
        try:
            data = as_json(result)
        except ValueError:
            self._record(decision, ok=True, result=repr(result))
            return result
        shown, redactions = pipeline.inspect_output(data)
        self._record(decision, ok=True, result=data, redactions=redactions)
        return shown if redactions.findings else result

    def _record(self, decision: Decision, *, ok: bool, result: Any = None,
                error: str | None = None, redactions: scanners.DlpReport | None = None) -> None:
        try:
            self.guard.pipeline.record_outcome(decision, ok=ok, result=result, error=error,
                                               redactions=redactions)
        except Exception:  # the effect already happened; say so loudly
            log.critical("outcome of decision %s could not be audited", decision.decision_id,
                         exc_info=True)


_EMPTY_DIGEST = sha256_hex(canonical_json({}))


def _no_session_decision(tool: str) -> Decision:
    return Decision(effect=Effect.DENY, reasons=(Reason(
        code="session.none", message="no warrant session is open in this context",
        source="guard"),),
        decision_id="none", policy_revision=None, latency_us=0.0, tool=tool)
