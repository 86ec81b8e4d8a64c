"""Provenance labels and the flow labels policy sees.

A tool result is labelled where it enters the session: which tool and server it
came from, its integrity (trusted: the user's own instruction; untrusted:
anything a tool returned) and its confidentiality. A call's arguments are then
traced back to those labels, and the outcome is summarised as the flow labels
below, which reach Cedar in `context.labels` (see the default pack's flow
rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Integrity(str, Enum):
    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"


class Confidentiality(str, Enum):
    PUBLIC = "public"
    INTERNAL = "internal"
    SECRET = "secret"  # noqa: S105 - a label, not a password


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a piece of content came from: `source` is `server/tool` (or `user`)."""

    source: str
    integrity: Integrity = Integrity.UNTRUSTED
    confidentiality: Confidentiality = Confidentiality.INTERNAL


#: An argument carries a value the session saw in untrusted content (and the
#: user's instruction did not give).
UNTRUSTED = "untrusted"
#: An argument carries a value found only inside content the injection detector
#: flagged as instructions (a field of the record holding it: `INJECTED_RECORD`).
INJECTED = "injected"
#: An argument carries a field of a record that holds content the detector
#: flagged (the id or sender of an email with an injected body), seen nowhere
#: else: not the injected text itself, but nothing vouches for it either.
INJECTED_RECORD = "injected-record"
#: An argument repeats, character for character, a bare listed item (a string in
#: a list a tool returned: a channel's name) whose text was flagged: it names that
#: item; it is not a part of the injected text picked out of it.
INJECTED_ITEM = "injected-item"
#: An argument names a destination (email, IBAN, URL, phone) that neither the
#: user's instruction gave nor any tool returned as a record field: it came from
#: free text the attacker may have written, or from nowhere (the model made it).
DESTINATION_UNVERIFIED = "destination-unverified"
#: The unverified destination was seen in untrusted free text.
DESTINATION_FROM_TEXT = "destination-from-untrusted-text"
#: The unverified destination was seen nowhere: the model composed it (and
#: could have encoded data in it).
DESTINATION_INVENTED = "destination-invented"
#: A short value (an id, a name: field-sized, not free text) that neither the
#: user's instruction gave nor a tool returned as a record field: it was read in
#: free text or seen nowhere. What a destructive call acts on must be vouched for
#: like a destination (an injected "delete the file with ID 13" names a real id).
TARGET_UNVERIFIED = "target-unverified"
#: The session has read content the injection detector flagged as instructions:
#: the agent may be following them from now on (assume breach).
AFTER_INJECTION = "after-injection"
#: A human refused a call this session made (a held exfiltration, say): the agent
#: acted against its user once, so it is assumed to be doing so still.
AFTER_REFUSAL = "after-refused-call"
#: Some argument carries data beyond a destination and the user's own words:
#: something read from a tool or composed by the model would leave with the call.
CARRIES_PAYLOAD = "carries-payload"
#: An argument carries data from a result labelled secret.
SECRET = "secret"  # noqa: S105 - a label, not a password
#: The ledger cannot vouch for this session (it overflowed or was lost), so
#: every value must be treated as untrusted.
LEDGER_INCOMPLETE = "ledger-incomplete"

FLOW_LABELS = frozenset({UNTRUSTED, INJECTED, INJECTED_RECORD, INJECTED_ITEM,
                         DESTINATION_UNVERIFIED, DESTINATION_FROM_TEXT, DESTINATION_INVENTED,
                         TARGET_UNVERIFIED,
                         AFTER_INJECTION, AFTER_REFUSAL, CARRIES_PAYLOAD, SECRET,
                         LEDGER_INCOMPLETE})
