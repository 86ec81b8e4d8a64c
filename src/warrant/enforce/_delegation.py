"""Delegation: every hop of a warrant is verified, and a request from another
agent narrows what the receiving agent may do (confused-deputy defence).

A warrant handed from agent A to agent B carries a layer naming B, signed with
A's own key (a Biscuit third-party block; see `warrants.attenuate_warrant`).
`VerifyDelegation` checks each such signature against the delegator's
registered key, so a token copied out of A's memory cannot be re-addressed to
another agent by whoever holds it. `CheckRevocation` (in `_stages`) checks every
agent of the chain, so suspending an orchestrator stops its sub-agents too.

When B acts on a message from A with B's own warrant, the call carries A's
warrant as `requester_warrant` and `IntersectRequester` requires it to allow
the call as well: B's authority is the intersection of both, so a
low-privilege agent cannot get a high-privilege one to do what it could not.
"""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from warrant import warrants
from warrant.errors import InvalidWarrant
from warrant.store import StateStore
from warrant.types import AgentStatus, Effect, Reason

from ._context import CallContext
from ._stages import BoundedCache


class ChainVerifier:
    """Each hop was signed by its delegator's registered key; each agent is registered."""

    def __init__(self, store: StateStore):
        self._store = store

    def check(self, warrant: warrants.Warrant) -> None:
        """Raise `InvalidWarrant` (detail says which hop) unless every hop verifies.

        Agents are read from the store on every call, never cached: a key rotation
        or a retirement takes effect on the next check.
        """
        steps = _steps(warrant)
        if not steps:
            return
        records = _agent_records(self._store, {a for _, _, signer, delegate in steps
                                               for a in (signer, delegate) if a is not None})
        for index, holder, signer, delegate in steps:
            if signer is None:
                raise InvalidWarrant(
                    f"layer {index} hands the warrant from {holder} to {delegate} "
                    f"without {holder}'s signature")
            # A signed layer must be signed by whoever held the warrant when it was added.
            if warrant.layers[index].signed_by != _key_of(signer, records):
                signed_by = str(warrant.layers[index].signed_by)
                raise InvalidWarrant(
                    f"layer {index} is signed by key {signed_by[:16]}…, not by the "
                    f"registered key of {signer} (forged, or signed before a key rotation)")
            if delegate is not None:
                _key_of(delegate, records)  # the delegate must be registered


#: (layer index, holder before the layer, agent whose key must have signed it or None
#: for an unsigned hand-over, the new holder if the layer hands the warrant on).
_Step = tuple[int, str, str | None, str | None]


def _steps(warrant: warrants.Warrant) -> list[_Step]:
    """What `check` must verify, layer by layer, in order (no store access)."""
    current = str(warrant.layers[0].holder)
    steps: list[_Step] = []
    for index, layer in enumerate(warrant.layers[1:], start=1):
        handing_over = layer.holder is not None and layer.holder != current
        if layer.signed_by is None:
            if handing_over:
                steps.append((index, current, None, layer.holder))
                break  # refused at this step: nothing after it is looked at
            continue
        steps.append((index, current, current, layer.holder if handing_over else None))
        if handing_over:
            current = str(layer.holder)
    return steps


def _agent_records(store: StateStore, agent_ids: set[str]) -> dict[str, tuple[bytes, AgentStatus]]:
    """The current key and status of each of `agent_ids` that is registered.

    Read afresh for every check (a rotation or retirement by any process counts on
    the next call), all of them in one store read.
    """
    return {a: (record.public_key, record.status)
            for a, record in store.get_agents(sorted(agent_ids)).items()}


def _key_of(agent_id: str, records: dict[str, tuple[bytes, AgentStatus]]) -> str:
    record = records.get(agent_id)
    if record is None:
        raise InvalidWarrant(f"the chain names `{agent_id}`, which is not a registered agent")
    key, status = record
    if status is not AgentStatus.ACTIVE:
        raise InvalidWarrant(f"the chain names `{agent_id}`, which is retired")
    return key.hex()


class VerifyDelegation:
    """A delegated warrant: every hop signed by the agent that handed it on."""

    def __init__(self, store: StateStore):
        self._chain = ChainVerifier(store)

    def __call__(self, ctx: CallContext) -> Effect | None:
        assert ctx.warrant is not None
        if len(ctx.warrant.layers) == 1:
            return None  # not delegated: the domain key's signature is the whole story
        try:
            self._chain.check(ctx.warrant)
        except InvalidWarrant as exc:
            ctx.detail["delegation"] = exc.detail
            return ctx.deny("delegation.invalid-hop",
                            f"the warrant's delegation chain does not verify: {exc.detail}",
                            "delegation")
        return None


class IntersectRequester:
    """Acting on another agent's request: that agent's warrant must allow the call too."""

    def __init__(self, store: StateStore, domain: str, key: Ed25519PublicKey):
        self._store, self._domain, self._key = store, domain, key
        self._chain = ChainVerifier(store)
        self._cache: BoundedCache[str, warrants.Warrant] = BoundedCache(1024)

    def __call__(self, ctx: CallContext) -> Effect | None:
        token = ctx.request.requester_warrant
        if token is None:
            return None
        try:
            requester = self._verify(token, ctx.now)
        except InvalidWarrant as exc:
            ctx.detail["requester"] = exc.detail
            return ctx.deny("delegation.requester-invalid",
                            f"the requesting agent's warrant is not valid: {exc.detail}",
                            "delegation")
        ctx.requester = requester
        ctx.detail["requested_by"] = list(requester.principal_chain)
        revoked = self._store.revoked(task_id=requester.task_id, agent_id=None,
                                      credential_id=None, agent_ids=requester.agents)
        if revoked is not None:
            return ctx.deny("delegation.requester-revoked",
                            f"the requesting agent's warrant is revoked: {revoked}", "delegation")
        problems = requester.check(ctx.request.call)
        if problems:
            ctx.effect = Effect.DENY
            ctx.reasons.extend(Reason(
                "delegation.requester-not-granted",
                f"requested by {requester.holder}, whose warrant does not allow it: {p.message}",
                "delegation") for p in problems)
            return Effect.DENY
        ctx.reasons.append(Reason(
            "delegation.intersected",
            f"requested by {requester.holder}: allowed by its warrant and by this agent's",
            "delegation"))
        return None

    def _verify(self, token: str, now: float) -> warrants.Warrant:
        requester = self._cache.get(token)
        if requester is None:
            requester = warrants.verify_warrant(token, self._key, domain=self._domain,
                                                now=dt.datetime.fromtimestamp(now, dt.UTC))
            self._cache.put(token, requester)
        elif now >= requester.expires_at.timestamp():
            raise InvalidWarrant("warrant expired")
        # Not cached: a delegator's key rotation or retirement must take effect at once.
        self._chain.check(requester)
        return requester
