"""Baseline: the same tool-call rules evaluated by Microsoft's Agent Governance Toolkit.

Run: .venv/bin/python bench/agt_baseline.py   (needs the `bench` extra:
agent-governance-toolkit-core==5.0.0). No network; nothing is written to disk.

The rule set is the one the Warrant benchmark uses as its Cedar baseline for tool calls:

    read-only                    -> allow
    write, external-communication -> allow
    money-movement               -> allow iff argument `amount` <= 1000, else needs approval
    destructive                  -> deny
    anything else                -> deny (default deny)

with the tool catalogue read_file=read-only, send_email=external-communication,
transfer=money-movement, drop_table=destructive.

Engine under test: `agent_os.policies.PolicyEvaluator` (`build_agt_evaluator`). This is
the "Agent OS Policy Engine" of AGT's tutorial 01 and spec, and the object AGT's framework
adapters call through `BaseIntegration._evaluate_policy`. Rules are a native
`PolicyDocument` written in YAML (`AGT_POLICY_YAML`). `evaluate()` is synchronous, so no
event loop is involved (`AsyncPolicyEvaluator` only runs this same call in an executor).

How the rules map, and where AGT's native format differs from the Cedar rules:

1. One condition per rule. A `PolicyRule` has exactly one `field op value` test, with no
   AND, OR or NOT, and the first match in priority order decides. "money-movement AND
   amount <= 1000" is therefore written as an ordered chain: allow the non-payment
   classes, then deny every remaining class except money-movement (priority 20), and only
   then allow `amount lte 1000` (priority 10). A money-movement call that did not match
   that rule hits the catch-all deny at priority 5. Cedar needs no ordering: any matching
   forbid wins.
2. No approval outcome. `PolicyAction` has only allow, deny, audit and block, so
   "needs approval" becomes a deny whose message says so. Both come out as "not allowed".
3. Flat context with no nested fields. A condition reads `context.get(field)` from the
   top level only; AGT's adapters put arguments under `tool_args`, which the YAML engine
   cannot read. The wrapper therefore flattens the arguments into the context and then
   sets `tool_name` and `risk_class` itself, so an argument cannot spoof them. The cost is
   that an argument literally named `tool_name` or `risk_class` is invisible to the rules.
4. Risk class is looked up by the wrapper (`TOOL_RISK`, one dict lookup inside the timed
   call), because AGT's evaluator has no tool-catalogue concept. Warrant's
   `PolicyRequest` arrives with `risk_class` already set. An unknown tool gets
   "unclassified". It must not get None: AGT treats a missing field as "condition does
   not match", so a None class would slip past the priority-20 deny and an unknown tool
   carrying `amount` <= 1000 would be allowed.
5. Numeric typing. Warrant encodes `amount` as a Cedar Long: it parses numeric strings,
   rounds fractions away from zero, and ignores booleans. AGT compares the raw Python
   value. These cases agree: int, float (1000.5 is denied by both), a missing amount
   (denied), and a negative amount (allowed by both). These differ: `True` (AGT allows it
   because True <= 1000; Warrant asks for approval) and a numeric string "50" (Warrant
   allows it; in AGT `"50" <= 1000` raises TypeError, which is caught as a fail-closed
   deny and logged at ERROR with a traceback).
6. Brief vs. shipped pack. These five rules are the benchmark's simplified baseline.
   Warrant's shipped `pack/baseline.cedar` also permits destructive calls in working
   hours or on behalf of a named human, and adds forbids on labels, delegation depth and
   risk score. Those extra rules are not reproduced here.

Secondary engine, for reference only: `agentmesh.governance.PolicyEngine`, which is also
in the same wheel (`build_agentmesh_evaluator`, `AGENTMESH_POLICY_YAML`). Its string
expressions support `and`, dotted paths into nested args and a `require_approval` action,
and with `deny_overrides` it has Cedar's forbid-wins semantics. The catch is that a
missing numeric field compares as 0, so `args.amount <= 1000` alone would allow an
unsized transfer. The rule adds a truthiness guard (`args.amount and ...`), which
means amount == 0 is denied there while Cedar allows it.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, Protocol

import yaml

with warnings.catch_warnings():
    # agent_os/__init__ warns "agent-os-kernel is deprecated ... use
    # agent-governance-toolkit-core" even when imported from that very package.
    warnings.simplefilter("ignore", DeprecationWarning)
    from agent_os.policies import PolicyDecision, PolicyDocument, PolicyEvaluator
    from agentmesh.governance import PolicyEngine

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, table

TOOL_RISK: dict[str, str] = {
    "read_file": "read-only",
    "send_email": "external-communication",
    "transfer": "money-movement",
    "drop_table": "destructive",
}
UNCLASSIFIED = "unclassified"

AGT_POLICY_YAML = """\
version: "1.0"
name: warrant-baseline-tool-calls
description: Warrant's Cedar tool-call baseline, in AGT's PolicyDocument format.
defaults:
  action: deny
rules:
  - name: forbid-destructive
    priority: 100
    condition: {field: risk_class, operator: eq, value: destructive}
    action: deny
    message: Destructive tools are denied.
  - name: permit-read-only
    priority: 90
    condition: {field: risk_class, operator: eq, value: read-only}
    action: allow
  - name: permit-write-and-send
    priority: 90
    condition: {field: risk_class, operator: in, value: [write, external-communication]}
    action: allow
  # One condition per rule: from here on only money-movement may continue.
  - name: deny-unlisted-classes
    priority: 20
    condition: {field: risk_class, operator: ne, value: money-movement}
    action: deny
    message: No rule permits this tool (default deny).
  - name: permit-small-payments
    priority: 10
    condition: {field: amount, operator: lte, value: 1000}
    action: allow
  - name: large-payments-need-approval
    priority: 5
    condition: {field: risk_class, operator: eq, value: money-movement}
    action: deny
    message: Payment over 1000 or unsized; needs human approval (AGT has no approval action).
"""

AGENTMESH_POLICY_YAML = """\
apiVersion: governance.toolkit/v1
name: warrant-baseline-tool-calls
agents: ["*"]
default_action: deny
rules:
  - name: forbid-destructive
    condition: "risk_class == 'destructive'"
    action: deny
  - name: permit-read-only
    condition: "risk_class == 'read-only'"
    action: allow
  - name: permit-write-and-send
    condition: "risk_class in ['write', 'external-communication']"
    action: allow
  - name: permit-small-payments
    condition: "risk_class == 'money-movement' and args.amount and args.amount <= 1000"
    action: allow
  - name: large-payments-need-approval
    condition: "risk_class == 'money-movement' and args.amount > 1000"
    action: require_approval
"""


class ToolCallEvaluator(Protocol):
    def evaluate(self, tool: str, args: dict[str, Any]) -> bool: ...


class AgtEvaluator:
    """`agent_os.policies.PolicyEvaluator` behind Warrant's `(tool, args) -> bool` shape."""

    def __init__(self, evaluator: PolicyEvaluator) -> None:
        self._evaluator = evaluator

    def decide(self, tool: str, args: dict[str, Any]) -> PolicyDecision:
        context = {**args, "tool_name": tool, "risk_class": TOOL_RISK.get(tool, UNCLASSIFIED)}
        return self._evaluator.evaluate(context)

    def evaluate(self, tool: str, args: dict[str, Any]) -> bool:
        return self.decide(tool, args).allowed


class AgentMeshEvaluator:
    """`agentmesh.governance.PolicyEngine` (secondary AGT engine) behind the same shape."""

    AGENT = "did:example:bench-agent"

    def __init__(self, engine: PolicyEngine) -> None:
        self._engine = engine

    def evaluate(self, tool: str, args: dict[str, Any]) -> bool:
        context = {
            "tool_name": tool,
            "risk_class": TOOL_RISK.get(tool, UNCLASSIFIED),
            "args": args,
        }
        return bool(self._engine.evaluate(self.AGENT, context).allowed)


def build_agt_evaluator() -> AgtEvaluator:
    document = PolicyDocument.model_validate(yaml.safe_load(AGT_POLICY_YAML))
    return AgtEvaluator(PolicyEvaluator(policies=[document]))


def build_agentmesh_evaluator() -> AgentMeshEvaluator:
    engine = PolicyEngine(conflict_strategy="deny_overrides")
    engine.load_yaml(AGENTMESH_POLICY_YAML)
    return AgentMeshEvaluator(engine)


# (tool, args, expected allowed). The first five are the brief's rule cases; the rest
# pin down the edges where a single-condition, first-match chain could go wrong.
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("read_file", {"path": "/etc/motd"}, True),
    ("send_email", {"to": "a@example.org", "body": "hi"}, True),
    ("transfer", {"amount": 50, "currency": "EUR"}, True),
    ("transfer", {"amount": 5000, "currency": "EUR"}, False),
    ("drop_table", {"table": "users"}, False),
    ("transfer", {"amount": 1000}, True),
    ("transfer", {"amount": 1000.5}, False),
    ("transfer", {"currency": "EUR"}, False),
    ("unknown_tool", {"amount": 50}, False),
    ("drop_table", {"amount": 50}, False),
    ("read_file", {"tool_name": "drop_table", "risk_class": "destructive"}, True),
]
HOT_CALL: tuple[str, dict[str, Any]] = ("transfer", {"amount": 50, "currency": "EUR"})


def check(name: str, evaluator: ToolCallEvaluator) -> None:
    for tool, args, expected in CASES:
        got = evaluator.evaluate(tool, args)
        assert got is expected, f"{name}: {tool}({args}) -> {got}, expected {expected}"


def main() -> None:
    agt = build_agt_evaluator()
    mesh = build_agentmesh_evaluator()
    check("agent_os.PolicyEvaluator", agt)
    check("agentmesh.PolicyEngine", mesh)
    print(f"verdicts OK on {len(CASES)} cases for both engines")

    tool, args = HOT_CALL
    rows = [
        ("AGT agent_os.PolicyEvaluator (baseline)", measure(lambda: agt.evaluate(tool, args))),
        ("AGT agentmesh.PolicyEngine (reference)", measure(lambda: mesh.evaluate(tool, args))),
    ]
    print(f"evaluate{HOT_CALL}, n=20000 after 2000 warm-up, GC off")
    print(table(rows))


if __name__ == "__main__":
    main()
