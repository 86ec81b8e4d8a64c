"""`warrant init`, `warrant agent …`, `warrant credential …`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from warrant import identity
from warrant.config import check_domain_name, resolve_home
from warrant.enforce import TrustDomain
from warrant.types import AgentRecord, RevocationKind

from ._common import emit, home_option, json_option, opened, parse_duration


def _domain_option(value: str) -> str:
    """`--domain` checked at the edge, so a bad name is a usage error, not a traceback."""
    try:
        return check_domain_name(value)
    except ValueError as exc:
        raise click.BadParameter(f"`{value}` {exc}") from None


@click.command()
@home_option
@click.option("--domain", default="warrant.local", show_default=True,
              callback=lambda _ctx, _param, value: _domain_option(value),
              help="Trust domain name, used in SPIFFE IDs (spiffe://DOMAIN/agent/NAME).")
@json_option
def init(home: Path | None, domain: str, as_json: bool) -> None:
    """Create a trust domain: signing keys, a CA, config, policies and SQLite state.

    Private keys are written 0600; set $WARRANT_KEY_PASSPHRASE to encrypt them.
    """
    path = resolve_home(home)
    with TrustDomain.init(path, domain) as created:
        data = {"home": str(path.resolve()), "domain": created.domain,
                "key_id": created.keys.key_id}
        emit(data, as_json, lambda: click.echo(
            f"created trust domain `{created.domain}` in {path}\n"
            f"  signing key id: {created.keys.key_id}\n"
            f"  policies:       {path / 'policies'} "
            "(default pack; edit, then `warrant policy check`)"))


@click.group()
def agent() -> None:
    """Register, list, show, rotate and retire agents."""


def _agent_line(a: AgentRecord) -> str:
    return f"{a.agent_id}  [{a.status.value}]  owner={a.owner}  tier={a.risk_tier}"


@agent.command("register")
@click.argument("name")
@click.option("--owner", required=True, help="Person or team accountable for the agent.")
@click.option("--purpose", required=True, help="What the agent is for, in one sentence.")
@click.option("--public-key", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Enrol a key the agent generated itself (PEM or 64 hex chars).")
@click.option("--attestation", help="Digest of the agent's code/config/model id (sha256:<hex>); "
              "checked whenever a credential is issued.")
@click.option("--risk-tier", type=click.Choice(identity.RISK_TIERS), default="standard",
              show_default=True)
@home_option
@json_option
def agent_register(name: str, owner: str, purpose: str, public_key: Path | None,
                   attestation: str | None, risk_tier: str, home: Path | None,
                   as_json: bool) -> None:
    """Register agent NAME as spiffe://DOMAIN/agent/NAME."""
    key = identity.load_public_key_file(public_key) if public_key else None
    with opened(home) as domain:
        record, key_path = domain.register_agent(name, owner=owner, purpose=purpose,
                                                 public_key=key, attestation=attestation,
                                                 risk_tier=risk_tier)
    data = {**record.to_json(), "key_file": str(key_path) if key_path else None}

    def human() -> None:
        click.echo(f"registered {record.agent_id}")
        if key_path:
            click.echo(f"  private key written to {key_path} (0600): give it to the agent, "
                       "then delete it here")

    emit(data, as_json, human)


@agent.command("list")
@home_option
@json_option
def agent_list(home: Path | None, as_json: bool) -> None:
    """List registered agents."""
    with opened(home) as domain:
        agents = domain.store.list_agents()
    emit([a.to_json() for a in agents], as_json, lambda: click.echo(
        "\n".join(_agent_line(a) for a in agents) or "no agents registered"))


@agent.command("show")
@click.argument("name")
@home_option
@json_option
def agent_show(name: str, home: Path | None, as_json: bool) -> None:
    """Show one agent and the credentials issued to it."""
    with opened(home) as domain:
        record = domain.agent(name)
        creds = domain.store.credentials_of(record.agent_id)
    data = {**record.to_json(), "credentials": [
        {"id": c, "kind": k, "issued_at": i, "expires_at": e} for c, k, i, e in creds]}

    def human() -> None:
        click.echo(_agent_line(record))
        click.echo(f"  purpose: {record.purpose}")
        click.echo(f"  attestation: {record.attestation or 'none bound'}")
        click.echo(f"  key: {record.public_key.hex()}")
        click.echo(f"  credentials issued: {len(creds)}")

    emit(data, as_json, human)


@agent.command("retire")
@click.argument("name")
@home_option
@json_option
def agent_retire(name: str, home: Path | None, as_json: bool) -> None:
    """Retire an agent: it gets no new credentials and its current ones stop working."""
    with opened(home) as domain:
        record = domain.retire_agent(name)
    emit(record.to_json(), as_json, lambda: click.echo(f"retired {record.agent_id}"))


@agent.command("resume")
@click.argument("name")
@click.option("--by", required=True, help="The person lifting the suspension, as `user:NAME`.")
@home_option
@json_option
def agent_resume(name: str, by: str, home: Path | None, as_json: bool) -> None:
    """Lift a suspension (set by the response engine): the agent may get credentials again."""
    with opened(home) as domain:
        record = domain.resume_agent(name, by=by)
    emit(record.to_json(), as_json, lambda: click.echo(f"resumed {record.agent_id}"))


@agent.command("rotate")
@click.argument("name")
@click.option("--public-key", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The agent's new public key (otherwise Warrant generates a key pair).")
@home_option
@json_option
def agent_rotate(name: str, public_key: Path | None, home: Path | None, as_json: bool) -> None:
    """Rotate an agent's key; credentials bound to the old key are revoked."""
    key = identity.load_public_key_file(public_key) if public_key else None
    with opened(home) as domain:
        key_path = domain.rotate_agent_key(name, key)
    emit({"agent": name, "key_file": str(key_path) if key_path else None}, as_json,
         lambda: click.echo(f"rotated key of {name}"
                            + (f"; new key in {key_path}" if key_path else "")))


@click.group()
def credential() -> None:
    """Issue and revoke short-lived agent credentials (JWT-SVID and X.509-SVID)."""


@credential.command("issue")
@click.argument("agent_name", metavar="AGENT")
@click.option("--ttl", default="10m", show_default=True,
              help=f"Lifetime (at most {identity.MAX_TTL_SECONDS // 60}m).")
@click.option("--attestation", help="The agent's current attestation digest, if one is bound.")
@click.option("--x509", "x509_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write an X.509 certificate for mutual TLS to this file.")
@home_option
@json_option
def credential_issue(agent_name: str, ttl: str, attestation: str | None, x509_out: Path | None,
                     home: Path | None, as_json: bool) -> None:
    """Issue a credential bound to AGENT's key; prints the token."""
    seconds = parse_duration(ttl)
    with opened(home) as domain:
        issued = domain.issue_credential(agent_name, ttl_seconds=seconds, attestation=attestation)
        if x509_out:
            x509_out.write_bytes(domain.issue_certificate(agent_name, ttl_seconds=seconds))
    cred = issued.credential
    expires = dt.datetime.fromtimestamp(cred.expires_at, dt.UTC).isoformat()
    emit({"token": issued.token, **cred.to_json(), "x509": str(x509_out) if x509_out else None},
         as_json, lambda: click.echo(issued.token))
    if not as_json:
        click.echo(f"# {cred.agent_id}, credential {cred.credential_id}, expires {expires}",
                   err=True)


@credential.command("revoke")
@click.option("--id", "credential_id", help="Revoke one credential by its id (jti).")
@click.option("--agent", "agent_name", help="Revoke every credential of this agent.")
@click.option("--reason", default="revoked by operator", show_default=True)
@home_option
@json_option
def credential_revoke(credential_id: str | None, agent_name: str | None, reason: str,
                      home: Path | None, as_json: bool) -> None:
    """Revoke one credential, or all of an agent's."""
    if bool(credential_id) == bool(agent_name):
        raise click.UsageError("give exactly one of --id or --agent")
    with opened(home) as domain:
        if credential_id:
            count = int(domain.revoke(RevocationKind.CREDENTIAL, credential_id, reason))
        else:
            count = domain.revoke_credentials_of(str(agent_name), reason)
    target = credential_id or f"credentials of {agent_name}"
    emit({"revoked": count, "target": target}, as_json,
         lambda: click.echo(f"revoked {count} credential(s): {target}"))
