"""`warrant audit verify|proof|tail|checkpoint|export`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from warrant import audit, response
from warrant.errors import AuditIntegrityError, ConfigError, WarrantError
from warrant.store import SqliteIncidents

from ._common import emit, home_option, json_option, opened


@click.group("audit")
def audit_group() -> None:
    """Verify, prove and read the tamper-evident audit log."""


@audit_group.command("verify")
@click.option("--checkpoint", "checkpoints", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="A signed checkpoint note kept outside this home (repeatable): also "
                   "detects a tail cut together with the checkpoints stored here.")
@home_option
@json_option
def audit_verify(checkpoints: tuple[Path, ...], home: Path | None, as_json: bool) -> None:
    """Recompute every record hash and the Merkle tree; check every signed checkpoint
    and every record's seal.

    Detects modification, deletion, reordering and truncation relative to the
    last signed checkpoint, and names every record after it that Warrant did
    not append with this domain's key (a row written into the database has no
    valid seal). Exit status 2 when the log does not verify.

    \b
    Limits, said plainly: seals are checked only with the domain signing key.
    Records past the last signed checkpoint can still be cut off the end
    without a trace here; and the witnessed checkpoint lives in this home too:
    keep copies of checkpoint notes elsewhere (`warrant audit checkpoint`) and
    pass them with --checkpoint. Records written without a seal (before
    seals existed, or by an older Warrant still running: upgrade every writer
    of a domain together) are vouched for only by signed checkpoints.
    """
    trusted = [_checkpoint_note(path) for path in checkpoints]
    with opened(home) as domain:
        domain.sign_on_close = False  # a check blesses nothing
        report = domain.verify_audit(trusted)
        latest = domain.witnessed_checkpoint()
    unsigned = report.size - report.signed_size
    data = {"ok": report.ok, "size": report.size, "root": report.root,
            "checkpoints_checked": report.checkpoints_checked,
            "signed_size": report.signed_size, "unsigned_records": unsigned,
            "seals_checked": report.seals_checked,
            "unsealed_signed_records": report.unsealed_signed,
            "witnessed_checkpoint": latest.to_note() if latest else None}
    notes = []
    if unsigned:
        notes.append(f"the last {unsigned} record(s) (after seq {report.signed_size - 1}) are "
                     "not covered by a signed checkpoint yet"
                     + (", each carries a valid seal" if report.seals_checked else ""))
    if not report.seals_checked:
        notes.append("seals were not checked (the domain signing key is not available)")
    if report.unsealed_signed:
        notes.append(f"{report.unsealed_signed} record(s) from before audit seals are vouched "
                     "for by signed checkpoints only")
    emit(data, as_json, lambda: click.echo(
        f"audit log OK: {report.size} records, root {report.root}, "
        f"{report.checkpoints_checked} signed checkpoint(s) verified"
        + "".join(f"; {note}" for note in notes)))


def _checkpoint_note(path: Path) -> audit.Checkpoint:
    try:
        return audit.Checkpoint.from_note(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read checkpoint `{path}`: {exc}") from exc
    except AuditIntegrityError as exc:
        raise ConfigError(f"`{path}` is not a checkpoint note: {exc.message}") from exc


@audit_group.command("checkpoint")
@click.option("--accept-unsealed", is_flag=True,
              help="Sign even over records without a valid seal (each is named in a "
                   "warning). Only for records you have checked, such as ones an older "
                   "Warrant wrote before an upgrade: signing makes them part of the "
                   "signed history.")
@home_option
@json_option
def audit_checkpoint(accept_unsealed: bool, home: Path | None, as_json: bool) -> None:
    """Sign the current tree head with the domain key and print it.

    Refuses (exit status 2) while a record after the last signed checkpoint has
    no valid seal; `warrant audit verify` names them.
    """
    with opened(home) as domain:
        cp = domain.checkpoint(accept_unsealed=accept_unsealed)
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
        domain.sign_on_close = False  # reading blesses nothing
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
        domain.sign_on_close = False  # reading blesses nothing
        entries = domain.audit.tail(count)
    rows = [{"seq": e.seq, **e.record.to_json()} for e in entries]

    def human() -> None:
        for e in entries:
            r = e.record
            what = r.effect or (r.outcome or {}).get("status") or ""
            click.echo(f"{e.seq:>6}  {r.time}  {r.kind:<8} {what:<15} {r.tool or '':<24} "
                       f"{r.agent or ''}")

    emit(rows, as_json, human)


def _syslog_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"`{text}` is not HOST:PORT", param_hint="--syslog")
    return host.strip("[]"), int(port)


def _sink(out: Path | None, webhook: str | None, syslog: str | None,
          tcp: bool) -> response.Sink:
    if sum(x is not None for x in (out, webhook, syslog)) > 1:
        raise click.UsageError("give at most one of --out, --webhook or --syslog")
    if webhook is not None:
        try:
            return response.WebhookSink(webhook)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--webhook") from None
    if syslog is not None:
        return response.SyslogSink(*_syslog_address(syslog), tcp=tcp)
    if out is not None and str(out) != "-":
        return response.FileSink(out)
    return response.StreamSink(sys.stdout)


@audit_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["ocsf"]), default="ocsf", show_default=True,
              help="Event format (OCSF 1.7: API Activity, Account Change, Incident Finding).")
@click.option("--since", type=click.IntRange(min=0), default=0, show_default=True,
              help="First audit seq to export.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Append JSON lines to this file (default: standard output).")
@click.option("--webhook", metavar="URL", help="POST batches (JSON arrays) to this URL.")
@click.option("--syslog", metavar="HOST:PORT", help="Send RFC 5424 messages to this address.")
@click.option("--tcp", is_flag=True, help="Syslog over TCP (octet counting) instead of UDP.")
@click.option("--incidents", "with_incidents", is_flag=True,
              help="Also export every incident as an Incident Finding.")
@click.option("--follow", is_flag=True, help="Keep exporting new records until interrupted.")
@home_option
def audit_export(fmt: str, since: int, out: Path | None, webhook: str | None,
                 syslog: str | None, tcp: bool, with_incidents: bool, follow: bool,
                 home: Path | None) -> None:
    """Export the audit log to a SIEM as OCSF events (a file, a webhook or syslog).

    Prints how many events were written to standard error. Exit status 2 when
    the destination cannot be reached.
    """
    sink = _sink(out, webhook, syslog, tcp)
    written = 0
    try:
        with opened(home) as domain:
            domain.sign_on_close = False  # reading blesses nothing
            tenant = domain.domain
            try:
                next_seq = max(since, domain.audit.head()[0])
                written = response.export_events(response.log_events(
                    domain.audit, since=since, until=next_seq, tenant=tenant), sink)
                if with_incidents:
                    incidents = SqliteIncidents(domain.home / response.INCIDENTS_DB)
                    try:
                        written += response.export_events(
                            (response.incident_to_ocsf(i, tenant=tenant)
                             for i in incidents.list(limit=1_000_000)), sink)
                    finally:
                        incidents.close()
                while follow:
                    time.sleep(0.5)
                    size = domain.audit.head()[0]
                    if size > next_seq:
                        written += response.export_events(response.log_events(
                            domain.audit, since=next_seq, until=size, tenant=tenant), sink)
                        next_seq = size
            except OSError as exc:
                raise ExportError(f"export failed after {written} event(s): {exc}") from exc
            except KeyboardInterrupt:
                pass
    finally:
        sink.close()
    click.echo(f"exported {written} {fmt} event(s)", err=True)


class ExportError(WarrantError):
    """The export destination could not be written."""

    code = "audit.export-failed"
