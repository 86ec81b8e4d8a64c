"""The sending side: seal an outgoing A2A message with the sender's warrant session.

    with guard.session(credential=cred, warrant=token, agent_key=key) as session:
        client = await create_client(card, interceptors=[
            SealingInterceptor(session, recipient="researcher")])
        ...send_message(SendMessageRequest(message=msg))   # sealed on the way out

or, for one message, `seal_message(session, msg, recipient="researcher")`.
Handing work over narrows the sender's warrant for the recipient:
`delegate=[ToolGrant("read_file")]` (per client), or per call with
`context=delegating([ToolGrant(...)])`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from a2a.client import ClientCallContext, ClientCallInterceptor
from a2a.client.interceptors import AfterArgs, BeforeArgs
from a2a.client.service_parameters import ServiceParametersFactory, with_a2a_extensions
from a2a.types import Message, SendMessageRequest

from warrant.enforce import Envelope, GuardSession
from warrant.warrants import ToolGrant

from ._wire import ENVELOPE_EXTENSION, announce_extension, attach_envelope, sealed_body

#: `ClientCallContext.state` key: the grants to hand over with this one call.
DELEGATE_STATE = "warrant.a2a.delegate"
#: The client methods that carry a new message (and so need a fresh seal).
_SENDING_METHODS = frozenset({"send_message", "send_message_streaming"})


def seal_message(session: GuardSession, message: Message, *, recipient: str,
                 delegate: Sequence[ToolGrant] | None = None,
                 ttl_seconds: int = 300) -> Envelope:
    """Seal `message` for `recipient` with `session`'s warrant, in place, and return the envelope.

    `delegate` hands the recipient a warrant narrowed to those grants (holder =
    recipient, signed with the sender's key); None hands nothing over, and the
    recipient acts with its own warrant intersected with the sender's. Each call
    makes a new single-use seal: a message sent twice must be sealed twice.
    """
    announce_extension(message)
    envelope = session.seal(recipient=recipient, body=sealed_body(message),
                            delegate=list(delegate) if delegate is not None else None,
                            ttl_seconds=ttl_seconds)
    attach_envelope(message, envelope)
    return envelope


def delegating(grants: Sequence[ToolGrant],
               context: ClientCallContext | None = None) -> ClientCallContext:
    """A call context that makes `SealingInterceptor` hand `grants` over with this call."""
    context = context or ClientCallContext()
    context.state[DELEGATE_STATE] = tuple(grants)
    return context


class SealingInterceptor(ClientCallInterceptor):
    """Seals every message an A2A client sends, for one recipient agent.

    The session is used from the client's event loop: open it in the same
    thread that drives the client.
    """

    def __init__(self, session: GuardSession, *, recipient: str,
                 delegate: Sequence[ToolGrant] | None = None, ttl_seconds: int = 300):
        self._session = session
        self._recipient = recipient
        self._delegate = tuple(delegate) if delegate is not None else None
        self._ttl = ttl_seconds

    async def before(self, args: BeforeArgs) -> None:
        if args.method not in _SENDING_METHODS:
            return
        request = args.input
        if not isinstance(request, SendMessageRequest):
            raise TypeError(f"`{args.method}` was called with {type(request).__name__}, "
                            "not a SendMessageRequest; it cannot be sealed")
        context = args.context or ClientCallContext()
        delegate = _delegate_from(context.state.get(DELEGATE_STATE), self._delegate)
        seal_message(self._session, request.message, recipient=self._recipient,
                     delegate=delegate, ttl_seconds=self._ttl)
        # Announce the extension the way the SDK requests extensions (a header on HTTP).
        context.service_parameters = ServiceParametersFactory.create_from(
            context.service_parameters, [with_a2a_extensions([ENVELOPE_EXTENSION])])
        args.context = context

    async def after(self, args: AfterArgs) -> None:
        return None


def _delegate_from(per_call: Any, default: tuple[ToolGrant, ...] | None,
                   ) -> tuple[ToolGrant, ...] | None:
    if per_call is None:
        return default
    grants = tuple(per_call) if isinstance(per_call, list | tuple) else None
    if grants is None or not all(isinstance(g, ToolGrant) for g in grants):
        # A typo here must not silently send the work without (or with more) authority.
        raise TypeError(f"`{DELEGATE_STATE}` must be a sequence of ToolGrant values")
    return grants
