"""`warrant compliance regimes|report|verify`: signed evidence reports per regime.

A report is evidence gathered from the running deployment, never legal
assurance. `verify` exits 1 when a bundle does not verify (like a denied
check), naming the changed file; 2 is kept for errors.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from warrant import identity
from warrant.governance import (
    STATEMENT,
    ComplianceError,
    load_regime,
    load_regimes,
    verify_report,
    write_report,
)

from ._common import EXIT_DENY, emit, home_option, json_option, opened


@click.group("compliance")
def compliance_group() -> None:
    """Evidence reports for compliance regimes (evidence, not legal assurance)."""


@compliance_group.command("regimes")
@json_option
def compliance_regimes(as_json: bool) -> None:
    """List the regimes Warrant maps its controls to, with their mapping counts."""
    regimes = load_regimes()
    rows = [{"id": r.id, "name": r.name, "mappings": len(r.mappings), "document": r.document}
            for r in regimes]
    emit(rows, as_json, lambda: click.echo("\n".join(
        f"{r['id']:<14} {r['mappings']:>2} mappings  {r['name']}" for r in rows)))


@compliance_group.command("report")
@click.option("--regime", required=True, help="Regime id (see `warrant compliance regimes`).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Directory for the bundle (default: ./compliance-REGIME-UTCTIME).")
@click.option("--samples", type=click.IntRange(0, 100), default=5, show_default=True,
              help="Recent audit records to include with inclusion proofs.")
@home_option
@json_option
def compliance_report(regime: str, out: Path | None, samples: int, home: Path | None,
                      as_json: bool) -> None:
    """Gather evidence for REGIME and write a signed bundle (report.md, .html, .json).

    Signs a fresh audit checkpoint first, so the sample records' inclusion
    proofs verify against it. Check the bundle later with `warrant compliance
    verify DIR`.
    """
    chosen = load_regime(regime)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = out or Path(f"compliance-{chosen.id}-{stamp}")
    with opened(home) as domain:
        report = write_report(domain, chosen, target, samples=samples)
    summary = report["summary"]
    data = {"out": str(target), "regime": chosen.id, "requirements": summary["requirements"],
            "by_status": summary["by_status"], "statement": STATEMENT}

    def human() -> None:
        click.echo(STATEMENT)
        click.echo(f"wrote {target}/report.md, report.html, report.json (signed)")
        for status, count in summary["by_status"].items():
            click.echo(f"  {status}: {count} of {summary['requirements']} requirements")

    emit(data, as_json, human)


@compliance_group.command("verify")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Verify with this domain public key instead of --home's.")
@home_option
@json_option
def compliance_verify(bundle: Path, public_key: Path | None, home: Path | None,
                      as_json: bool) -> None:
    """Check a report bundle: its signature, its checkpoint and its inclusion proofs.

    Exit status 1 when anything does not verify (the message names the file).
    """
    if public_key is not None:
        key = identity.load_public_key_file(public_key)
    else:
        with opened(home) as domain:
            key = domain.public_key
    try:
        report = verify_report(key, bundle)
    except ComplianceError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "error": exc.message}), err=True)
        else:
            click.echo(exc.diagnostics(), err=True)
        sys.exit(EXIT_DENY)
    samples = report["evidence"]["audit-sample"]["data"].get("records", [])
    data = {"ok": True, "bundle": str(bundle), "regime": report["regime"]["id"],
            "generated_at": report["generated_at"], "samples_verified": len(samples)}
    emit(data, as_json, lambda: click.echo(
        f"ok {bundle}: signed {report['regime']['id']} report of {report['generated_at']}; "
        f"checkpoint and {len(samples)} inclusion proof(s) verify"))
