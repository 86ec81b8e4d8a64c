"""How a warrant envelope rides on an A2A message: the wire contract, version 1.

The envelope (`Envelope.to_json()`: seal, credential, warrant, and the warrant
handed over, if any) travels in the message's metadata under the extension URI
`ENVELOPE_EXTENSION`, as the A2A spec asks of extension data. Agents that
enforce it declare the extension as required in their agent card
(`envelope_extension()`); a sealing client names it in the `A2A-Extensions`
service parameter and in `Message.extensions`.

What the seal's body digest covers (`sealed_body`): the whole A2A `Message` in
its proto3 JSON form (`google.protobuf.json_format.MessageToDict` with its
defaults, which is what the SDK puts on the wire) without the envelope itself:
message id, context and task ids, role, every part (text, data, raw bytes as
base64, URLs, their media types and metadata), extensions, reference task ids
and any other metadata. Both sides compute it from a protobuf `Message`, so
they agree byte for byte after Warrant's canonical JSON, whatever the JSON on
the wire looked like. A message whose metadata holds nothing but the envelope
is digested without a `metadata` member (the sender seals before it attaches).
"""

from __future__ import annotations

from typing import Any

from a2a.types import AgentExtension, Message
from google.protobuf import json_format

from warrant.enforce import Envelope
from warrant.errors import InvalidEnvelope

#: The extension URI; also the metadata key the envelope travels under. A new
#: wire format gets a new URI.
ENVELOPE_EXTENSION = "urn:warrant:a2a:envelope:v1"


def envelope_extension(*, required: bool = True) -> AgentExtension:
    """The agent-card entry announcing that this agent accepts only sealed messages."""
    return AgentExtension(
        uri=ENVELOPE_EXTENSION, required=required,
        description="Every message carries a Warrant envelope: the sender's signed seal over "
                    "this message, its credential and its task warrant (and the narrowed "
                    "warrant it hands over, if any). Unsealed messages are refused.")


def sealed_body(message: Message) -> dict[str, Any]:
    """The JSON value the envelope's body digest covers (see the module docstring)."""
    body: dict[str, Any] = json_format.MessageToDict(message)
    metadata = body.pop("metadata", None)
    if isinstance(metadata, dict):
        metadata.pop(ENVELOPE_EXTENSION, None)
        if metadata:
            body["metadata"] = metadata
    return body


def attach_envelope(message: Message, envelope: Envelope) -> None:
    """Put `envelope` in `message`'s metadata (replacing an earlier one)."""
    message.metadata[ENVELOPE_EXTENSION] = envelope.to_json()


def announce_extension(message: Message) -> None:
    """Name the extension in `message.extensions` (before sealing: the list is sealed too)."""
    if ENVELOPE_EXTENSION not in message.extensions:
        message.extensions.append(ENVELOPE_EXTENSION)


def detach_envelope(message: Message) -> object | None:
    """Take the envelope (as received, unparsed JSON) out of `message`'s metadata.

    None when there is none. The envelope is removed before anyone parses it,
    so its tokens never reach the task store; `Guard.receive` parses and checks it.
    """
    if ENVELOPE_EXTENSION not in message.metadata:
        return None
    raw: object = json_format.MessageToDict(message.metadata)[ENVELOPE_EXTENSION]
    del message.metadata[ENVELOPE_EXTENSION]
    return raw


def missing_envelope() -> InvalidEnvelope:
    """The refusal for a message that carries no envelope at all."""
    return InvalidEnvelope(
        f"the message carries no warrant envelope (metadata `{ENVELOPE_EXTENSION}`); "
        "seal it with `warrant.a2a.seal_message` or the `SealingInterceptor`",
        reason="delegation.unsealed")
