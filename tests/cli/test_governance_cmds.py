"""`warrant assess` and `warrant plan` as a user runs them: real processes, real domains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.governance.conftest import Deployment, build_strong, build_weak

from ._run import warrant


@pytest.fixture(scope="module")
def weak(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return build_weak(tmp_path_factory.mktemp("cli-governance"))


@pytest.fixture(scope="module")
def strong(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return build_strong(tmp_path_factory.mktemp("cli-governance"))


def test_assess_json_reports_tiers_and_gaps_and_exits_zero(weak: Deployment) -> None:
    out = warrant(weak.home, "assess", "--gateway-config", str(weak.gateway_config), "--json")
    data = json.loads(out)
    assert data["overall"] is None
    assert data["gaps"][0]["id"] == "identity.per-agent-key"
    assert data["gaps"][0]["remedy"]
    assert {d["domain"] for d in data["domains"]} == {
        "identity", "access", "io", "config", "observability", "monitoring", "governance"}


def test_assess_writes_markdown_and_html_reports(strong: Deployment, tmp_path: Path) -> None:
    md, page = tmp_path / "report.md", tmp_path / "report.html"
    out = warrant(strong.home, "assess", "--gateway-config", str(strong.gateway_config),
                  "--markdown", str(md), "--html", str(page), "--target", "enterprise")
    assert "overall                  foundation" in out
    assert "gaps to reach advanced" in out
    assert md.read_text(encoding="utf-8").startswith("# Warrant maturity assessment — foundation")
    assert "<h1>Warrant maturity assessment: foundation</h1>" in page.read_text(encoding="utf-8")


def test_a_bad_governance_file_exits_2_with_a_clear_message(weak: Deployment,
                                                            tmp_path: Path) -> None:
    bad = tmp_path / "governance.toml"
    bad.write_text('[named-approver]\nowner = "user:alice"\n', encoding="utf-8")
    out = warrant(weak.home, "assess", "--governance", str(bad), expect=2)
    assert "declaration `[named-approver]` is invalid" in out
    assert "`document`" in out
    out = warrant(weak.home, "assess", "--governance", str(tmp_path / "none.toml"), expect=2)
    assert "does not exist" in out


def test_assess_without_a_domain_exits_2(tmp_path: Path) -> None:
    out = warrant(tmp_path / "nothing", "assess", expect=2)
    assert "no trust domain" in out


def test_plan_show_done_and_history(weak: Deployment) -> None:
    data = json.loads(warrant(weak.home, "plan", "--json"))
    assert [p["phase"] for p in data["phases"]] == list(range(1, 9))
    assert data["next_actions"][0]["id"] == "requirements.regulations"
    warrant(weak.home, "plan", "done", "requirements.regulations", "--by", "alice",
            "--note", "GDPR applies")
    shown = warrant(weak.home, "plan", "show")
    assert "[x] requirements.regulations (manual)" in shown
    assert "done by user:alice" in shown
    history = json.loads(warrant(weak.home, "plan", "history", "--json"))
    assert history["marks"][0]["note"] == "GDPR applies"
    assert len({s["at"] for s in history["progress"]}) == 2
    out = warrant(weak.home, "plan", "done", "boundaries.least-agency", "--by", "alice",
                  expect=2)
    assert "checked from the system" in out
