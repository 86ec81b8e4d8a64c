"""The verified warrant as a frozen value, and its hot-path `check`.

A `Warrant` is what `verify_warrant` returns: the grants of every layer
(authority block first, then each attenuation), plus the effective values
(intersection of tools, minimum of budgets and expiry). `check` evaluates a
tool call against all layers in pure Python; it agrees with the Datalog checks
in the token (a differential test runs both).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from warrant.errors import WarrantSpecError
from warrant.types import Reason, ToolCall
from warrant.warrants._constraints import Constraint
from warrant.warrants._names import TOOL_NAME, check_int, check_name

WARRANT_VERSION = 1
_SOURCE = "warrant"


@dataclass(frozen=True, slots=True)
class ToolGrant:
    """One tool a layer allows, its argument constraints and an optional call budget."""

    name: str
    constraints: tuple[Constraint, ...] = ()
    budget: int | None = None

    def __post_init__(self) -> None:
        check_name("tool name", self.name, TOOL_NAME)
        constraints = tuple(self.constraints)
        if not all(isinstance(c, Constraint) for c in constraints):
            raise WarrantSpecError(f"constraints of `{self.name}` must be Constraint values")
        if len(set(constraints)) != len(constraints):
            raise WarrantSpecError(f"tool `{self.name}` lists the same constraint twice")
        object.__setattr__(self, "constraints", constraints)
        if self.budget is not None:
            check_int(f"the budget of `{self.name}`", self.budget, minimum=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "budget": self.budget,
            "constraints": [c.to_json() for c in self.constraints],
        }


@dataclass(frozen=True, slots=True)
class WarrantLayer:
    """What one block grants. Layer 0 is the authority block signed by the domain key."""

    tools: tuple[ToolGrant, ...]
    expires_at: datetime
    max_depth: int
    total_budget: int | None = None
    holder: str | None = None
    #: Hex of the raw Ed25519 public key that signed this block as a Biscuit
    #: third-party block (the delegating agent's key), or None. Set by
    #: `verify_warrant` from the token, never from the block's text.
    signed_by: str | None = None

    def tool(self, name: str) -> ToolGrant | None:
        return next((t for t in self.tools if t.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "tools": [t.to_json() for t in self.tools],
            "expires_at": self.expires_at.isoformat(),
            "max_depth": self.max_depth,
            "total_budget": self.total_budget,
            "holder": self.holder,
            "signed_by": self.signed_by,
        }


@dataclass(frozen=True, slots=True)
class Hop:
    """One delegation: `delegator` handed the warrant to `delegate` in layer `layer`.

    `signed_by` is the key that signed that layer (None for an unsigned hop);
    whether it is the delegator's registered key is for the composer to check,
    since only it can look agents up.
    """

    layer: int
    delegator: str
    delegate: str
    signed_by: str | None


@dataclass(frozen=True, slots=True)
class _Rule:
    arg: str
    constraint: Constraint
    layer: int


@dataclass(frozen=True, slots=True)
class Warrant:
    """A verified warrant. Build it with `verify_warrant`, never by hand."""

    version: int
    task_id: str
    domain: str
    agent: str
    on_behalf_of: str | None
    layers: tuple[WarrantLayer, ...]
    revocation_ids: tuple[str, ...]
    token_id: str
    _rules: Mapping[str, tuple[_Rule, ...]] = field(repr=False, compare=False)
    _expires_ts: int = field(repr=False, compare=False)

    @property
    def principal_chain(self) -> tuple[str, ...]:
        """The user (if any), the original agent, then each sub-agent holder."""
        user = (self.on_behalf_of,) if self.on_behalf_of else ()
        holders = tuple(layer.holder for layer in self.layers if layer.holder)
        return user + holders

    @property
    def hops(self) -> tuple[Hop, ...]:
        """Every change of holder after the authority block, in order."""
        hops: list[Hop] = []
        current = str(self.layers[0].holder)
        for index, layer in enumerate(self.layers[1:], start=1):
            if layer.holder is not None and layer.holder != current:
                hops.append(Hop(index, current, layer.holder, layer.signed_by))
                current = layer.holder
        return tuple(hops)

    @property
    def agents(self) -> tuple[str, ...]:
        """The agents of the chain: the original holder, then each delegate."""
        return (str(self.layers[0].holder), *(hop.delegate for hop in self.hops))

    @property
    def holder(self) -> str:
        """The current holder: the last principal named by any layer."""
        return self.principal_chain[-1]

    @property
    def expires_at(self) -> datetime:
        """The effective expiry: the earliest of every layer's."""
        return min(layer.expires_at for layer in self.layers)

    @property
    def depth_remaining(self) -> int:
        """How many more times this warrant may be delegated."""
        return self.layers[-1].max_depth

    @property
    def tools(self) -> tuple[str, ...]:
        """The effective tool names (granted by every layer), sorted."""
        return tuple(sorted(self._rules))

    @property
    def total_budget(self) -> int | None:
        """The effective total call budget (smallest over layers), None if unlimited."""
        budgets = [layer.total_budget for layer in self.layers if layer.total_budget is not None]
        return min(budgets, default=None)

    def tool_budget(self, tool: str) -> int | None:
        """The effective call budget of `tool` (smallest over layers), None if unlimited."""
        grants = (layer.tool(tool) for layer in self.layers)
        budgets = [g.budget for g in grants if g is not None and g.budget is not None]
        return min(budgets, default=None)

    def constraints_for(self, tool: str) -> tuple[tuple[int, Constraint], ...]:
        """Every constraint on `tool` across layers, as (layer number, constraint)."""
        return tuple((r.layer, r.constraint) for r in self._rules.get(tool, ()))

    def check(self, call: ToolCall, *, now: datetime | None = None) -> tuple[Reason, ...]:
        """Reasons this warrant does not permit `call`; an empty tuple means it does.

        A call is permitted iff every layer permits it: the tool is granted by
        each layer, every constraint of every layer holds, and no layer has
        expired. Time is compared at whole-second precision, like Biscuit.
        """
        reasons: list[Reason] = []
        seconds = math.floor(time.time() if now is None else now.timestamp())
        if seconds > self._expires_ts:
            reasons.append(
                Reason("warrant.expired", f"the warrant expired at {self.expires_at}", _SOURCE)
            )
        # A server's tool is granted by its qualified name (`github/create_issue`),
        # so a grant for one server's tool never covers another server's namesake.
        name = call.qualified_name
        rules = self._rules.get(name)
        if rules is None:
            message = f"tool `{name}` is not granted by the warrant for task `{self.task_id}`"
            reasons.append(Reason("warrant.tool-not-granted", message, _SOURCE))
            return tuple(reasons)
        arguments = call.arguments
        for rule in rules:
            if rule.arg not in arguments:
                message = (
                    f"argument `{rule.arg}` is missing but constrained: "
                    f"{rule.constraint.describe()} (set by layer {rule.layer})"
                )
                reasons.append(Reason("warrant.argument-missing", message, _SOURCE))
            elif not rule.constraint.check(arguments[rule.arg]):
                message = (
                    f"argument `{rule.arg}` = {arguments[rule.arg]!r} is not allowed: "
                    f"{rule.constraint.describe()} (set by layer {rule.layer})"
                )
                reasons.append(Reason("warrant.argument-constraint", message, _SOURCE))
        return tuple(reasons)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "task_id": self.task_id,
            "domain": self.domain,
            "principal_chain": list(self.principal_chain),
            "holder": self.holder,
            "delegations": [{"layer": h.layer, "from": h.delegator, "to": h.delegate,
                             "signed_by": h.signed_by} for h in self.hops],
            "expires_at": self.expires_at.isoformat(),
            "depth_remaining": self.depth_remaining,
            "total_budget": self.total_budget,
            "tools": [
                {
                    "name": name,
                    "budget": self.tool_budget(name),
                    "constraints": [
                        {"layer": n, **c.to_json(), "description": c.describe()}
                        for n, c in self.constraints_for(name)
                    ],
                }
                for name in self.tools
            ],
            "layers": [layer.to_json() for layer in self.layers],
            "revocation_ids": list(self.revocation_ids),
            "token_id": self.token_id,
        }


def build_warrant(
    *,
    task_id: str,
    domain: str,
    agent: str,
    on_behalf_of: str | None,
    layers: tuple[WarrantLayer, ...],
    revocation_ids: tuple[str, ...],
    token_id: str,
) -> Warrant:
    """Assemble a `Warrant` from layers that have already been checked to narrow."""
    names = set.intersection(*({t.name for t in layer.tools} for layer in layers))
    rules = {
        name: tuple(
            _Rule(c.arg, c, n)
            for n, layer in enumerate(layers)
            for grant in layer.tools
            if grant.name == name
            for c in grant.constraints
        )
        for name in sorted(names)
    }
    return Warrant(
        version=WARRANT_VERSION,
        task_id=task_id,
        domain=domain,
        agent=agent,
        on_behalf_of=on_behalf_of,
        layers=layers,
        revocation_ids=revocation_ids,
        token_id=token_id,
        _rules=rules,
        _expires_ts=math.floor(min(layer.expires_at for layer in layers).timestamp()),
    )
