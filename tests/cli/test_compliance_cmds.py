"""`warrant compliance` as a user runs it: a real process, a real home, real files."""

from __future__ import annotations

import json
from pathlib import Path

from warrant import identity
from warrant.enforce import TrustDomain
from warrant.governance import STATEMENT

from ._run import warrant


def test_report_then_verify_then_tamper(tmp_path: Path) -> None:
    home = tmp_path / "home"
    warrant(home, "init", "--domain", "acme.example")
    warrant(home, "agent", "register", "billing", "--owner", "finance", "--purpose", "pays")
    warrant(home, "credential", "issue", "billing")
    out = tmp_path / "hipaa-report"

    printed = warrant(home, "compliance", "report", "--regime", "hipaa", "--out", str(out))
    assert STATEMENT in printed
    assert sorted(p.name for p in out.iterdir()) == [
        ".warrant-signature.json", "report.html", "report.json", "report.md"]
    report = json.loads((out / "report.json").read_text("utf-8"))
    assert report["evidence"]["credential-lifetimes"]["status"] == "ok"

    assert "ok" in warrant(home, "compliance", "verify", str(out))
    assert json.loads(warrant(home, "compliance", "verify", str(out), "--json"))["ok"] is True
    with TrustDomain.open(home) as domain:  # anyone with the domain's public key can verify
        (tmp_path / "domain.pub").write_text(identity.raw_public(domain.public_key).hex())
    assert "ok" in warrant(tmp_path / "elsewhere", "compliance", "verify", str(out),
                           "--public-key", str(tmp_path / "domain.pub"))
    # ...and the key is exported as PEM by the CLI, no Python needed.
    warrant(home, "config", "public-key", "--out", str(tmp_path / "domain.pem"))
    assert (tmp_path / "domain.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert "ok" in warrant(tmp_path / "elsewhere", "compliance", "verify", str(out),
                           "--public-key", str(tmp_path / "domain.pem"))

    html = (out / "report.html").read_text("utf-8")
    (out / "report.html").write_text(html.replace("HIPAA", "HIPAA (approved)", 1), "utf-8")
    failed = warrant(home, "compliance", "verify", str(out), expect=1)
    assert "report.html" in failed and "modified" in failed


def test_an_unknown_regime_exits_2_listing_the_known_ones(tmp_path: Path) -> None:
    home = tmp_path / "home"
    warrant(home, "init", "--domain", "acme.example")
    printed = warrant(home, "compliance", "report", "--regime", "sox", expect=2)
    assert "unknown regime `sox`" in printed
    assert "hipaa" in printed and "nist-800-207" in printed
    assert not list(tmp_path.glob("compliance-*"))


def test_regimes_lists_every_regime_with_its_mapping_count(tmp_path: Path) -> None:
    rows = json.loads(warrant(tmp_path, "compliance", "regimes", "--json"))
    counts = {r["id"]: r["mappings"] for r in rows}
    assert len(counts) == 10 and min(counts.values()) >= 4
    assert "pci-dss-4" in warrant(tmp_path, "compliance", "regimes")
