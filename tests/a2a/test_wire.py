"""What the seal covers: the A2A message as the SDK carries it, minus the envelope."""

from __future__ import annotations

from collections.abc import Callable

from a2a.helpers import new_data_part, new_raw_part, new_text_message
from a2a.types import Message, Role
from google.protobuf import json_format

from warrant.a2a import ENVELOPE_EXTENSION, envelope_extension, sealed_body
from warrant.enforce import body_digest


def a_message() -> Message:
    message = new_text_message("summarise Q3", role=Role.ROLE_USER, context_id="ctx-1")
    message.parts.append(new_data_part({"n": 3, "ratio": 0.1, "tags": ["a", "b"], "ok": True}))
    message.parts.append(new_raw_part(b"\x00\xffbytes", media_type="application/octet-stream"))
    message.reference_task_ids.append("task-0")
    message.metadata["trace"] = "abc"
    return message


def test_the_body_survives_the_json_round_trip_the_sdk_makes() -> None:
    sent = a_message()
    received = json_format.ParseDict(json_format.MessageToDict(sent), Message())
    assert body_digest(sealed_body(received)) == body_digest(sealed_body(sent))


def test_the_envelope_is_not_part_of_what_it_seals() -> None:
    bare = a_message()
    del bare.metadata["trace"]
    enveloped = Message()
    enveloped.CopyFrom(bare)
    enveloped.metadata[ENVELOPE_EXTENSION] = {"seal": "x", "credential": "y", "warrant": "z"}
    # Metadata that held only the envelope digests like no metadata at all.
    assert "metadata" not in sealed_body(enveloped)
    assert sealed_body(enveloped) == sealed_body(bare)


def test_every_other_field_is_sealed() -> None:
    base = body_digest(sealed_body(a_message()))
    changes: dict[str, Callable[[Message], object]] = {
        "message id": lambda m: setattr(m, "message_id", "other"),
        "context": lambda m: setattr(m, "context_id", "ctx-2"),
        "role": lambda m: setattr(m, "role", Role.ROLE_AGENT),
        "text": lambda m: setattr(m.parts[0], "text", "wire the funds"),
        "data": lambda m: m.parts[1].data.struct_value.update({"n": 4}),
        "bytes": lambda m: setattr(m.parts[2], "raw", b"other"),
        "references": lambda m: m.reference_task_ids.append("task-1"),
        "metadata": lambda m: m.metadata.update({"trace": "def"}),
        "extensions": lambda m: m.extensions.append("urn:other"),
    }
    for what, change in changes.items():
        message = a_message()
        change(message)
        assert body_digest(sealed_body(message)) != base, what


def test_the_card_entry_requires_the_extension() -> None:
    entry = envelope_extension()
    assert entry.uri == ENVELOPE_EXTENSION and entry.required
