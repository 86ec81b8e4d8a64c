"""Walking JSON-like values within fixed bounds."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 32
MAX_LEAVES = 20_000


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


def leaves(value: Any, bounds: Bounds, path: str = "$") -> Iterator[Leaf]:
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
        yield Leaf(where, text, record)
