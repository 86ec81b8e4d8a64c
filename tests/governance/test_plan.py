"""`warrant plan`: the eight phases, auto-checked items, signed-off manual items, progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from warrant.enforce import TrustDomain
from warrant.errors import ConfigError
from warrant.governance import mark_done, next_actions, phases, plan_status, undo
from warrant.governance._plan import ItemStatus, PhaseStatus, open_store, person

from .conftest import Deployment, build_weak


def test_the_plan_has_eight_phases_whose_items_are_auto_or_manual() -> None:
    plan = phases()
    assert [p.number for p in plan] == list(range(1, 9))
    items = [i for p in plan for i in p.items]
    assert len({i.id for i in items}) == len(items)
    assert any(i.manual for i in items)
    assert any(i.control for i in items)


def test_auto_items_follow_the_deployment(strong: Deployment, weak: Deployment) -> None:
    strong_plan = plan_status(strong.evidence(), {})
    weak_plan = plan_status(weak.evidence(), {})
    item = "credentials.not-in-code"
    assert _item(strong_plan, item).done
    assert not _item(weak_plan, item).done
    assert "set" not in _item(weak_plan, item).detail
    # The next action of an unmet auto item is the control's remedy.
    assert "gateway config" in _item(weak_plan, item).action
    assert next_actions(weak_plan)[0].item.id == "requirements.regulations"


def _item(plan: tuple[PhaseStatus, ...], item_id: str) -> ItemStatus:
    for phase in plan:
        for status in phase.items:
            if status.item.id == item_id:
                return status
    raise AssertionError(item_id)


def test_a_manual_item_is_signed_off_audited_and_can_be_reopened(tmp_path: Path) -> None:
    deployment = build_weak(tmp_path)
    with TrustDomain.open(deployment.home) as domain:
        store = open_store(domain)
        try:
            mark = mark_done(domain, store, "supply.ai-bom", by="alice", note="BOM-42")
            assert mark.by == "user:alice"
            plan = plan_status(deployment.evidence(), store.marks())
            done = _item(plan, "supply.ai-bom")
            assert done.done
            assert "user:alice" in done.detail and "BOM-42" in done.detail
            undo(domain, store, "supply.ai-bom", by="bob")
            assert "supply.ai-bom" not in store.marks()
            assert [h["action"] for h in store.history()] == ["done", "undo"]
        finally:
            store.close()
        actions = [e.record.tool for e in domain.audit.tail(2)]
    assert actions == ["governance.plan-done", "governance.plan-undo"]


def test_auto_items_and_unknown_items_cannot_be_marked_by_hand(weak: Deployment) -> None:
    with TrustDomain.open(weak.home) as domain:
        store = open_store(domain)
        try:
            with pytest.raises(ConfigError, match="checked from the system"):
                mark_done(domain, store, "boundaries.least-agency", by="alice")
            with pytest.raises(ConfigError, match="no plan item"):
                mark_done(domain, store, "nope.nothing", by="alice")
            with pytest.raises(ConfigError, match="not marked done"):
                undo(domain, store, "supply.ai-bom", by="alice")
        finally:
            store.close()


@pytest.mark.parametrize("who", ["", "  ", "spiffe://acme.example/agent/billing", "a b"])
def test_only_a_person_signs_off(who: str) -> None:
    with pytest.raises(ConfigError, match="must name a person"):
        person(who)


def test_progress_snapshots_are_stored_only_when_progress_changes(tmp_path: Path) -> None:
    deployment = build_weak(tmp_path)
    with TrustDomain.open(deployment.home) as domain:
        store = open_store(domain)
        try:
            counts = [(1, 0, 3), (2, 1, 3)]
            assert store.snapshot(counts, 1.0)
            assert not store.snapshot(counts, 2.0)
            assert store.snapshot([(1, 1, 3), (2, 1, 3)], 3.0)
            assert [s["at"] for s in store.snapshots()] == [1.0, 1.0, 3.0, 3.0]
        finally:
            store.close()
