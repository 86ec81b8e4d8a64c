"""The trust domain on disk, opened: config, keys, store, audit log and policy.

`TrustDomain.init` lays out a state directory; `TrustDomain.open` loads one and
fails with a clear `StateError` when anything is missing or corrupt. Every
administrative action (register, issue, mint, revoke) is written to the audit
log before it takes effect.

Layout:
    config.toml          domain settings (see `warrant.config`)
    keys/                signing key, CA key and certificate (0600, 0700 dir)
    state.db             SQLite: agents, credentials, revocations, budgets, audit log
    policies/            Cedar schema, policies and policy tests (copied from the default pack)
    agents/NAME.key      private keys Warrant generated for agents (hand them over, then delete)
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warrant import audit, identity, policy, warrants
from warrant.config import CONFIG_FILE, DomainConfig, load_config, render_config
from warrant.errors import AuditIntegrityError, IdentityError, StateError, StoreError
from warrant.store import Approval, SqliteAuditBackend, SqliteStore, StateStore
from warrant.types import AgentRecord, AgentStatus, RevocationKind, sha256_hex

log = logging.getLogger("warrant.domain")

#: Receives every durable audit record: `(seq, record)`.
EventListener = Callable[[int, audit.AuditRecord], None]

#: The shared state database in a domain's home: store, audit log, approvals, tool pins.
STATE_DB = "state.db"
KEYS_DIR = "keys"
POLICY_DIR = "policies"
AGENT_KEYS_DIR = "agents"
CHECKPOINT_FILE = "checkpoint"


SCHEMA_FILE = "schema.cedarschema"
PACK_FILES = ("baseline.cedar", "flow.cedar", SCHEMA_FILE, "tests.json")


#: The user's instruction bound to a warrant is at most this long.
MAX_INSTRUCTION_CHARS = 64 * 1024


def load_policies(policy_dir: Path) -> policy.CompiledPolicy:
    """Load every `*.cedar` file under `policy_dir` against its schema; none is an error."""
    if not policy_dir.is_dir():
        raise StateError(f"policy directory `{policy_dir}` is missing",
                         hint="restore it, or start a new domain with `warrant init`")
    try:
        schema = (policy_dir / SCHEMA_FILE).read_text(encoding="utf-8")
    except OSError as exc:
        raise StateError(f"policy schema `{policy_dir / SCHEMA_FILE}` is missing or unreadable",
                         hint="restore it from the default pack (warrant/policy/pack)") from exc
    files = sorted(policy_dir.glob("*.cedar"))
    return policy.load_policy_set(files, schema=schema)


def default_pack_files() -> list[tuple[str, str]]:
    pack = resources.files("warrant.policy") / "pack"
    return [(name, (pack / name).read_text(encoding="utf-8")) for name in PACK_FILES]


class TrustDomain:
    """An opened trust domain. Close it (or use `with`) to flush the audit log."""

    def __init__(self, home: Path, config: DomainConfig, keys: identity.DomainKeys,
                 store: StateStore, audit_log: audit.AuditLog, policies: policy.CompiledPolicy):
        self.home = home
        self.config = config
        self.keys = keys
        self.store = store
        self.audit = audit_log
        self.policies = policies
        self._listeners: list[EventListener] = []
        self._closed = False
        #: Sign a checkpoint over new records when closing. A checker or reader turns
        #: this off: checking and reading bless nothing, and keep working while a
        #: record without a valid seal makes signing refuse (`AuditLog.checkpoint`).
        self.sign_on_close = True

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    def init(cls, home: Path, domain: str, *, now: float | None = None,
             settings: Mapping[str, Any] | None = None) -> TrustDomain:
        """Create a new trust domain in `home` (which must not hold one already).

        `settings` are further `config.toml` keys, validated like the file itself
        (a bad name or setting raises pydantic's `ValidationError`, a `ValueError`).
        """
        now = time.time() if now is None else now
        if (home / CONFIG_FILE).exists() or (home / STATE_DB).exists():
            raise StateError(f"`{home}` already holds a trust domain",
                             hint="choose another --home, or remove it to start over")
        config = DomainConfig.model_validate({**(settings or {}), "domain": domain})
        home.mkdir(parents=True, exist_ok=True)
        created_any = False
        try:
            keys = identity.create_domain_keys(home / KEYS_DIR, domain, now)
            created_any = True
            policy_dir = home / POLICY_DIR
            policy_dir.mkdir(exist_ok=True)
            for name, text in default_pack_files():
                (policy_dir / name).write_text(text, encoding="utf-8")
            SqliteStore(home / STATE_DB, create=True).close()
            # The config file is written last: its presence marks a complete domain.
            tmp = home / (CONFIG_FILE + ".tmp")
            tmp.write_text(render_config(config), encoding="utf-8")
            os.replace(tmp, home / CONFIG_FILE)
        except BaseException:
            if created_any:
                for part in (KEYS_DIR, POLICY_DIR):
                    shutil.rmtree(home / part, ignore_errors=True)
                for leftover in (STATE_DB, STATE_DB + "-wal", STATE_DB + "-shm"):
                    (home / leftover).unlink(missing_ok=True)
            raise
        opened = cls.open(home)
        opened.record_admin("domain.init", {"domain": domain, "key_id": keys.key_id})
        return opened

    @classmethod
    def open(cls, home: Path) -> TrustDomain:
        config = load_config(home)
        keys = identity.load_domain_keys(home / KEYS_DIR)
        if config.require_signed_config:
            identity.verify_bundle(keys.public_key, home / POLICY_DIR)
        policies = load_policies(home / POLICY_DIR)
        store = SqliteStore(home / STATE_DB)
        try:
            backend = SqliteAuditBackend(home / STATE_DB)
            log = audit.AuditLog(backend, signing_key=keys.signing_key,
                                 public_key=keys.public_key, origin=config.domain,
                                 durable=config.audit_durability == "full")
        except BaseException:
            store.close()
            raise
        return cls(home, config, keys, store, log, policies)

    def close(self) -> None:
        """Sign a checkpoint over anything new, flush the audit log, close the store.

        Closing twice is harmless (the second call does nothing).
        """
        if self._closed:
            return
        self._closed = True
        try:
            try:
                if self.sign_on_close and self.audit.head()[0] > self._witnessed_size():
                    self.checkpoint()
            finally:
                self.audit.close()
        finally:
            self.store.close()

    # -- audit checkpoints ------------------------------------------------------------------

    def checkpoint(self, *, accept_unsealed: bool = False) -> audit.Checkpoint:
        """Sign the current tree head; keep a copy outside the database as a witness.

        INVARIANT: a new tree head is signed only if the log is consistent with
        the last witnessed one (an RFC 9162 consistency proof), so a log that was
        truncated or rewritten in the database is never blessed by a fresh
        signature; and only if every record past the last signed checkpoint
        carries a valid seal, so a row written into the database is never
        blessed either (`accept_unsealed`: see `AuditLog.checkpoint`). Raises
        `AuditIntegrityError` instead.
        """
        witnessed = self.witnessed_checkpoint()
        if witnessed is not None:
            size, root = self.audit.head()
            if size < witnessed.tree_size:
                raise AuditIntegrityError(
                    f"the audit log has {size} records but a signed checkpoint covers "
                    f"{witnessed.tree_size}: it was truncated")
            proof = self.audit.consistency_proof(witnessed.tree_size, size)
            self.audit.verify_consistency(proof, witnessed.root, root)
        cp = self.audit.checkpoint([witnessed] if witnessed else [],
                                   accept_unsealed=accept_unsealed)
        tmp = self.home / (CHECKPOINT_FILE + ".tmp")
        try:
            tmp.write_text(cp.to_note(), encoding="utf-8")
            os.replace(tmp, self.home / CHECKPOINT_FILE)
        except OSError as exc:
            raise StateError(f"cannot write the audit checkpoint `{tmp}`: "
                             f"{exc.strerror or exc}") from exc
        return cp

    def witnessed_checkpoint(self) -> audit.Checkpoint | None:
        """The last checkpoint written outside the database (None before the first)."""
        path = self.home / CHECKPOINT_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read the audit checkpoint `{path}`: "
                             f"{exc.strerror or exc}") from exc
        return audit.Checkpoint.from_note(text)

    def _witnessed_size(self) -> int:
        cp = self.witnessed_checkpoint()
        return cp.tree_size if cp else 0

    def verify_audit(self, trusted: Sequence[audit.Checkpoint] = ()) -> audit.VerifyReport:
        """Recompute the whole log against its stored and witnessed signed checkpoints,
        and `trusted` ones kept elsewhere (out of reach of whoever can write this home)."""
        witnessed = self.witnessed_checkpoint()
        return self.audit.verify(trusted=[*([witnessed] if witnessed else []), *trusted])

    def __enter__(self) -> TrustDomain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- keys -----------------------------------------------------------------------------

    @property
    def policy_dir(self) -> Path:
        """Where this domain's Cedar policies live (signed with `warrant config sign`)."""
        return self.home / POLICY_DIR

    @property
    def domain(self) -> str:
        return self.config.domain

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.keys.public_key

    # -- administration (each action is audited before it takes effect) ------------------

    # -- the event stream ------------------------------------------------------------------

    def subscribe(self, listener: EventListener) -> None:
        """Call `listener(seq, record)` after every record is durable in the audit log.

        The audit log is the durable event stream; listeners are its in-process
        tail. They run on the appending thread, so they must only enqueue work
        (the response engine does). A listener that raises is logged and
        skipped: a broken listener never turns into an allowed call.
        """
        self._listeners.append(listener)

    def append(self, record: audit.AuditRecord) -> int:
        """Append a record durably, then publish it to the in-process listeners."""
        seq = self.audit.append(record)
        for listener in self._listeners:
            try:
                listener(seq, record)
            except Exception:
                log.exception("event listener %r failed on record %d", listener, seq)
        return seq

    def record_admin(self, action: str, detail: Mapping[str, Any]) -> int:
        record = audit.AuditRecord(
            kind="admin", time=audit.utc_now(), decision_id=str(uuid.uuid4()),
            tool=action, detail=dict(detail),
        )
        return self.append(record)

    def register_agent(self, name: str, *, owner: str, purpose: str,
                       public_key: Ed25519PublicKey | None = None,
                       attestation: str | None = None,
                       risk_tier: str = "standard") -> tuple[AgentRecord, Path | None]:
        """Register an agent. Returns the record and, when Warrant generated the key, its file."""
        record, private = identity.new_agent(
            domain=self.domain, name=name, owner=owner, purpose=purpose, now=time.time(),
            public_key=public_key, attestation=attestation, risk_tier=risk_tier)
        if self.store.get_agent(record.agent_id) is not None:
            raise IdentityError(f"agent `{record.agent_id}` is already registered")
        # The key goes into the log too: signatures by this agent (delegation hops,
        # memory items) can then be checked against an independent, tamper-evident record.
        self.record_admin("agent.register", {"agent": record.agent_id, "owner": record.owner,
                                             "purpose": record.purpose,
                                             "attestation": record.attestation,
                                             "public_key": record.public_key.hex()})
        key_path = None if private is None else self._write_agent_key(name, private)
        try:
            self.store.add_agent(record)
        except BaseException:
            # Nothing partial: no key file for an agent that was not registered.
            if key_path is not None:
                key_path.unlink(missing_ok=True)
            raise
        return record, key_path

    def agent(self, name_or_id: str) -> AgentRecord:
        agent_id = (name_or_id if name_or_id.startswith("spiffe://")
                    else identity.agent_id_for(self.domain, name_or_id))
        record = self.store.get_agent(agent_id)
        if record is None:
            raise IdentityError(f"no agent `{name_or_id}` is registered in `{self.domain}`")
        return record

    def agent_key(self, name: str) -> Ed25519PrivateKey:
        """The private key Warrant generated for an agent (demo and tests)."""
        path = self._agent_key_path(name)
        if not path.exists():
            raise IdentityError(f"no key file for agent `{name}` (it enrolled its own key)")
        return identity.read_private_key(path)

    def _agent_key_path(self, name: str) -> Path:
        return self.home / AGENT_KEYS_DIR / f"{name}.key"

    def _write_agent_key(self, name: str, private: Ed25519PrivateKey) -> Path:
        """Write a key Warrant generated for an agent (0600, in a 0700 directory)."""
        path = self._agent_key_path(name)
        path.parent.mkdir(exist_ok=True, mode=0o700)
        identity.write_private_key(path, private)
        return path

    def retire_agent(self, name_or_id: str) -> AgentRecord:
        record = self.agent(name_or_id)
        self.record_admin("agent.retire", {"agent": record.agent_id})
        self.store.retire_agent(record.agent_id, time.time())
        return self.agent(record.agent_id)

    def rotate_agent_key(self, name_or_id: str,
                         public_key: Ed25519PublicKey | None = None) -> Path | None:
        """Give an agent a new key and revoke every credential bound to the old one."""
        record = self.agent(name_or_id)
        private = None
        if public_key is None:
            private = identity.generate_key()
            public_key = private.public_key()
        self.record_admin("agent.rotate", {
            "agent": record.agent_id, "public_key": identity.raw_public(public_key).hex()})
        key_path = None if private is None else self._write_agent_key(record.name, private)
        self.store.rotate_agent_key(record.agent_id, identity.raw_public(public_key), time.time())
        return key_path

    def issue_credential(self, name_or_id: str, *, ttl_seconds: int | None = None,
                         attestation: str | None = None) -> identity.IssuedCredential:
        record = self.agent(name_or_id)
        now = time.time()
        issued = identity.issue_credential(
            self.keys.signing_key, domain=self.domain, agent=record, now=now,
            ttl_seconds=ttl_seconds or self.config.credential_ttl_seconds,
            attestation=attestation, key_id=self.keys.key_id)
        cred = issued.credential
        self.record_admin("credential.issue", {"agent": record.agent_id,
                                               "credential_id": cred.credential_id,
                                               "expires_at": cred.expires_at})
        self.store.record_credential(cred.credential_id, record.agent_id, "jwt-svid",
                                     cred.issued_at, cred.expires_at)
        return issued

    def issue_certificate(self, name_or_id: str, *, ttl_seconds: int | None = None) -> bytes:
        """An X.509-SVID (PEM) for the agent's registered key, for mutual TLS."""
        record = self.agent(name_or_id)
        if record.status.value != "active":
            raise IdentityError(f"agent `{record.agent_id}` is retired and gets no certificate")
        now = time.time()
        ttl = ttl_seconds or self.config.credential_ttl_seconds
        cert = identity.issue_agent_certificate(
            self.keys.ca_key, self.keys.ca_certificate, agent_id=record.agent_id,
            agent_public_key=identity.public_from_raw(record.public_key), now=now,
            ttl_seconds=min(ttl, identity.MAX_TTL_SECONDS))
        serial = format(cert.serial_number, "x")
        self.record_admin("certificate.issue", {"agent": record.agent_id, "serial": serial})
        self.store.record_credential(serial, record.agent_id, "x509-svid", now, now + ttl)
        return identity.certificate_pem(cert)

    def suspend_agent(self, name_or_id: str, reason: str) -> int:
        """Contain an agent: no new credentials until a person resumes it, and every
        current one revoked. Returns how many credentials were revoked.

        A suspension outlives credential renewal: an orchestrator that re-issues
        short-lived credentials cannot undo it by accident.
        """
        record = self.agent(name_or_id)
        self.record_admin("agent.suspend", {"agent": record.agent_id, "reason": reason})
        self.store.set_agent_status(record.agent_id, AgentStatus.SUSPENDED,
                                    expect=AgentStatus.ACTIVE)
        return self.revoke_credentials_of(record.agent_id, reason)

    def resume_agent(self, name_or_id: str, *, by: str) -> AgentRecord:
        """A person lifts a suspension (audited); the agent may be issued credentials again."""
        _require_person(by, hint="an agent can never lift a suspension")
        record = self.agent(name_or_id)
        if record.status is not AgentStatus.SUSPENDED:
            raise IdentityError(f"agent `{record.agent_id}` is {record.status.value}, "
                                "not suspended")
        self.record_admin("agent.resume", {"agent": record.agent_id, "by": by})
        self.store.set_agent_status(record.agent_id, AgentStatus.ACTIVE,
                                    expect=AgentStatus.SUSPENDED)
        return self.agent(record.agent_id)

    def revoke_credentials_of(self, name_or_id: str, reason: str) -> int:
        record = self.agent(name_or_id)
        self.record_admin("credential.revoke-all", {"agent": record.agent_id, "reason": reason})
        return self.store.revoke_credentials_of(record.agent_id, time.time(), reason)

    def revoke(self, kind: RevocationKind, value: str, reason: str) -> bool:
        self.record_admin("revoke", {"kind": kind.value, "value": value, "reason": reason})
        return self.store.revoke(kind, value, time.time(), reason)


    def decide_approval(self, approval_id: str, *, approve: bool, by: str,
                        note: str | None = None) -> Approval:
        """A human approves or denies a held call; audited before it takes effect.

        `by` names the human (`user:alice`). Agent identities are refused: an agent
        can never approve a call, its own or another's.
        """
        _require_person(by, hint="agents (spiffe:// IDs) can never approve calls")
        self.record_admin("approval.approve" if approve else "approval.deny",
                          {"approval_id": approval_id, "by": by, "note": note})
        try:
            return self.store.approvals.decide(approval_id, approve=approve, by=by,
                                               now=time.time(), note=note)
        except StoreError as exc:
            raise IdentityError(exc.message) from exc

    def mint(self, *, agent: str, task: str, tools: Sequence[warrants.ToolGrant],
             on_behalf_of: str | None = None, total_budget: int | None = None,
             ttl_seconds: int | None = None, max_depth: int = 0,
             instruction: str | None = None) -> tuple[str, str]:
        """Mint a task warrant for an active agent; returns (task_id, token).

        `instruction` is the user's own request for this task: the data-flow
        ledger trusts the values in it (a payee, an address the user typed).
        """
        record = self.agent(agent)
        if record.status is not AgentStatus.ACTIVE:
            raise IdentityError(f"agent `{record.agent_id}` is {record.status.value} and gets "
                                "no warrants")
        if not task.strip():
            raise IdentityError("a warrant needs a task description (--task)")
        if instruction is not None and len(instruction) > MAX_INSTRUCTION_CHARS:
            raise IdentityError(
                f"the instruction is longer than {MAX_INSTRUCTION_CHARS} characters")
        now = dt.datetime.now(dt.UTC)
        ttl = ttl_seconds or self.config.warrant_ttl_seconds
        task_id = f"task-{uuid.uuid4().hex[:16]}"
        token = warrants.mint_warrant(
            self.keys.signing_key, domain=self.domain, task_id=task_id,
            agent=record.agent_id, tools=list(tools), on_behalf_of=on_behalf_of,
            total_budget=total_budget, expires_at=now + dt.timedelta(seconds=ttl),
            max_depth=max_depth, now=now)
        if instruction is not None and instruction.strip():
            self.store.put_instruction(task_id, instruction, now.timestamp())
        self.record_admin("warrant.mint", {"task_id": task_id, "task": task.strip(),
                                           "agent": record.agent_id,
                                           "on_behalf_of": on_behalf_of,
                                           "tools": sorted(t.name for t in tools),
                                           "ttl_seconds": ttl,
                                           "instruction_sha256": sha256_hex(
                                               instruction.encode()) if instruction else None})
        return task_id, token


def _require_person(by: str, *, hint: str) -> None:
    """Refuse `by` unless it names a person as `user:NAME` (what the audit log keeps)."""
    if not identity.is_person(by):
        raise IdentityError(f"`{by}` must name a person as `user:NAME`", hint=hint)
