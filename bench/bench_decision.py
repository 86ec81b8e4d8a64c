"""Full enforcement decision vs. raw Cedar and vs. Agent Governance Toolkit, in one run.

Run: .venv/bin/python bench/bench_decision.py   (AGT baseline needs `pip install -e '.[bench]'`)

Cases, all on the same machine in the same process:
- `decision (session)`: the in-process PEP path — credential verified once when the
  session opened, then per call: agent and revocation checks, warrant (verified
  once per token, then expiry/holder/scope re-checked), tool catalogue, Cedar
  policy, budget counted in SQLite, audit record appended (unsynced: the record is
  committed to SQLite before the answer, without fsync).
- `decision (remote, PoP)`: the remote-PEP path — the same plus a fresh proof of
  possession verified per call (signature, binding, nonce recorded in SQLite); the
  agent's signing of proofs happens before timing (it is the client's cost).
- `decision (durable audit)`: the session path with fsync'ed group commit.
- `raw cedarpy`: `cedarpy.is_authorized` with pre-parsed PolicySet and Entities
  handles on the equivalent request (Warrant's policy stage alone, minus encoding).
- `Warrant policy stage, AGT's 5 rules`: `CompiledPolicy.evaluate` on the same rule set
  the AGT baseline uses (bench/agt_baseline.py), in Cedar.
- `AGT policy evaluation`: Agent Governance Toolkit's `PolicyEvaluator` on that rule set.
- `credential verify (uncached)` and `warrant verify (3 attenuations)`.
Writes bench/results/decision.json.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cedarpy

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, table, write_results

from warrant import identity, policy, warrants
from warrant.enforce import CallRequest, Guard, Pipeline, TrustDomain
from warrant.types import RiskClass, ToolCall, ToolInfo


def open_domain(home: Path, durability: str) -> TrustDomain:
    domain = TrustDomain.init(home, "bench.example", settings={"audit_durability": durability})
    domain.store.put_tool(ToolInfo("transfer", RiskClass.MONEY_MOVEMENT), time.time())
    domain.register_agent("payer", owner="finance", purpose="pays invoices")
    return domain


def tokens(domain: TrustDomain) -> tuple[str, str]:
    credential = domain.issue_credential("payer", ttl_seconds=3600).token
    # Budgets are set (large enough never to run out) so every decision counts them.
    _, warrant = domain.mint(agent="payer", task="bench", ttl_seconds=3600, max_depth=3,
                             total_budget=10**9, tools=[warrants.parse_tool_spec(
                                 "transfer:amount=0..1000,currency=EUR|USD@1000000000")])
    return credential, warrant


CALL = ToolCall("transfer", {"amount": 50, "currency": "EUR"})


def session_case(domain: TrustDomain) -> Callable[[], object]:
    credential, warrant = tokens(domain)
    guard = Guard(domain)
    session = guard.session(credential=credential, warrant=warrant,
                            agent_key=domain.agent_key("payer")).__enter__()

    def run() -> object:
        decision = session.check(CALL)
        assert decision.allowed, decision
        return decision

    return run


def remote_case(domain: TrustDomain, calls: int) -> Callable[[], object]:
    """Each call carries a fresh proof; the agent signs them before timing starts."""
    credential, warrant = tokens(domain)
    pipeline = Pipeline(domain)
    key = domain.agent_key("payer")
    digest = CALL.argument_digest()
    requests = iter([
        CallRequest(CALL, credential, warrant, identity.make_proof(
            key, credential_token=credential, tool="transfer", argument_digest=digest,
            warrant_token=warrant, now=time.time()))
        for _ in range(calls)])

    def run() -> object:
        decision = pipeline.decide(next(requests))
        assert decision.allowed, decision
        return decision

    return run


def raw_cedar_case(domain: TrustDomain) -> Callable[[], object]:
    policies = domain.policies.policies
    agent = "spiffe://bench.example/agent/payer"
    entities = cedarpy.Entities.from_json_str(json.dumps([
        {"uid": {"type": "Warrant::Agent", "id": agent}, "parents": [],
         "attrs": {"owner": "finance", "risk_tier": "standard", "name": "payer",
                   "domain": "bench.example"}},
        {"uid": {"type": "Warrant::Tool", "id": "transfer"}, "parents": [],
         "attrs": {"name": "transfer", "server": "", "risk_class": "money-movement"}},
        {"uid": {"type": "Warrant::Args", "id": "call"}, "attrs": {}, "parents": [],
         "tags": {"amount": "50", "currency": "EUR"}},
        {"uid": {"type": "Warrant::NumArgs", "id": "call"}, "attrs": {}, "parents": [],
         "tags": {"amount": 50}},
    ]))
    request: dict[str, Any] = {
        "principal": {"type": "Warrant::Agent", "id": agent},
        "action": {"type": "Warrant::Action", "id": "call_tool"},
        "resource": {"type": "Warrant::Tool", "id": "transfer"},
        "context": {"task_id": "t", "on_behalf_of": "", "chain": [agent], "chain_length": 1,
                    "args": {"__entity": {"type": "Warrant::Args", "id": "call"}},
                    "num_args": {"__entity": {"type": "Warrant::NumArgs", "id": "call"}},
                    "labels": [], "hour": 10, "weekday": 1, "risk_score": 0,
                    "budget_remaining": 0, "target": ""},
    }

    def run() -> object:
        result = cedarpy.is_authorized(request, policies, entities)
        assert result.allowed, result.diagnostics.errors
        return result

    return run


def credential_case(domain: TrustDomain) -> Callable[[], object]:
    credential, _ = tokens(domain)
    return lambda: identity.verify_credential(credential, domain.public_key,
                                              domain=domain.domain, now=time.time())


def attenuated_case(domain: TrustDomain) -> Callable[[], object]:
    _, token = tokens(domain)
    now = dt.datetime.now(dt.UTC)
    for budget in (30, 20, 10):
        token = warrants.attenuate_warrant(token, domain.public_key, domain=domain.domain,
                                           now=now, total_budget=budget)
    return lambda: warrants.verify_warrant(token, domain.public_key, domain=domain.domain,
                                           now=dt.datetime.now(dt.UTC))


#: The rule set shared with the AGT baseline (bench/agt_baseline.py), in Cedar.
FIVE_RULES = """
@id("r.read-only")
permit (principal, action == Warrant::Action::"call_tool", resource)
when { resource.risk_class == "read-only" };
@id("r.write-and-send")
permit (principal, action == Warrant::Action::"call_tool", resource)
when { resource.risk_class == "write" || resource.risk_class == "external-communication" };
@id("r.small-payments")
permit (principal, action == Warrant::Action::"call_tool", resource)
when { resource.risk_class == "money-movement" && context.num_args.hasTag("amount") &&
       context.num_args.getTag("amount") <= 1000 };
@id("r.no-destructive")
forbid (principal, action == Warrant::Action::"call_tool", resource)
when { resource.risk_class == "destructive" };
"""


def five_rules_case() -> Callable[[], object]:
    """Warrant's policy stage (encoding + Cedar + combining) on the AGT-equivalent rules."""
    compiled = policy.load_policy_set([("five.cedar", FIVE_RULES)],
                                      schema=policy.default_schema_text())
    request = policy.PolicyRequest(
        agent="spiffe://bench.example/agent/payer", tool="transfer",
        risk_class=RiskClass.MONEY_MOVEMENT, arguments={"amount": 50, "currency": "EUR"},
        agent_attrs={"owner": "finance", "risk_tier": "standard"})

    def run() -> object:
        result = compiled.evaluate(request)
        assert result.allowed, result
        return result

    return run


def agt_case() -> Callable[[], object] | None:
    try:
        # Optional: only when the bench extra is installed.
        from agt_baseline import build_agt_evaluator  # noqa: PLC0415
    except ImportError as exc:
        print(f"AGT baseline unavailable ({exc}); install with pip install -e '.[bench]'")
        return None
    evaluator = build_agt_evaluator()

    def run() -> object:
        allowed = evaluator.evaluate("transfer", {"amount": 50, "currency": "EUR"})
        assert allowed
        return allowed

    return run


def main() -> None:
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        fast = open_domain(Path(tmp) / "normal", "normal")
        durable = open_domain(Path(tmp) / "full", "full")
        rows.append(("decision (session)", measure(session_case(fast), n=10_000)))
        rows.append(("decision (remote, PoP)", measure(remote_case(fast, 5_500), n=5_000,
                                                       warmup=500)))
        rows.append(("decision (durable audit)", measure(session_case(durable), n=1_000,
                                                         warmup=100)))
        rows.append(("raw cedarpy (pre-parsed)", measure(raw_cedar_case(fast))))
        rows.append(("Warrant policy stage, AGT's 5 rules", measure(five_rules_case())))
        agt = agt_case()
        if agt is not None:
            rows.append(("AGT policy evaluation", measure(agt)))
        rows.append(("credential verify (uncached)", measure(credential_case(fast), n=5_000)))
        rows.append(("warrant verify, 3 attenuations (warm)", measure(attenuated_case(fast),
                                                                n=5_000)))
        fast.close()
        durable.close()
    results = dict(rows)
    base = results["raw cedarpy (pre-parsed)"]["p50_us"]
    ratios = {name: round(r["p50_us"] / base, 2) for name, r in rows}
    print(table(rows))
    print("\np50 relative to raw cedarpy:", ratios)
    path = write_results("decision", {"cases": results, "p50_vs_raw_cedarpy": ratios})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
