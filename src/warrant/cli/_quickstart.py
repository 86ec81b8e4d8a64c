"""`warrant quickstart`: the whole core loop on real parts, in a few seconds.

Creates a trust domain (SQLite), registers a demo agent, issues its credential,
mints a task warrant, and drives a scripted agent through the real pipeline
against real Python tools. Then revokes the task, verifies the audit log and
prints the signed checkpoint.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import click

from warrant import warrants
from warrant.enforce import ApprovalRequired, Denied, Guard, TrustDomain
from warrant.errors import StateError
from warrant.types import Decision, RevocationKind

from ._common import home_option
from ._warrant_cmds import print_decision

DEFAULT_HOME = Path(".warrant-quickstart")
MARKER = "QUICKSTART"
INVOICES = {"INV-1042": {"supplier": "Acme Paper GmbH", "iban": "DE89370400440532013000",
                         "amount": 40}}


def _fresh_home(home: Path) -> None:
    """Start from nothing, but only ever delete a directory quickstart itself made."""
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists():
            raise StateError(f"`{home}` exists and was not made by quickstart",
                             hint="pass --home with a new or empty directory")
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)


def _step(title: str) -> None:
    click.secho(f"\n▶ {title}", bold=True)


@click.command()
@home_option
def quickstart(home: Path | None) -> None:
    """Run the core loop end to end on a fresh demo domain and show every decision."""
    home = home or DEFAULT_HOME
    _fresh_home(home)
    domain = TrustDomain.init(home, "quickstart.example")
    (home / MARKER).write_text("made by `warrant quickstart`; safe to delete\n")
    click.echo(f"trust domain `{domain.domain}` created in {home} "
               f"(key {domain.keys.key_id[:12]}…, policy {domain.policies.revision})")

    agent, key_path = domain.register_agent(
        "invoice-assistant", owner="finance-team@example.com",
        purpose="reads supplier invoices and pays small ones")
    click.echo(f"registered {agent.agent_id}")
    assert key_path is not None
    issued = domain.issue_credential("invoice-assistant", ttl_seconds=600)
    click.echo(f"issued a 10-minute credential bound to the agent's key "
               f"({issued.credential.credential_id})")

    task_id, token = domain.mint(
        agent="invoice-assistant", task="pay invoice INV-1042 from Acme Paper",
        on_behalf_of="user:alice",
        tools=[warrants.parse_tool_spec("read_invoice:invoice_id^=INV-"),
               warrants.parse_tool_spec("send_payment:amount=0..5000,to_iban^=DE@3")],
        total_budget=10, ttl_seconds=900)
    guard = Guard(domain)
    click.echo(f"minted warrant for {task_id}:")
    verified = warrants.verify_warrant(token, domain.public_key, domain=domain.domain,
                                       now=dt.datetime.now(dt.UTC))
    click.echo("  " + warrants.describe_warrant(verified).replace("\n", "\n  "))

    @guard.tool(risk="read-only")
    def read_invoice(invoice_id: str) -> dict[str, object]:
        """Read an invoice from the (demo) accounts system."""
        return INVOICES[invoice_id]

    @guard.tool(risk="money-movement")
    def send_payment(to_iban: str, amount: int) -> str:
        """Pay an IBAN (demo: nothing leaves this machine)."""
        return f"paid {amount} EUR to {to_iban}"

    @guard.tool(risk="destructive")
    def delete_records(table: str) -> str:
        """Delete a table (demo)."""
        return f"deleted {table}"

    def attempt(title: str, fn: Callable[..., object], **kwargs: object) -> Decision:
        _step(title)
        try:
            result = fn(**kwargs)
        except (Denied, ApprovalRequired) as exc:
            print_decision(exc.decision)
            return exc.decision
        decision = session.last_decision
        assert decision is not None
        print_decision(decision)
        click.echo(f"  tool returned: {result}")
        return decision

    with guard.session(credential=issued.token, warrant=token,
                       agent_key=domain.agent_key("invoice-assistant")) as session:
        attempt("1. an allowed call: read the invoice", read_invoice, invoice_id="INV-1042")
        attempt("2. out of scope: a tool the warrant does not grant", delete_records,
                table="customers")
        attempt("3. argument outside its constraint: pay 250000 (warrant allows 0..5000)",
                send_payment, to_iban="DE89370400440532013000", amount=250000)
        attempt("4. within warrant and policy: pay the 40 EUR invoice", send_payment,
                to_iban="DE89370400440532013000", amount=40)
        attempt("5. policy asks a human: pay 2500 (over the 1000 approval line)",
                send_payment, to_iban="DE89370400440532013000", amount=2500)
        _step(f"6. revoke the task: warrant revoke --task {task_id}")
        domain.revoke(RevocationKind.TASK, task_id, "quickstart demo")
        attempt("   the same allowed call again, now with a revoked warrant", read_invoice,
                invoice_id="INV-1042")

    _step("audit log")
    checkpoint = domain.checkpoint()
    report = domain.verify_audit()
    click.echo(f"verified {report.size} records and {report.checkpoints_checked} signed "
               f"checkpoint(s): root {report.root}")
    click.echo("signed checkpoint:")
    click.echo("  " + checkpoint.to_note().rstrip("\n").replace("\n", "\n  "))
    domain.close()
    click.echo(f"\nnext: `warrant --help`, `warrant audit tail --home {home}`, "
               f"`warrant inspect --home {home} TOKEN`")
