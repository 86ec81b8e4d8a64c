"""The receiving side: only sealed messages reach the agent, and it acts on them narrowed.

    executor = GuardedExecutor(MyExecutor(), guard=guard, credential=cred,
                               warrant=own_token, agent_key=key)
    handler = GuardedRequestHandler(
        DefaultRequestHandler(executor, InMemoryTaskStore(), card),
        guard=guard, recipient="researcher")

`GuardedRequestHandler` verifies the envelope of every incoming message before
the SDK creates or touches a task (`Guard.receive`: credential, seal, recipient,
body digest, expiry, replay, both warrants, every delegation hop; accepted or
not, it is audited). A message without a valid envelope gets an A2A error that
says why, and nothing else happens. The envelope is taken out of the message,
so its tokens never reach the task store.

`GuardedExecutor` then runs the user's executor inside a warrant session:
under the warrant the sender handed over when there is one, otherwise under the
agent's own warrant narrowed by the sender's (a call must be allowed by both:
the confused-deputy defence). `Guard.receive` observed the message into the
sender's task ledger; when the agent acts under its own warrant (another task)
the message is also observed into that task's ledger, as untrusted content
from `message:<sender>` (see `ledger_source`), so a value the sender slipped in is
traced like any other untrusted tool result. A check that cannot run refuses
the message too. `inbound_message()` gives the executor the verified
message (sender, chain, task, body).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.events import Event, EventQueue
from a2a.server.request_handlers import RequestHandler
from a2a.types import (
    AgentCard,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
)
from a2a.utils.errors import ExtensionSupportRequiredError, InternalError, InvalidParamsError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warrant.enforce import Guard, GuardSession, InboundMessage, message_source
from warrant.errors import InvalidEnvelope

from ._wire import detach_envelope, missing_envelope, sealed_body

log = logging.getLogger("warrant.a2a")

#: `ServerCallContext.state` key under which the handler leaves the verified message.
INBOUND_STATE = "warrant.a2a.inbound"
_inbound: contextvars.ContextVar[InboundMessage | None] = contextvars.ContextVar(
    "warrant_a2a_inbound", default=None)

Token = str | Callable[[], str]


def inbound_message() -> InboundMessage:
    """The verified message the current `GuardedExecutor` run acts on."""
    message = _inbound.get()
    if message is None:
        raise LookupError("no verified A2A message in this context: call this from an "
                          "executor wrapped in `GuardedExecutor`")
    return message


def ledger_source(sender: str) -> str:
    """The data-flow source name for content received from `sender` (no `/` in it,
    so it can never be mistaken for a trusted `server/tool` name)."""
    return message_source(sender)


class GuardedRequestHandler(RequestHandler):
    """A request handler that lets through only messages with a valid warrant envelope.

    Every other method passes through unchanged: they carry no message, so
    protect them at the transport (mutual TLS, the SDK's call-context builder).
    """

    def __init__(self, handler: RequestHandler, *, guard: Guard, recipient: str):
        self._handler = handler
        self._guard = guard
        self._recipient = recipient

    def __getattr__(self, name: str) -> Any:
        # Extras of the wrapped handler (e.g. `aclose` of the default one).
        return getattr(self._handler, name)

    def admit(self, params: SendMessageRequest, context: ServerCallContext) -> InboundMessage:
        """Verify the envelope, take it out of the message, and leave the result in `context`.

        Raises the A2A error the client sees when the message is refused.
        """
        try:
            message = self._verify(params.message)
        except InvalidEnvelope as exc:
            log.warning("refused an A2A message for %s: %s", self._recipient, exc.message)
            error = (ExtensionSupportRequiredError if exc.reason == "delegation.unsealed"
                     else InvalidParamsError)
            raise error(message=f"warrant envelope refused: {exc.message}",
                        data={"reason": exc.reason}) from None
        except Exception:
            # Fail closed: a check that could not run (store or audit log down) admits nothing.
            log.exception("could not check an A2A message for %s; refusing it", self._recipient)
            raise InternalError(message="warrant envelope refused: it could not be checked",
                                data={"reason": "delegation.error"}) from None
        context.state[INBOUND_STATE] = message
        return message

    def _verify(self, message: Message) -> InboundMessage:
        raw = detach_envelope(message)
        if not isinstance(raw, Mapping):
            # `Guard.receive` records every refusal of an envelope it is given; one that
            # is absent or not even an object is recorded here, in the same shape.
            refusal = missing_envelope() if raw is None else InvalidEnvelope(
                "the envelope is not a JSON object", reason="delegation.malformed")
            self._guard.domain.record_admin("delegation.rejected", {
                "reason": refusal.reason, "message": refusal.message, "detail": None,
                "recipient": self._recipient, "transport": "a2a"})
            raise refusal
        return self._guard.receive(raw, sealed_body(message), recipient=self._recipient)

    async def on_message_send(self, params: SendMessageRequest,
                              context: ServerCallContext) -> Task | Message:
        self.admit(params, context)
        return await self._handler.on_message_send(params, context)

    async def on_message_send_stream(self, params: SendMessageRequest,
                                     context: ServerCallContext) -> AsyncGenerator[Event, None]:
        self.admit(params, context)
        async for event in self._handler.on_message_send_stream(params, context):
            yield event

    async def on_get_task(self, params: GetTaskRequest,
                          context: ServerCallContext) -> Task | None:
        return await self._handler.on_get_task(params, context)

    async def on_list_tasks(self, params: ListTasksRequest,
                            context: ServerCallContext) -> ListTasksResponse:
        return await self._handler.on_list_tasks(params, context)

    async def on_cancel_task(self, params: CancelTaskRequest,
                             context: ServerCallContext) -> Task | None:
        return await self._handler.on_cancel_task(params, context)

    async def on_create_task_push_notification_config(
            self, params: TaskPushNotificationConfig,
            context: ServerCallContext) -> TaskPushNotificationConfig:
        return await self._handler.on_create_task_push_notification_config(params, context)

    async def on_get_task_push_notification_config(
            self, params: GetTaskPushNotificationConfigRequest,
            context: ServerCallContext) -> TaskPushNotificationConfig:
        return await self._handler.on_get_task_push_notification_config(params, context)

    async def on_subscribe_to_task(self, params: SubscribeToTaskRequest,
                                   context: ServerCallContext) -> AsyncGenerator[Event, None]:
        async for event in self._handler.on_subscribe_to_task(params, context):
            yield event

    async def on_list_task_push_notification_configs(
            self, params: ListTaskPushNotificationConfigsRequest,
            context: ServerCallContext) -> ListTaskPushNotificationConfigsResponse:
        return await self._handler.on_list_task_push_notification_configs(params, context)

    async def on_delete_task_push_notification_config(
            self, params: DeleteTaskPushNotificationConfigRequest,
            context: ServerCallContext) -> None:
        await self._handler.on_delete_task_push_notification_config(params, context)

    async def on_get_extended_agent_card(self, params: GetExtendedAgentCardRequest,
                                         context: ServerCallContext) -> AgentCard:
        return await self._handler.on_get_extended_agent_card(params, context)


class GuardedExecutor(AgentExecutor):
    """Runs the wrapped executor inside the warrant session a verified message allows.

    `credential` and `warrant` are the receiving agent's own (a callable is
    asked for a fresh value on every message: credentials live minutes).
    `warrant=None` makes an agent that acts only under warrants handed to it.
    """

    def __init__(self, executor: AgentExecutor, *, guard: Guard, credential: Token,
                 agent_key: Ed25519PrivateKey, warrant: Token | None = None):
        self._executor = executor
        self._guard = guard
        self._credential = credential
        self._warrant = warrant
        self._key = agent_key

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.call_context.state.get(INBOUND_STATE)
        if not isinstance(message, InboundMessage):
            # Fail closed when the handler wrapper is missing: never act unverified.
            raise InvalidParamsError(
                message="warrant envelope refused: the message was not verified; serve this "
                        "executor through `warrant.a2a.GuardedRequestHandler`",
                data={"reason": "delegation.unverified"})
        with self.session_for(message):
            token = _inbound.set(message)
            try:
                await self._executor.execute(context, event_queue)
            finally:
                _inbound.reset(token)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await self._executor.cancel(context, event_queue)

    @contextmanager
    def session_for(self, message: InboundMessage) -> Iterator[GuardSession]:
        """The session to act on `message` in, with the message observed into its ledger."""
        credential = _value(self._credential)
        with ExitStack() as stack:
            if message.delegated is not None:
                session = stack.enter_context(self._guard.session(
                    credential=credential, warrant=message.delegated, agent_key=self._key,
                    traceparent=message.traceparent))
            elif self._warrant is not None:
                session = stack.enter_context(self._guard.session(
                    credential=credential, warrant=_value(self._warrant), agent_key=self._key))
                try:
                    stack.enter_context(session.acting_for(message))
                except InvalidEnvelope as exc:  # the handler admits for another agent
                    raise InvalidParamsError(message=f"warrant envelope refused: {exc.message}",
                                             data={"reason": exc.reason}) from None
            else:
                raise InvalidParamsError(
                    message="warrant envelope refused: the sender handed over no warrant and "
                            "this agent acts only under warrants handed to it",
                    data={"reason": "delegation.no-warrant"})
            # `Guard.receive` observed the body into the sender's task (a handed-over
            # warrant's too); `acting_for` into this agent's own task.
            yield session

def _value(token: Token) -> str:
    return token() if callable(token) else token
