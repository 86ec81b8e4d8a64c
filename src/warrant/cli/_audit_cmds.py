"""`warrant audit verify|proof|tail|checkpoint`."""

from __future__ import annotations

from pathlib import Path

import click

from warrant import audit

from ._common import emit, home_option, json_option, opened


@click.group("audit")
def audit_group() -> None:
    """Verify, prove and read the tamper-evident audit log."""


@audit_group.command("verify")
@home_option
@json_option
def audit_verify(home: Path | None, as_json: bool) -> None:
    """Recompute every record hash and the Merkle tree; check every signed checkpoint.

    Detects modification, deletion, reordering and truncation relative to the
    last signed checkpoint. Exit status 2 when the log does not verify.
    """
    with opened(home) as domain:
        report = domain.verify_audit()
        latest = domain.witnessed_checkpoint()
    data = {"ok": report.ok, "size": report.size, "root": report.root,
            "checkpoints_checked": report.checkpoints_checked,
            "witnessed_checkpoint": latest.to_note() if latest else None}
    emit(data, as_json, lambda: click.echo(
        f"audit log OK: {report.size} records, root {report.root}, "
        f"{report.checkpoints_checked} signed checkpoint(s) verified"))


@audit_group.command("checkpoint")
@home_option
@json_option
def audit_checkpoint(home: Path | None, as_json: bool) -> None:
    """Sign the current tree head with the domain key and print it."""
    with opened(home) as domain:
        cp = domain.checkpoint()
    emit({"note": cp.to_note(), "tree_size": cp.tree_size, "root_hash": cp.root_hash}, as_json,
         lambda: click.echo(cp.to_note(), nl=False))


@audit_group.command("proof")
@click.option("--seq", type=click.IntRange(min=0), help="Prove this record is in the log.")
@click.option("--old-size", type=click.IntRange(min=1),
              help="Prove the log of this size is a prefix of the current one.")
@click.option("--size", type=click.IntRange(min=1), help="Tree size to prove against "
              "(default: the current size).")
@home_option
@json_option
def audit_proof(seq: int | None, old_size: int | None, size: int | None, home: Path | None,
                as_json: bool) -> None:
    """Inclusion proof (--seq) or consistency proof (--old-size), RFC 9162 hashing."""
    if (seq is None) == (old_size is None):
        raise click.UsageError("give exactly one of --seq or --old-size")
    with opened(home) as domain:
        tree_size = size or domain.audit.head()[0]
        if seq is not None:
            proof = domain.audit.inclusion_proof(seq, tree_size)
            entry = domain.audit.get(seq)
            root = audit.root_from_leaf_hashes(
                [audit.leaf_hash(domain.audit.get(i).record.to_bytes()) for i in range(tree_size)])
            domain.audit.verify_inclusion(entry.record, proof, root)
            data = {"kind": "inclusion", "seq": seq, "tree_size": tree_size,
                    "leaf_hash": audit.leaf_hash(entry.record.to_bytes()).hex(),
                    "root": root.hex(), "path": [h.hex() for h in proof.hashes]}
        else:
            assert old_size is not None
            cproof = domain.audit.consistency_proof(old_size, tree_size)
            data = {"kind": "consistency", "old_size": old_size, "tree_size": tree_size,
                    "path": [h.hex() for h in cproof.hashes]}

    def human() -> None:
        for key, value in data.items():
            if key == "path" and isinstance(value, list):
                click.echo("path:")
                for h in value:
                    click.echo(f"  {h}")
            else:
                click.echo(f"{key}: {value}")

    emit(data, as_json, human)


@audit_group.command("tail")
@click.option("-n", "count", type=click.IntRange(1, 10000), default=10, show_default=True)
@home_option
@json_option
def audit_tail(count: int, home: Path | None, as_json: bool) -> None:
    """Show the most recent audit records."""
    with opened(home) as domain:
        entries = domain.audit.tail(count)
    rows = [{"seq": e.seq, **e.record.to_json()} for e in entries]

    def human() -> None:
        for e in entries:
            r = e.record
            what = r.effect or (r.outcome or {}).get("status") or ""
            click.echo(f"{e.seq:>6}  {r.time}  {r.kind:<8} {what:<15} {r.tool or '':<24} "
                       f"{r.agent or ''}")

    emit(rows, as_json, human)
