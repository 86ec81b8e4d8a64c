"""Fixtures shared by the whole suite: a real trust domain on disk, an agent, tokens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, settings

from warrant import identity, warrants
from warrant.enforce import CallRequest, TrustDomain
from warrant.types import RiskClass, ToolCall, ToolInfo

DOMAIN = "acme.example"

# CI runs on a shared 2-core machine: property tests judge what an input does, not how
# fast one example ran there (an example that is slow under load is not a failure).
settings.register_profile("warrant", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("warrant")


@pytest.fixture
def domain(tmp_path: Path) -> Iterator[TrustDomain]:
    """A fresh trust domain (real keys, real SQLite, the default policy pack)."""
    created = TrustDomain.init(tmp_path / "home", DOMAIN)
    for name, risk in (("read_file", RiskClass.READ_ONLY), ("send_email",
                       RiskClass.EXTERNAL_COMMUNICATION), ("transfer", RiskClass.MONEY_MOVEMENT),
                       ("drop_table", RiskClass.DESTRUCTIVE)):
        created.store.put_tool(ToolInfo(name=name, risk_class=risk), time.time())
    yield created
    created.close()


@dataclass
class AgentKit:
    """An agent as a test drives it: its name, id, private key, credential and warrant."""

    name: str
    agent_id: str
    key: Ed25519PrivateKey
    credential: str
    warrant: str
    task_id: str

    def request(self, tool: str, warrant: str | None = None, proof: bool = True,
                **arguments: object) -> CallRequest:
        return self.request_call(ToolCall(tool=tool, arguments=arguments), warrant=warrant,
                                 proof=proof)

    def request_call(self, call: ToolCall, warrant: str | None = None,
                     proof: bool = True) -> CallRequest:
        """Like `request`, for a call built by the caller (arguments from a dict)."""
        token = warrant or self.warrant
        pop = identity.make_proof(self.key, credential_token=self.credential,
                                  tool=call.qualified_name, argument_digest=call.argument_digest(),
                                  warrant_token=token, now=time.time()) if proof else None
        return CallRequest(call=call, credential=self.credential, warrant=token, proof=pop)


def make_agent(domain: TrustDomain, name: str = "billing",
               tools: tuple[str, ...] = ("read_file", "send_email:to^=ops@",
                                         "transfer:amount=0..100@2"),
               total_budget: int | None = 10, instruction: str | None = None) -> AgentKit:
    record, _ = domain.register_agent(name, owner="finance", purpose="pays invoices")
    issued = domain.issue_credential(name)
    task_id, token = domain.mint(agent=name, task="pay the invoice",
                                 tools=[warrants.parse_tool_spec(t) for t in tools],
                                 on_behalf_of="user:alice", total_budget=total_budget,
                                 instruction=instruction)
    return AgentKit(name=name, agent_id=record.agent_id, key=domain.agent_key(name),
                    credential=issued.token, warrant=token, task_id=task_id)


@pytest.fixture
def agent(domain: TrustDomain) -> AgentKit:
    return make_agent(domain)
