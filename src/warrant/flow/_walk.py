"""Walking JSON-like values within fixed bounds."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 32
MAX_LEAVES = 20_000
#: JSON text up to this size inside a string is parsed and walked as structure.
MAX_JSON_CHARS = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Leaf:
    path: str
    text: str
    #: The mapping this leaf is a direct field of (None for a bare value or a list item).
    record: int | None


class Bounds:
    """Counts what a walk skipped, so the caller can refuse to vouch for it."""

    def __init__(self) -> None:
        self.exceeded = False


def leaves(value: Any, bounds: Bounds, path: str = "$", *,
           expand_json: bool = False) -> Iterator[Leaf]:
    """Every scalar in `value` as text, depth-first, at most MAX_LEAVES of them."""
    count = 0
    stack: list[tuple[str, Any, int, int | None]] = [(path, value, 0, None)]
    while stack:
        where, item, depth, record = stack.pop()
        if depth > MAX_DEPTH:
            bounds.exceeded = True
            continue
        if isinstance(item, Mapping):
            rid = id(item)
            for key, child in reversed(list(item.items())):
                stack.append((f"{where}.{key}", child, depth + 1, rid))
            continue
        if isinstance(item, list | tuple):
            for i, child in reversed(list(enumerate(item))):
                stack.append((f"{where}[{i}]", child, depth + 1, None))
            continue
        if item is None or isinstance(item, bool):
            continue
        count += 1
        if count > MAX_LEAVES:
            bounds.exceeded = True
            return
        if isinstance(item, bytes | bytearray | memoryview):
            text = bytes(item).decode("utf-8", "replace")
        else:
            text = item if isinstance(item, str) else str(item)
        parsed = _json_text(text) if expand_json else None
        if parsed is not None:
            # JSON inside a string (an MCP text block) is walked as the structure it is,
            # so its record fields count as fields.
            stack.append((where, parsed, depth + 1, record))
            continue
        yield Leaf(where, text, record)


def _json_text(text: str) -> Any:
    stripped = text.strip()
    if len(stripped) < 2 or len(stripped) > MAX_JSON_CHARS or stripped[0] not in "[{":
        return None
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict | list) else None
