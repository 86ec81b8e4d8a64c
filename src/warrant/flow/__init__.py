"""Data flow: provenance labels, the session ledger, and the trace of a call's arguments.

A leaf: it knows nothing of policy or detectors. The enforcement pipeline feeds
it tool results (with a span finder from the injection detector) and asks it,
for each call, which arguments carry untrusted, injected or secret data; the
answer's labels reach Cedar in `context.labels`.
"""

from ._atoms import DESTINATIONS, Atom, atoms, normalise
from ._labels import (
    AFTER_INJECTION,
    AFTER_REFUSAL,
    CARRIES_PAYLOAD,
    DESTINATION_FROM_TEXT,
    DESTINATION_INVENTED,
    DESTINATION_UNVERIFIED,
    FLOW_LABELS,
    INJECTED,
    INJECTED_ITEM,
    INJECTED_RECORD,
    LEDGER_INCOMPLETE,
    SECRET,
    TARGET_UNVERIFIED,
    UNTRUSTED,
    Confidentiality,
    Integrity,
    Provenance,
)
from ._ledger import DEFAULT_LIMIT_CHARS, FlowTrace, Ledger, SpanFinder
from ._spotlight import DATAMARK, SpotlightMode, spotlight

__all__ = [
    "AFTER_INJECTION",
    "AFTER_REFUSAL",
    "CARRIES_PAYLOAD",
    "DATAMARK",
    "DEFAULT_LIMIT_CHARS",
    "DESTINATIONS",
    "DESTINATION_FROM_TEXT",
    "DESTINATION_INVENTED",
    "DESTINATION_UNVERIFIED",
    "FLOW_LABELS",
    "INJECTED",
    "INJECTED_ITEM",
    "INJECTED_RECORD",
    "LEDGER_INCOMPLETE",
    "SECRET",
    "TARGET_UNVERIFIED",
    "UNTRUSTED",
    "Atom",
    "Confidentiality",
    "FlowTrace",
    "Integrity",
    "Ledger",
    "Provenance",
    "SpanFinder",
    "SpotlightMode",
    "atoms",
    "normalise",
    "spotlight",
]
