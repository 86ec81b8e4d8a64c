"""The embedded SQLite store: agents, issued credentials, revocations, budgets, nonces.

One database file (`state.db`) holds every component's tables; each component
creates its own tables idempotently. WAL mode lets the audit writer and these
small transactions run side by side; `synchronous=NORMAL` keeps every committed
transaction across a process kill (only an OS crash can lose the last commits).

INVARIANT: every method either completes its transaction or raises
`StoreError`; callers in the decision path turn that into a deny.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Collection
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from warrant.errors import IdentityError, StoreError
from warrant.types import AgentRecord, AgentStatus, RevocationKind, RiskClass, ToolInfo

from ._approvals import APPROVALS_SCHEMA, SqliteApprovals
from ._observations import OBSERVATIONS_SCHEMA, SqliteObservations
from ._transaction import transaction

SCHEMA_VERSION = 1

#: A fetched row. SQLite values are dynamically typed, so columns are `Any` and
#: each reader converts them (`str()`, `float()`, `bytes()`) where it unpacks them.
_Row = tuple[Any, ...]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL, purpose TEXT NOT NULL,
    public_key BLOB NOT NULL, created_at REAL NOT NULL, status TEXT NOT NULL,
    attestation TEXT, risk_tier TEXT NOT NULL, key_generated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    credential_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, kind TEXT NOT NULL,
    issued_at REAL NOT NULL, expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS credentials_agent ON credentials(agent_id);
CREATE TABLE IF NOT EXISTS revocations (
    kind TEXT NOT NULL, value TEXT NOT NULL, revoked_at REAL NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE TABLE IF NOT EXISTS budgets (
    task_id TEXT NOT NULL, tool TEXT NOT NULL, used INTEGER NOT NULL,
    PRIMARY KEY (task_id, tool)
);
CREATE TABLE IF NOT EXISTS tools (
    qualified_name TEXT PRIMARY KEY, name TEXT NOT NULL, server TEXT, risk_class TEXT NOT NULL,
    description TEXT NOT NULL, toolsets TEXT NOT NULL, registered_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS instructions (
    task_id TEXT PRIMARY KEY, text TEXT NOT NULL, created_at REAL NOT NULL
);
"""

#: The budget row that counts every call of a task, whatever the tool.
TOTAL = "*"


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open state database `{path}`: {exc}") from exc
    return conn


class SqliteStore:
    """Agents, credentials, revocations, budgets and nonces in one SQLite file."""

    def __init__(self, path: Path, *, create: bool = False):
        if not create and not path.exists():
            raise StoreError(f"state database `{path}` does not exist",
                             hint="run `warrant init` first, or check --home / $WARRANT_HOME")
        self.path = path
        self._lock = threading.RLock()
        self._nonce_inserts = 0
        self._conn = _connect(path)
        try:
            if create:
                # executescript commits on its own; every statement is idempotent.
                self._conn.executescript(_SCHEMA)
                with self._tx() as c:
                    c.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                              (str(SCHEMA_VERSION),))
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except (sqlite3.DatabaseError, StoreError) as exc:
            self._conn.close()
            raise StoreError(
                f"state database `{path}` is corrupt or not a Warrant store: {exc}") from exc
        if row is None or row[0] != str(SCHEMA_VERSION):
            self._conn.close()
            raise StoreError(
                f"state database `{path}` has schema version "
                f"{row[0] if row else 'none'}, expected {SCHEMA_VERSION}")
        try:
            # Tables added within schema version 1 are created when missing.
            self._conn.executescript(_SCHEMA + APPROVALS_SCHEMA + OBSERVATIONS_SCHEMA)
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(f"state database `{path}` could not be prepared: {exc}") from exc
        self._approvals = SqliteApprovals(self._conn, self._lock)
        self._observations = SqliteObservations(self._conn, self._lock)

    @property
    def approvals(self) -> SqliteApprovals:
        """Held calls waiting for a human (see `_approvals`)."""
        return self._approvals

    @property
    def observations(self) -> SqliteObservations:
        """What each task's agent has seen, for ledgers rebuilt in another process."""
        return self._observations

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._conn, self._lock, "state database")

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[_Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"state database read failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- agents ---------------------------------------------------------------------------

    def add_agent(self, agent: AgentRecord) -> None:
        with self._tx() as c:
            if c.execute("SELECT 1 FROM agents WHERE agent_id = ?", (agent.agent_id,)).fetchone():
                raise IdentityError(f"agent `{agent.agent_id}` is already registered")
            c.execute(
                "INSERT INTO agents VALUES (?,?,?,?,?,?,?,?,?,?)",
                (agent.agent_id, agent.name, agent.owner, agent.purpose, agent.public_key,
                 agent.created_at, agent.status.value, agent.attestation, agent.risk_tier,
                 int(agent.key_generated_by_domain)),
            )

    def get_agent(self, agent_id: str) -> AgentRecord | None:
        rows = self._query("SELECT * FROM agents WHERE agent_id = ?", (agent_id,))
        return _agent_from_row(rows[0]) if rows else None

    def get_agents(self, agent_ids: Collection[str]) -> dict[str, AgentRecord]:
        """The registered agents among `agent_ids`, in one read (a delegation chain's)."""
        ids = tuple(dict.fromkeys(agent_ids))
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        # Only `?` placeholders are formatted in; every id is a bound parameter.
        rows = self._query(f"SELECT * FROM agents WHERE agent_id IN ({marks})", ids)  # noqa: S608 - placeholders only
        return {(agent := _agent_from_row(r)).agent_id: agent for r in rows}

    def list_agents(self) -> list[AgentRecord]:
        return [_agent_from_row(r) for r in self._query("SELECT * FROM agents ORDER BY agent_id")]

    def retire_agent(self, agent_id: str, now: float) -> None:
        """Retire an agent and revoke everything it holds, in one transaction."""
        with self._tx() as c:
            cur = c.execute("UPDATE agents SET status = ? WHERE agent_id = ?",
                            (AgentStatus.RETIRED.value, agent_id))
            if cur.rowcount == 0:
                raise IdentityError(f"no agent `{agent_id}` is registered")
            c.execute("INSERT OR IGNORE INTO revocations VALUES (?,?,?,?)",
                      (RevocationKind.AGENT.value, agent_id, now, "agent retired"))

    def set_agent_status(self, agent_id: str, status: AgentStatus, *,
                         expect: AgentStatus) -> bool:
        """Move an agent from `expect` to `status`; False if it was not in `expect`."""
        with self._tx() as c:
            cur = c.execute("UPDATE agents SET status = ? WHERE agent_id = ? AND status = ?",
                            (status.value, agent_id, expect.value))
            return cur.rowcount == 1

    def rotate_agent_key(self, agent_id: str, public_key: bytes, now: float) -> None:
        """Replace an agent's key and revoke the credentials bound to the old one."""
        with self._tx() as c:
            cur = c.execute("UPDATE agents SET public_key = ? WHERE agent_id = ? AND status = ?",
                            (public_key, agent_id, AgentStatus.ACTIVE.value))
            if cur.rowcount == 0:
                raise IdentityError(f"no active agent `{agent_id}` to rotate")
            for (cred_id,) in c.execute(
                "SELECT credential_id FROM credentials WHERE agent_id = ? AND expires_at > ?",
                (agent_id, now),
            ).fetchall():
                c.execute("INSERT OR IGNORE INTO revocations VALUES (?,?,?,?)",
                          (RevocationKind.CREDENTIAL.value, cred_id, now, "key rotated"))

    # -- credentials ----------------------------------------------------------------------

    def record_credential(self, credential_id: str, agent_id: str, kind: str,
                          issued_at: float, expires_at: float) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO credentials VALUES (?,?,?,?,?)",
                      (credential_id, agent_id, kind, issued_at, expires_at))

    def credentials_of(self, agent_id: str) -> list[tuple[str, str, float, float]]:
        rows = self._query(
            "SELECT credential_id, kind, issued_at, expires_at FROM credentials "
            "WHERE agent_id = ? ORDER BY issued_at", (agent_id,))
        return [(str(r[0]), str(r[1]), float(r[2]), float(r[3])) for r in rows]

    # -- revocation -----------------------------------------------------------------------

    def revoke(self, kind: RevocationKind, value: str, now: float, reason: str) -> bool:
        """Record a revocation; False when it was already revoked."""
        with self._tx() as c:
            cur = c.execute("INSERT OR IGNORE INTO revocations VALUES (?,?,?,?)",
                            (kind.value, value, now, reason))
            return cur.rowcount == 1

    def revoked(self, *, task_id: str | None, agent_id: str | None,
                credential_id: str | None, token_ids: tuple[str, ...] = (),
                agent_ids: tuple[str, ...] = (),
                risk_class: RiskClass | None = None) -> str | None:
        """The first revocation that covers this request, described; None when none does.

        `agent_ids` are further agents that must not be revoked (the principal
        chain of a delegated warrant: revoking an orchestrator stops its sub-agents).
        With `risk_class`, narrowings that take that class away from the task
        (or `token_ids`) or from any of the agents count too, and are reported
        first; a narrowing is described starting with `narrowed`. Without it,
        narrowings are ignored: they revoke one class, never the whole task.
        """
        keys: list[tuple[str, str]] = [(RevocationKind.ALL.value, "*")]
        if task_id:
            keys.append((RevocationKind.TASK.value, task_id))
        if agent_id:
            keys.append((RevocationKind.AGENT.value, agent_id))
        if credential_id:
            keys.append((RevocationKind.CREDENTIAL.value, credential_id))
        keys.extend((RevocationKind.TASK.value, t) for t in token_ids)
        others = tuple(a for a in agent_ids if a != agent_id)
        keys.extend((RevocationKind.AGENT.value, a) for a in others)
        if risk_class is not None:
            narrow = RevocationKind.NARROW
            keys.extend((narrow.value, narrow.narrowing_value("task", t, risk_class))
                        for t in (task_id, *token_ids) if t)
            keys.extend((narrow.value, narrow.narrowing_value("agent", a, risk_class))
                        for a in (agent_id, *others) if a)
        clause = " OR ".join("(kind = ? AND value = ?)" for _ in keys)
        params = tuple(x for pair in keys for x in pair)
        # Only `?` placeholders are formatted in; every value is a bound parameter.
        sql = (f"SELECT kind, value, reason FROM revocations WHERE {clause} "  # noqa: S608 - placeholders only
               "ORDER BY kind = 'narrow' DESC LIMIT 1")
        rows = self._query(sql, params)
        if not rows:
            return None
        kind, value, reason = rows[0]
        if kind == RevocationKind.NARROW.value:
            scope, subject, risk = RevocationKind.parse_narrowing(str(value))
            return f"narrowed: {scope} `{subject}` may no longer use {risk.value} tools ({reason})"
        return f"{kind} `{value}` revoked ({reason})"

    def revoke_credentials_of(self, agent_id: str, now: float, reason: str) -> int:
        """Revoke every unexpired credential issued to an agent; new ones still work."""
        with self._tx() as c:
            ids = [r[0] for r in c.execute(
                "SELECT credential_id FROM credentials WHERE agent_id = ? AND expires_at > ?",
                (agent_id, now - 60)).fetchall()]
            for cred_id in ids:
                c.execute("INSERT OR IGNORE INTO revocations VALUES (?,?,?,?)",
                          (RevocationKind.CREDENTIAL.value, cred_id, now, reason))
            return len(ids)

    def list_revocations(self) -> list[tuple[str, str, float, str]]:
        rows = self._query(
            "SELECT kind, value, revoked_at, reason FROM revocations ORDER BY revoked_at")
        return [(str(a), str(b), float(c), str(d)) for a, b, c, d in rows]

    # -- tool catalogue --------------------------------------------------------------------

    def put_tool(self, tool: ToolInfo, now: float) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO tools VALUES (?,?,?,?,?,?,?) ON CONFLICT(qualified_name) DO UPDATE "
                "SET risk_class = excluded.risk_class, description = excluded.description, "
                "toolsets = excluded.toolsets",
                (tool.qualified_name, tool.name, tool.server, tool.risk_class.value,
                 tool.description, ",".join(tool.toolsets), now),
            )

    def get_tool(self, qualified_name: str) -> ToolInfo | None:
        rows = self._query("SELECT name, server, risk_class, description, toolsets FROM tools "
                           "WHERE qualified_name = ?", (qualified_name,))
        return _tool_from_row(rows[0]) if rows else None

    def list_tools(self) -> list[ToolInfo]:
        rows = self._query("SELECT name, server, risk_class, description, toolsets FROM tools "
                           "ORDER BY qualified_name")
        return [_tool_from_row(r) for r in rows]

    # -- budgets and nonces ---------------------------------------------------------------

    def consume_budget(self, task_id: str, tool: str, tool_limit: int | None,
                       total_limit: int | None) -> str | None:
        """Count one call against the task's budgets, atomically.

        Returns None when the call fits (and has been counted), or a description
        of the exhausted budget (and nothing was counted).
        """
        try:
            with self._tx() as c:
                for key, limit in ((tool, tool_limit), (TOTAL, total_limit)):
                    (used,) = c.execute(
                        "INSERT INTO budgets VALUES (?,?,1) ON CONFLICT(task_id, tool) "
                        "DO UPDATE SET used = used + 1 RETURNING used", (task_id, key)).fetchone()
                    if limit is not None and used > limit:
                        what = "total call budget" if key == TOTAL else f"budget for `{tool}`"
                        # Raising rolls the whole transaction back: nothing is counted.
                        raise _Exhausted(  # noqa: TRY301 - the raise is the rollback
                            f"{what} exhausted ({used - 1} of {limit} calls used)")
        except _Exhausted as exhausted:
            return str(exhausted)
        return None

    def budget_used(self, task_id: str, tool: str = TOTAL) -> int:
        rows = self._query("SELECT used FROM budgets WHERE task_id = ? AND tool = ?",
                           (task_id, tool))
        return int(rows[0][0]) if rows else 0

    # -- the user's instruction per task (trusted input of the data-flow ledger) --------------

    def put_instruction(self, task_id: str, text: str, now: float) -> None:
        """Bind the user's instruction to a task, once: it can never be rewritten."""
        with self._tx() as c:
            c.execute("INSERT INTO instructions VALUES (?,?,?)", (task_id, text, now))

    def get_instruction(self, task_id: str) -> str | None:
        rows = self._query("SELECT text FROM instructions WHERE task_id = ?", (task_id,))
        return str(rows[0][0]) if rows else None

    def first_use(self, nonce: str, expires_at: float) -> bool:
        """Replay guard shared by every process using this store."""
        with self._lock:
            try:
                # One statement is atomic on its own: it inserts, or finds the nonce taken.
                first = self._conn.execute("INSERT OR IGNORE INTO nonces VALUES (?, ?)",
                                           (nonce, expires_at)).rowcount == 1
                self._nonce_inserts += 1
                if self._nonce_inserts % 64 == 0:
                    # Prune expired nonces now and then so the table stays small.
                    self._conn.execute("DELETE FROM nonces WHERE expires_at < ?", (time.time(),))
            except sqlite3.Error as exc:
                raise StoreError(f"state database write failed: {exc}") from exc
        return first


class _Exhausted(Exception):  # noqa: N818 - internal signal, never escapes the store
    """Rolls back a budget transaction that would overspend."""


def _agent_from_row(row: _Row) -> AgentRecord:
    (agent_id, name, owner, purpose, public_key, created_at, status, attestation,
     risk_tier, key_generated) = row
    return AgentRecord(
        agent_id=str(agent_id), name=str(name), owner=str(owner), purpose=str(purpose),
        public_key=bytes(public_key),
        created_at=float(created_at),
        status=AgentStatus(status), attestation=None if attestation is None else str(attestation),
        risk_tier=str(risk_tier), key_generated_by_domain=bool(key_generated),
    )


def _tool_from_row(row: _Row) -> ToolInfo:
    name, server, risk_class, description, toolsets = row
    return ToolInfo(
        name=str(name), server=None if server is None else str(server),
        risk_class=RiskClass(risk_class), description=str(description),
        toolsets=tuple(t for t in str(toolsets).split(",") if t),
    )
