"""Detections indexed by the records they read, so each record meets only its readers.

The engine's listener runs on the thread that appends the audit record, i.e.
inside the decision path: with every detection called on every record, a
decision paid for the canary scan, the admin-action matchers and the
delegation watchers alike. Indexed, a decision meets only the detections that
read decisions, and an admin record only those that read its action.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from warrant.audit import AuditRecord

from ._model import Detection

#: Admin actions remembered per index (actions are names in code, so this is never
#: reached in practice; past it, routes are computed per record instead of cached).
MAX_ACTIONS = 1024


class DetectionIndex:
    """`route(record)`: the detections that read `record`, in their original order."""

    __slots__ = ("_by_action", "_by_kind", "_detections")

    def __init__(self, detections: Iterable[Detection]):
        self._detections = tuple(detections)
        # Record kinds are a closed set (the audit record validates them), so
        # this cache holds a handful of entries.
        self._by_kind: dict[str, tuple[Detection, ...]] = {}
        self._by_action: dict[str, tuple[Detection, ...]] = {}

    def __len__(self) -> int:
        return len(self._detections)

    def __iter__(self) -> Iterator[Detection]:
        return iter(self._detections)

    def route(self, record: AuditRecord) -> tuple[Detection, ...]:
        kind = record.kind
        if kind == "admin":
            action = record.tool or ""
            found = self._by_action.get(action)
            if found is None:
                found = self._select(kind, action)
                if len(self._by_action) < MAX_ACTIONS:
                    self._by_action[action] = found
            return found
        found = self._by_kind.get(kind)
        if found is None:
            found = self._by_kind[kind] = self._select(kind, None)
        return found

    def _select(self, kind: str, action: str | None) -> tuple[Detection, ...]:
        return tuple(d for d in self._detections
                     if (d.kinds is None or kind in d.kinds)
                     and (action is None or not d.actions or action in d.actions))
