"""`warrant plan`: the eight implementation phases as a workflow, with progress over time.

Items checked from system state are recomputed on every view (from a fresh
`Evidence` snapshot); manual items are marked done by a named person. Marks
live in `governance.db` in the domain home (every mark and undo is kept, with
who, when and a note) and each is also an audit record (`governance.plan-done`,
`governance.plan-undo`) written before it takes effect. Each view stores a
snapshot of per-phase progress when it changed, so progress can be charted.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warrant.enforce import TrustDomain
from warrant.errors import ConfigError, StoreError

from ._assess import run_check
from ._catalogue import Phase, PlanItem, catalogue, phases
from ._checks import resolve
from ._evidence import Evidence

GOVERNANCE_DB = "governance.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS plan_marks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, item TEXT NOT NULL, action TEXT NOT NULL,
    by TEXT NOT NULL, at REAL NOT NULL, note TEXT);
CREATE TABLE IF NOT EXISTS plan_snapshots (
    at REAL NOT NULL, phase INTEGER NOT NULL, done INTEGER NOT NULL, total INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Mark:
    item: str
    by: str
    at: float
    note: str | None


@dataclass(frozen=True, slots=True)
class ItemStatus:
    item: PlanItem
    done: bool
    #: The evidence (auto items) or who marked it done, when and why (manual items).
    detail: str
    #: What to do next when not done.
    action: str


@dataclass(frozen=True, slots=True)
class PhaseStatus:
    phase: Phase
    items: tuple[ItemStatus, ...]

    @property
    def done(self) -> int:
        return sum(i.done for i in self.items)


class PlanStore:
    """Plan marks and progress snapshots in `governance.db` (SQLite)."""

    def __init__(self, path: Path) -> None:
        try:
            self._conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None)
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the plan store `{path}`: {exc}") from exc

    def close(self) -> None:
        self._conn.close()

    def add(self, item: str, action: str, by: str, at: float, note: str | None) -> None:
        self._conn.execute("INSERT INTO plan_marks (item, action, by, at, note) "
                           "VALUES (?,?,?,?,?)", (item, action, by, at, note))

    def marks(self) -> dict[str, Mark]:
        """The items currently marked done (the latest action per item is `done`)."""
        current: dict[str, Mark] = {}
        for item, action, by, at, note in self._conn.execute(
                "SELECT item, action, by, at, note FROM plan_marks ORDER BY id"):
            if action == "done":
                current[item] = Mark(item, by, at, note)
            else:
                current.pop(item, None)
        return current

    def history(self) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT item, action, by, at, note FROM plan_marks ORDER BY id")
        return [dict(zip(("item", "action", "by", "at", "note"), r, strict=True)) for r in rows]

    def snapshot(self, counts: list[tuple[int, int, int]], at: float) -> bool:
        """Store per-phase (phase, done, total) if it differs from the last one."""
        last = self._conn.execute("SELECT MAX(at) FROM plan_snapshots").fetchone()[0]
        previous = sorted(self._conn.execute(
            "SELECT phase, done, total FROM plan_snapshots WHERE at = ?", (last,)))
        if previous == sorted(counts):
            return False
        self._conn.executemany("INSERT INTO plan_snapshots VALUES (?,?,?,?)",
                               [(at, p, d, t) for p, d, t in counts])
        return True

    def snapshots(self) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT at, phase, done, total FROM plan_snapshots "
                                  "ORDER BY at, phase")
        return [dict(zip(("at", "phase", "done", "total"), r, strict=True)) for r in rows]


def open_store(domain: TrustDomain) -> PlanStore:
    return PlanStore(domain.home / GOVERNANCE_DB)


def _item(item_id: str) -> PlanItem:
    for phase in phases():
        for item in phase.items:
            if item.id == item_id:
                return item
    raise ConfigError(f"no plan item `{item_id}`", hint="list the items with `warrant plan show`")


def person(by: str) -> str:
    """`alice` or `user:alice` → `user:alice`; agents and blank names are refused."""
    name = by.strip().removeprefix("user:")
    if not name or any(c.isspace() for c in name) or "://" in name:
        raise ConfigError(f"`{by}` must name a person (`alice` or `user:alice`)",
                          hint="agents can never sign off plan items")
    return f"user:{name}"


def mark_done(domain: TrustDomain, store: PlanStore, item_id: str, *, by: str,
              note: str | None = None) -> Mark:
    """Mark a manual item done; audited before it is stored."""
    item, who, now = _item(item_id), person(by), time.time()
    if not item.manual:
        source = f"control `{item.control}`" if item.control else f"check `{item.check}`"
        raise ConfigError(f"plan item `{item_id}` is checked from the system ({source})",
                          hint="fix what the check reports; `warrant plan show` says what")
    domain.record_admin("governance.plan-done", {"item": item_id, "by": who, "note": note})
    store.add(item_id, "done", who, now, note)
    return Mark(item_id, who, now, note)


def undo(domain: TrustDomain, store: PlanStore, item_id: str, *, by: str) -> None:
    item, who = _item(item_id), person(by)
    if item_id not in store.marks():
        raise ConfigError(f"plan item `{item.id}` is not marked done")
    domain.record_admin("governance.plan-undo", {"item": item_id, "by": who})
    store.add(item_id, "undo", who, time.time(), None)


def status(evidence: Evidence, marks: dict[str, Mark]) -> tuple[PhaseStatus, ...]:
    """Every phase with its items checked now (auto) or as marked (manual)."""
    controls = {c.id: c for c in catalogue()}
    result = []
    for phase in phases():
        items = []
        for item in phase.items:
            if item.control is not None:
                control = controls[item.control]
                r = run_check(control, evidence)
                items.append(ItemStatus(item, r.satisfied, r.evidence, control.remedy))
            elif item.check is not None:
                r = resolve(item.check)(evidence)
                items.append(ItemStatus(item, r.satisfied, r.evidence, r.reason))
            else:
                mark = marks.get(item.id)
                detail = _signed_off(mark) if mark else "not done"
                items.append(ItemStatus(item, mark is not None, detail,
                                        f"when done: `warrant plan done {item.id} --by NAME`"))
        result.append(PhaseStatus(phase, tuple(items)))
    return tuple(result)


def _signed_off(mark: Mark) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(mark.at))
    return f"done by {mark.by} at {when} UTC" + (f": {mark.note}" if mark.note else "")


def next_actions(plan: tuple[PhaseStatus, ...], limit: int = 5) -> list[ItemStatus]:
    """The first open items, earliest phase first."""
    return [i for p in plan for i in p.items if not i.done][:limit]
