"""The stages of one decision: authenticate, verify the warrant, revocation, scope,
catalogue, narrowing, policy, budget. Each is a small callable with the `Stage` shape.

INVARIANT: every stage either returns `Effect.DENY` with a reason, or leaves the
context for the next stage; any exception escaping a stage is turned into a deny
by the pipeline (errors deny).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from typing import Generic, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from warrant import identity, warrants
from warrant.errors import InvalidCredential, InvalidWarrant
from warrant.policy import CompiledPolicy, PolicyRequest
from warrant.store import StateStore
from warrant.types import AgentRecord, AgentStatus, Effect, Reason, RiskClass

from ._context import CallContext
from ._inspect import audit_arguments

K = TypeVar("K")
V = TypeVar("V")

#: What callers see for any credential failure (no oracle); the cause goes to the audit record.
CREDENTIAL_REJECTED = "credential rejected"
WARRANT_REJECTED = "warrant rejected"


class BoundedCache(Generic[K, V]):
    """A small LRU for verified tokens: verification is pure, so its result can be reused."""

    def __init__(self, size: int = 4096):
        self._items: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        if len(self._items) > self._size:
            self._items.popitem(last=False)


class Authenticate:
    """Credential signature and lifetime, an active agent, and proof of possession.

    The agent record is looked up once per credential: whatever later makes it
    unusable (retirement, key rotation, revocation) is recorded as a revocation,
    which `CheckRevocation` reads on every decision.
    """

    def __init__(self, store: StateStore, domain: str, key: Ed25519PublicKey,
                 replay_guard: identity.ReplayGuard):
        self._store, self._domain, self._key = store, domain, key
        self._replay_guard = replay_guard
        self._cache: BoundedCache[str, identity.Credential] = BoundedCache()
        self._agents: BoundedCache[str, AgentRecord] = BoundedCache()

    def __call__(self, ctx: CallContext) -> Effect | None:
        try:
            credential = self._current(ctx)
            agent = self._agent(credential)
        except InvalidCredential as exc:
            ctx.detail["credential"] = exc.detail
            return ctx.deny("authn.credential", CREDENTIAL_REJECTED, "authenticate")
        ctx.credential, ctx.agent = credential, agent
        return None

    def _current(self, ctx: CallContext) -> identity.Credential:
        """The caller's credential, verified (or from its session) and unexpired now."""
        credential = ctx.session_credential or self._verify(ctx)
        if ctx.now > credential.expires_at + identity.CLOCK_SKEW_SECONDS:
            raise InvalidCredential("credential expired")
        return credential

    def _agent(self, credential: identity.Credential) -> AgentRecord:
        agent = self._agents.get(credential.credential_id)
        if agent is not None:
            return agent
        agent = self._store.get_agent(credential.agent_id)
        if agent is None or agent.status is not AgentStatus.ACTIVE:
            raise InvalidCredential("agent unknown or retired")
        if identity.raw_public(credential.confirmation_key) != agent.public_key:
            raise InvalidCredential("credential bound to a key the agent no longer holds")
        self._agents.put(credential.credential_id, agent)
        return agent

    def _verify(self, ctx: CallContext) -> identity.Credential:
        token = ctx.request.credential
        credential = self._cache.get(token)
        if credential is None:
            credential = identity.verify_credential(token, self._key, domain=self._domain,
                                                    now=ctx.now)
            self._cache.put(token, credential)
        if ctx.request.proof is None:
            raise InvalidCredential("no proof of possession with the request")
        call = ctx.request.call
        identity.verify_proof(ctx.request.proof, credential=credential,
                              tool=call.qualified_name, argument_digest=ctx.argument_digest(),
                              warrant_token=ctx.request.warrant, now=ctx.now,
                              replay_guard=self._replay_guard)
        return credential


class VerifyWarrant:
    """The warrant is genuine, unexpired, from this domain, and held by the caller."""

    def __init__(self, domain: str, key: Ed25519PublicKey):
        self._domain, self._key = domain, key
        self._cache: BoundedCache[str, warrants.Warrant] = BoundedCache()

    def __call__(self, ctx: CallContext) -> Effect | None:
        token = ctx.request.warrant
        now = dt.datetime.fromtimestamp(ctx.now, dt.UTC)
        try:
            warrant = self._verify(token, now)
        except InvalidWarrant as exc:
            ctx.detail["warrant"] = exc.detail
            return ctx.deny("warrant.invalid", WARRANT_REJECTED, "warrant")
        ctx.warrant = warrant
        assert ctx.agent is not None  # authenticate ran first
        if warrant.holder != ctx.agent.agent_id:
            ctx.detail["warrant"] = f"held by {warrant.holder}, presented by {ctx.agent.agent_id}"
            return ctx.deny("warrant.holder", "the warrant was not issued to this agent", "warrant")
        return None

    def _verify(self, token: str, now: dt.datetime) -> warrants.Warrant:
        warrant = self._cache.get(token)
        if warrant is None:
            warrant = warrants.verify_warrant(token, self._key, domain=self._domain, now=now)
            self._cache.put(token, warrant)
        elif now >= warrant.expires_at:
            raise InvalidWarrant("warrant expired")
        return warrant


class CheckRevocation:
    """The task, the agent, the credential, every agent of the chain and the whole
    domain are not revoked."""

    def __init__(self, store: StateStore):
        self._store = store

    def __call__(self, ctx: CallContext) -> Effect | None:
        assert ctx.warrant is not None
        assert ctx.credential is not None
        # Every agent of a delegated warrant's chain: revoking an orchestrator stops its
        # sub-agents (and a sub-agent's suspension is its own `agent_id`).
        found = self._store.revoked(task_id=ctx.warrant.task_id, agent_id=ctx.credential.agent_id,
                                    credential_id=ctx.credential.credential_id,
                                    agent_ids=ctx.warrant.agents)
        if found is not None:
            return ctx.deny("revoked", f"revoked: {found}", "revocation")
        return None


def check_scope(ctx: CallContext) -> Effect | None:
    """The warrant grants this tool with these arguments (every layer agrees)."""
    assert ctx.warrant is not None
    problems = ctx.warrant.check(ctx.request.call)
    if problems:
        ctx.effect = Effect.DENY
        ctx.reasons.extend(problems)
        return Effect.DENY
    return None


class LookUpTool:
    """The tool is in the domain's catalogue (its risk class is what policy sees)."""

    def __init__(self, store: StateStore):
        self._store = store

    def __call__(self, ctx: CallContext) -> Effect | None:
        name = ctx.request.call.qualified_name
        tool = self._store.get_tool(name)
        if tool is None:
            return ctx.deny("tool.unknown", f"tool `{name}` is not in the domain's catalogue",
                            "catalogue")
        ctx.tool = tool
        return None


class CheckNarrowing:
    """The tool's risk class was not taken away from the task, the agent or any agent
    of its chain (the response engine narrows, e.g. to read-only tools, instead of
    revoking everything).

    Runs after `LookUpTool`, the first stage that knows the risk class. The same
    query also sees whole revocations recorded since `CheckRevocation` ran.
    """

    def __init__(self, store: StateStore):
        self._store = store

    def __call__(self, ctx: CallContext) -> Effect | None:
        assert ctx.warrant is not None
        assert ctx.credential is not None
        assert ctx.tool is not None  # the catalogue stage ran first
        # Acting on another agent's request: that task's and chain's narrowings bind too.
        requester = ctx.requester
        found = self._store.revoked(task_id=ctx.warrant.task_id,
                                    agent_id=ctx.credential.agent_id, credential_id=None,
                                    agent_ids=ctx.warrant.agents + (
                                        requester.agents if requester else ()),
                                    token_ids=(requester.task_id,) if requester else (),
                                    risk_class=ctx.tool.risk_class)
        if found is None:
            return None
        if found.startswith("narrowed"):  # the store's documented form of a narrowing
            return ctx.deny("narrowed", found, "revocation")
        return ctx.deny("revoked", f"revoked: {found}", "revocation")


class EvaluatePolicy:
    """The organisation's Cedar policy permits the call (default deny, forbid wins)."""

    def __init__(self, policies: CompiledPolicy):
        self._policies = policies

    def __call__(self, ctx: CallContext) -> Effect | None:
        assert ctx.agent
        assert ctx.warrant
        assert ctx.tool
        ctx.policy_revision = self._policies.revision
        request = PolicyRequest(
            agent=ctx.agent.agent_id, tool=ctx.tool.name, server=ctx.tool.server,
            risk_class=RiskClass(ctx.tool.risk_class), toolsets=ctx.tool.toolsets,
            agent_attrs={"owner": ctx.agent.owner, "risk_tier": ctx.agent.risk_tier,
                         "name": ctx.agent.name},
            arguments=ctx.arguments(), task_id=ctx.warrant.task_id,
            on_behalf_of=ctx.warrant.on_behalf_of or "", chain=ctx.warrant.principal_chain,
            labels=frozenset(ctx.labels),
            arg_labels=frozenset(f"{arg}:{label}" for arg, labels in (
                ctx.flow.arguments.items() if ctx.flow else ()) for label in labels),
            sources=ctx.flow.sources if ctx.flow else frozenset(),
            now=dt.datetime.fromtimestamp(ctx.now, dt.UTC),
        )
        result = self._policies.evaluate(request)
        match result.effect:
            case Effect.ALLOW:
                # Record which policies permitted it: the decision must be explainable.
                ctx.reasons.extend(result.reasons)
                return None
            case Effect.NEEDS_APPROVAL:
                ctx.needs_approval(result.reasons)
                return None
            case Effect.DENY:
                ctx.effect = Effect.DENY
                ctx.reasons.extend(result.reasons)
                return Effect.DENY


class ResolveApproval:
    """A call policy holds for a human: use a matching approval once, else hold it.

    The approval is bound to the exact call (agent, task, qualified tool name,
    argument digest); the retried call after approval consumes it atomically, so
    it goes through once. An agent cannot approve: deciding happens only through
    `warrant approvals`, which agents' credentials never reach.
    """

    def __init__(self, store: StateStore, ttl_seconds: int):
        self._store, self._ttl = store, ttl_seconds

    def __call__(self, ctx: CallContext) -> Effect | None:
        if ctx.effect is not Effect.NEEDS_APPROVAL:
            return None
        assert ctx.agent is not None
        assert ctx.warrant is not None
        call = ctx.request.call
        key = {"agent_id": ctx.agent.agent_id, "task_id": ctx.warrant.task_id,
               "tool": call.qualified_name, "argument_digest": ctx.argument_digest()}
        used = self._store.approvals.consume(**key, now=ctx.now)
        if used is not None:
            ctx.effect = Effect.ALLOW
            ctx.reasons.append(Reason(
                "approval.granted",
                f"approved by {used.decided_by} (`{used.approval_id}`), used once", "approval"))
            return None
        held = self._store.approvals.hold(
            **key, arguments=audit_arguments(ctx),
            reasons=[*(r.to_json() for r in ctx.reasons), *_flow_notes(ctx)],
            decision_id=ctx.decision_id,
            now=ctx.now, ttl_seconds=self._ttl)
        ctx.reasons.append(Reason(
            "approval.pending",
            f"held for human approval as `{held.approval_id}` "
            f"(`warrant approvals approve {held.approval_id}`), then retry the same call",
            "approval"))
        return None


class ConsumeBudget:
    """Count the call against the warrant's budgets; only calls about to run are counted."""

    def __init__(self, store: StateStore):
        self._store = store

    def __call__(self, ctx: CallContext) -> Effect | None:
        if ctx.effect is not Effect.ALLOW:
            return None  # held for approval: counted when it actually runs
        assert ctx.warrant is not None
        tool = ctx.request.call.qualified_name
        exhausted = self._store.consume_budget(
            ctx.warrant.task_id, tool, ctx.warrant.tool_budget(tool), ctx.warrant.total_budget)
        if exhausted is not None:
            return ctx.deny("budget.exhausted", exhausted, "budget")
        return None


#: Data-flow notes a pending approval carries for the person deciding it.
_MAX_APPROVAL_NOTES = 8


def _flow_notes(ctx: CallContext) -> list[dict[str, str]]:
    """What the data-flow trace noted (which argument came from where), for the human.

    The agent's answer keeps only the rule's name: a compromised agent is not told
    which argument gave it away; the approver needs exactly that.
    """
    notes = ctx.detail.get("flow", {}).get("notes", ())
    return [{"code": "flow.note", "message": str(note)[:300], "source": "flow"}
            for note in list(notes)[:_MAX_APPROVAL_NOTES]]
