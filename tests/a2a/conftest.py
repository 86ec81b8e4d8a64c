"""Real A2A agents on loopback: the SDK's server (uvicorn on 127.0.0.1) and client.

Each receiving agent is the SDK's `DefaultRequestHandler` + JSON-RPC routes in
Starlette, served by uvicorn on a socket bound before the server starts (so the
client can connect at once, no waiting). Its executor is a tiny "tool agent":
the message's data part names a tool and its arguments, and the executor calls
that guarded tool and answers with the result or the denial.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import uvicorn
from a2a.client import Client, ClientCallInterceptor, ClientConfig, create_client
from a2a.helpers import get_data_parts, get_message_text, new_data_part, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler, RequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Message,
    Role,
    SendMessageRequest,
)
from a2a.utils.constants import PROTOCOL_VERSION_CURRENT
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette

from warrant import warrants
from warrant.a2a import GuardedExecutor, GuardedRequestHandler, envelope_extension, inbound_message
from warrant.audit import AuditRecord
from warrant.enforce import Denied, Guard, InboundMessage, TrustDomain

#: Generous bound for one exchange over loopback (never a timing assertion).
EXCHANGE_TIMEOUT_S = 30


@dataclass
class Kit:
    """An agent as a test drives it."""

    name: str
    agent_id: str
    key: Ed25519PrivateKey
    credential: str
    warrant: str
    task_id: str


def enrol(domain: TrustDomain, name: str, tools: tuple[str, ...], *,
          max_depth: int = 0) -> Kit:
    record, _ = domain.register_agent(name, owner="research", purpose=f"{name} in the tests")
    issued = domain.issue_credential(name)
    task_id, token = domain.mint(agent=name, task=f"{name}'s task",
                                 tools=[warrants.parse_tool_spec(t) for t in tools],
                                 on_behalf_of="user:alice", total_budget=20,
                                 max_depth=max_depth)
    return Kit(name=name, agent_id=record.agent_id, key=domain.agent_key(name),
               credential=issued.token, warrant=token, task_id=task_id)


def tool_request(tool: str, **arguments: object) -> Message:
    """A user-role message asking the receiving agent to call `tool`."""
    message = new_text_message(f"please call {tool}", role=Role.ROLE_USER)
    message.parts.append(new_data_part({"tool": tool, "arguments": arguments}))
    return message


@dataclass
class ToolAgent(AgentExecutor):
    """Calls the tool the message names (with the guard deciding) and says what happened."""

    tools: dict[str, Callable[..., object]]
    seen: list[InboundMessage] = field(default_factory=list)
    #: The metadata keys of each message as the SDK handed it to the executor.
    metadata_keys: list[set[str]] = field(default_factory=list)

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = inbound_message()
        self.seen.append(message)
        assert context.message is not None
        self.metadata_keys.append(set(context.message.metadata.keys()))
        request = get_data_parts(list(context.message.parts))[0]
        try:
            answer = f"ok: {self.tools[request['tool']](**request['arguments'])}"
        except Denied as exc:
            codes = ",".join(r.code for r in exc.decision.reasons)
            answer = f"{exc.decision.effect.value}: {codes}"
        await event_queue.enqueue_event(new_text_message(answer, role=Role.ROLE_AGENT))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


def guarded_tools(guard: Guard) -> dict[str, Callable[..., object]]:
    """The receiving agent's tools, each guarded by `guard`; `calls` records what ran."""
    calls: list[str] = []

    @guard.tool(risk="read-only")
    def read_file(path: str) -> str:
        calls.append(f"read_file {path}")
        return f"contents of {path}"

    @guard.tool(risk="external-communication")
    def send_email(to: str, body: str) -> str:
        calls.append(f"send_email {to}")
        return "sent"

    return {"read_file": read_file, "send_email": send_email}


@dataclass
class RunningAgent:
    url: str
    card: AgentCard
    executor: ToolAgent

    async def client(self, *interceptors: ClientCallInterceptor,
                     streaming: bool = False) -> Client:
        return await create_client(self.card, ClientConfig(streaming=streaming),
                                   interceptors=list(interceptors))


@asynccontextmanager
async def serve_agent(guard: Guard, kit: Kit, *, own_warrant: bool = True,
                      streaming: bool = False, verify: bool = True,
                      admit_for: str | None = None) -> AsyncIterator[RunningAgent]:
    """`kit`'s agent as a real A2A server on a free 127.0.0.1 port, wrapped by Warrant.

    Misconfigurations: `verify=False` leaves out the verifying request handler;
    `admit_for` makes the handler admit messages for another agent than `kit`.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    card = AgentCard(
        name=kit.name, description=f"{kit.name} (tests)", version="1.0.0",
        supported_interfaces=[AgentInterface(protocol_binding="JSONRPC", url=url,
                                             protocol_version=PROTOCOL_VERSION_CURRENT)],
        capabilities=AgentCapabilities(streaming=streaming, extensions=[envelope_extension()]),
        default_input_modes=["text/plain"], default_output_modes=["text/plain"],
        skills=[AgentSkill(id="tools", name="tools", description="calls tools", tags=["t"])])
    tool_agent = ToolAgent(guarded_tools(guard))
    executor = GuardedExecutor(tool_agent, guard=guard, credential=kit.credential,
                               warrant=kit.warrant if own_warrant else None, agent_key=kit.key)
    handler: RequestHandler = DefaultRequestHandler(executor, InMemoryTaskStore(), card)
    if verify:
        handler = GuardedRequestHandler(handler, guard=guard,
                                        recipient=admit_for or kit.name)
    app = Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/")])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        try:
            yield RunningAgent(url=url, card=card, executor=tool_agent)
        finally:
            server.should_exit = True


async def send(client: Client, message: Message, **kwargs: Any) -> str:
    """Send one message and return the agent's text answer."""
    answers = [event async for event in client.send_message(
        SendMessageRequest(message=message), **kwargs)]
    assert len(answers) == 1 and answers[0].HasField("message"), answers
    return get_message_text(answers[0].message)


def run(body: Callable[[], Any]) -> None:
    """Run an async test body with a bound on the whole exchange."""
    async def bounded() -> None:
        with anyio.fail_after(EXCHANGE_TIMEOUT_S):
            await body()
    anyio.run(bounded)


def audit_records(domain: TrustDomain, count: int = 40) -> list[AuditRecord]:
    return [entry.record for entry in domain.audit.tail(count)]


@pytest.fixture
def guards(domain: TrustDomain) -> tuple[Guard, Guard]:
    """The sender's and the receiver's enforcement points (one process, one domain)."""
    return Guard(domain), Guard(domain)
