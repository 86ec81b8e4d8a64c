"""Warrant for the Agent2Agent protocol (`a2a-sdk`): sealed, verified, narrowed messages.

Sender (one interceptor on the SDK client, using the sender's warrant session):

    client = await create_client(card, interceptors=[
        SealingInterceptor(session, recipient="researcher", delegate=[ToolGrant("read_file")])])

Receiver (wrap the executor and the request handler):

    executor = GuardedExecutor(MyExecutor(), guard=guard, credential=cred, warrant=token,
                               agent_key=key)
    handler = GuardedRequestHandler(DefaultRequestHandler(executor, InMemoryTaskStore(), card),
                                    guard=guard, recipient="researcher")

A message without a valid envelope is refused with an A2A error that says why
and is audited; the executor never runs. See `_wire` for what the seal covers.
"""

from ._client import SealingInterceptor, delegating, seal_message
from ._server import GuardedExecutor, GuardedRequestHandler, inbound_message, ledger_source
from ._wire import ENVELOPE_EXTENSION, envelope_extension, sealed_body

__all__ = [
    "ENVELOPE_EXTENSION",
    "GuardedExecutor",
    "GuardedRequestHandler",
    "SealingInterceptor",
    "delegating",
    "envelope_extension",
    "inbound_message",
    "ledger_source",
    "seal_message",
    "sealed_body",
]
