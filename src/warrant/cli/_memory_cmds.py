"""`warrant memory put|get|list|history|rollback|quarantine|purge`: the guarded memory store.

`put`, `get` and `list` act as an agent (`--agent`) and go through policy like any
agent would; `put` signs with the agent's own key (the key file Warrant generated,
or `--key-file`). `history`, `rollback`, `quarantine` and `purge` are operator
actions, recorded in the audit log with the person named by `--by`; a rollback is
signed with the domain key, labelled `domain` (a person has no key pair).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from warrant import identity
from warrant.enforce import GuardedMemory
from warrant.memory import MemoryGuardError

from ._common import emit, home_option, json_option, opened

_agent = click.option("--agent", required=True, help="The agent acting (name or SPIFFE id).")
_by = click.option("--by", required=True, help="The person acting, as `user:NAME`.")


def _when(text: str) -> float:
    """An RFC 3339 time (`2026-11-25T10:00:00Z`) or Unix seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise click.BadParameter(f"`{text}` is not a time like 2026-11-25T10:00:00Z") from exc


def _person(by: str) -> str:
    if not by.startswith("user:") or len(by) < 6:
        raise click.BadParameter(f"`{by}` must name a person as `user:NAME`")
    return by


@click.group("memory")
def memory_group() -> None:
    """Signed, verified agent memory: items, versions, quarantine."""


@memory_group.command("put")
@_agent
@click.option("--untrusted", is_flag=True, help="The content came from a tool result.")
@click.option("--source", default="", help="The tool the content came from.")
@click.option("--task", "task_id", default="", help="The task id the write is for.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="The agent's private key (PEM), when Warrant did not "
                                 "generate it.")
@home_option
@json_option
@click.argument("namespace")
@click.argument("key")
@click.argument("content")
def memory_put(agent: str, untrusted: bool, source: str, task_id: str, key_file: Path | None,
               home: Path | None, as_json: bool, namespace: str, key: str,
               content: str) -> None:
    """Store CONTENT (JSON, else a plain string) as a new version of KEY in NAMESPACE."""
    try:
        value = json.loads(content)
    except ValueError:
        value = content
    with opened(home) as domain, GuardedMemory(domain) as memory:
        if key_file is not None:
            memory.use_agent_key(agent, identity.read_private_key(key_file))
        item = memory.put(agent, namespace, key, value, task_id=task_id, source=source,
                          trust="untrusted" if untrusted else "trusted")
    emit(item.to_json(), as_json, lambda: click.echo(
        f"stored {namespace}/{key} version {item.version} (audit seq {item.audit_seq})"))


@memory_group.command("get")
@_agent
@home_option
@json_option
@click.argument("namespace")
@click.argument("key")
def memory_get(agent: str, home: Path | None, as_json: bool, namespace: str, key: str) -> None:
    """Print the newest verified version of KEY."""
    with opened(home) as domain, GuardedMemory(domain) as memory:
        item = memory.get(agent, namespace, key)
    emit(item.to_json(), as_json, lambda: click.echo(json.dumps(item.content, indent=2)))


@memory_group.command("list")
@_agent
@click.option("--search", "query", default=None, help="Only items containing this text.")
@home_option
@json_option
@click.argument("namespace")
def memory_list(agent: str, query: str | None, home: Path | None, as_json: bool,
                namespace: str) -> None:
    """List the live items of NAMESPACE (each one verified)."""
    with opened(home) as domain, GuardedMemory(domain) as memory:
        items = (memory.search(agent, namespace, query) if query is not None
                 else memory.list(agent, namespace))

    def human() -> None:
        for item in items:
            flag = " [data]" if item.is_data else ""
            click.echo(f"{item.key}  v{item.version}{flag}  by {item.provenance.writer}")

    emit([i.to_json() for i in items], as_json, human)


@memory_group.command("history")
@home_option
@json_option
@click.argument("namespace")
@click.argument("key")
def memory_history(home: Path | None, as_json: bool, namespace: str, key: str) -> None:
    """Every version of KEY with status, digest and provenance (no content)."""
    with opened(home) as domain, GuardedMemory(domain) as memory:
        versions = memory.history(namespace, key)

    def human() -> None:
        for v in versions:
            stamp = dt.datetime.fromtimestamp(v.stored_at, dt.UTC).isoformat(timespec="seconds")
            extra = " deleted" if v.deleted else ""
            extra += f" (restores v{v.restored_from})" if v.restored_from else ""
            click.echo(f"v{v.version}  {stamp}  {v.status}{extra}  {v.provenance.trust.value}"
                       f"  {v.provenance.writer}  {v.digest[:16]}")

    emit([v.to_json() for v in versions], as_json, human)


@memory_group.command("rollback")
@click.option("--to", "at", required=True, help="Point in time (RFC 3339 or Unix seconds).")
@click.option("--key", default=None, help="Roll back only this key (default: all).")
@_by
@home_option
@json_option
@click.argument("namespace")
def memory_rollback(at: str, key: str | None, by: str, home: Path | None, as_json: bool,
                    namespace: str) -> None:
    """Make NAMESPACE (or one key) read as it did at a point in time."""
    with opened(home) as domain, GuardedMemory(domain) as memory:
        items = memory.rollback(namespace, _when(at), by=_person(by), key=key)
    emit([i.to_json() for i in items], as_json, lambda: click.echo(
        f"rolled back {len(items)} item(s) in {namespace}"))


@memory_group.command("quarantine")
@click.option("--list", "show", is_flag=True, help="List quarantine records instead.")
@click.option("--version", type=int, default=None, help="Version (default: the newest).")
@click.option("--reason", default="", help="Why (kept with the forensic copy).")
@click.option("--by", default=None, help="The person acting, as `user:NAME`.")
@home_option
@json_option
@click.argument("namespace")
@click.argument("key", required=False)
def memory_quarantine(show: bool, version: int | None, reason: str, by: str | None,
                      home: Path | None, as_json: bool, namespace: str, key: str | None) -> None:
    """Quarantine a version of KEY (a forensic copy is kept), or `--list` the records."""
    with opened(home) as domain, GuardedMemory(domain) as memory:
        if show:
            records = memory.quarantined(namespace)

            def human() -> None:
                for r in records:
                    purged = "  [purged]" if r["purged"] else ""
                    click.echo(f"#{r['id']}  {r['row']['key']} v{r['row']['version']}  "
                               f"{r['reason']}{purged}")

            emit(records, as_json, human)
            return
        if key is None or by is None:
            raise MemoryGuardError("quarantine needs a KEY and --by (or --list)")
        done = memory.quarantine(namespace, key, by=_person(by), reason=reason or "manual",
                                 version=version)
    emit({"namespace": namespace, "key": key, "version": done}, as_json,
         lambda: click.echo(f"quarantined {namespace}/{key} version {done}"))


@memory_group.command("purge")
@click.option("--version", type=int, default=None, help="Only this version (default: all).")
@_by
@home_option
@json_option
@click.argument("namespace")
@click.argument("key")
def memory_purge(version: int | None, by: str, home: Path | None, as_json: bool,
                 namespace: str, key: str) -> None:
    """Remove the content of KEY; digests and provenance stay as the forensic record."""
    with opened(home) as domain, GuardedMemory(domain) as memory:
        count = memory.purge(namespace, key, by=_person(by), version=version)
    emit({"namespace": namespace, "key": key, "purged": count}, as_json,
         lambda: click.echo(f"purged {count} version(s) of {namespace}/{key}"))
