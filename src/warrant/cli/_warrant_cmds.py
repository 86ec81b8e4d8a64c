"""`warrant mint`, `attenuate`, `inspect`, `revoke`, `check`."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from warrant import identity, warrants
from warrant.enforce import CallRequest, Pipeline, session_ledgers
from warrant.errors import WarrantError
from warrant.types import Decision, Effect, RevocationKind, RiskClass, ToolCall

from ._common import (
    EXIT_APPROVAL,
    EXIT_DENY,
    emit,
    home_option,
    json_option,
    opened,
    parse_duration,
    read_token,
)

TOOL_HELP = ("Tool grant, repeatable: NAME[:ARG=V|ARG=A|B|ARG=LO..HI|ARG~REGEX|ARG^=PREFIX,...]"
             "[@BUDGET], e.g. `transfer:amount=0..100,currency=EUR|USD@3`.")


@click.command()
@click.option("--agent", "agent_name", required=True, help="The agent the warrant is for.")
@click.option("--task", required=True, help="What the task is, in words (kept in the audit log).")
@click.option("--on-behalf-of", help="The user the agent acts for (e.g. user:alice).")
@click.option("--tool", "tools", multiple=True, required=True, help=TOOL_HELP)
@click.option("--budget", type=click.IntRange(min=1), help="Total calls allowed for the task.")
@click.option("--ttl", default=None, help="Lifetime, e.g. 15m (default from config).")
@click.option("--max-depth", type=click.IntRange(0, warrants.MAX_DEPTH), default=0,
              show_default=True, help="How many times it may be delegated onward.")
@click.option("--instruction", default=None,
              help="The user's own request, verbatim (or @FILE, or - for stdin). Data flow "
                   "trusts the values in it: a payee or address the user typed goes "
                   "through; one the agent read elsewhere waits for a human.")
@home_option
@json_option
def mint(agent_name: str, task: str, on_behalf_of: str | None, tools: tuple[str, ...],
         budget: int | None, ttl: str | None, max_depth: int, instruction: str | None,
         home: Path | None, as_json: bool) -> None:
    """Mint a task warrant naming exactly the tools and arguments the task needs."""
    grants = [warrants.parse_tool_spec(t) for t in tools]
    text = read_token(instruction, "instruction") if instruction is not None else None
    with opened(home) as domain:
        task_id, token = domain.mint(agent=agent_name, task=task, tools=grants,
                                     on_behalf_of=on_behalf_of, total_budget=budget,
                                     ttl_seconds=parse_duration(ttl) if ttl else None,
                                     max_depth=max_depth, instruction=text)
    emit({"task_id": task_id, "token": token}, as_json, lambda: click.echo(token))
    if not as_json:
        click.echo(f"# task {task_id}", err=True)


@click.command()
@click.argument("token")
@click.option("--tool", "tools", multiple=True, help="Keep only these tools (with constraints "
              "at least as tight). " + TOOL_HELP)
@click.option("--holder", help="The sub-agent (name or SPIFFE ID) that will hold it.")
@click.option("--agent-key", "agent_key", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="With --holder: the CURRENT holder's private key, which "
              "signs the hand-over (default: the key Warrant generated for that agent in the "
              "domain home). Sub-agents' calls are denied unless every hop is signed.")
@click.option("--ttl", help="Expire sooner, e.g. 5m from now (never later than now).")
@click.option("--budget", type=click.IntRange(min=1), help="A smaller total budget.")
@home_option
@json_option
def attenuate(token: str, tools: tuple[str, ...], holder: str | None, agent_key: Path | None,
              ttl: str | None, budget: int | None, home: Path | None, as_json: bool) -> None:
    """Narrow a warrant offline for a sub-agent (never widens; depth - 1).

    Handing it to another agent (--holder) signs the hop with the current
    holder's key, so the pipeline can verify who delegated to whom.
    """
    token = read_token(token, "warrant")
    now = dt.datetime.now(dt.UTC)
    with opened(home) as domain:
        holder_id = signer = None
        if holder:
            holder_id = domain.agent(holder).agent_id
            current = warrants.verify_warrant(token, domain.public_key, domain=domain.domain,
                                              now=now).holder
            signer = (identity.read_private_key(agent_key) if agent_key
                      else domain.agent_key(domain.agent(current).name))
            if identity.raw_public(signer.public_key()) != domain.agent(current).public_key:
                raise click.UsageError(f"--agent-key is not the registered key of the current "
                                       f"holder {current}")
        narrowed = warrants.attenuate_warrant(
            token, domain.public_key, domain=domain.domain, now=now,
            tools=[warrants.parse_tool_spec(t) for t in tools] or None,
            expires_at=now + dt.timedelta(seconds=parse_duration(ttl)) if ttl else None,
            holder=holder_id, total_budget=budget, signer=signer)
    emit({"token": narrowed}, as_json, lambda: click.echo(narrowed))


@click.command()
@click.argument("token")
@home_option
@json_option
def inspect(token: str, home: Path | None, as_json: bool) -> None:
    """Verify a warrant and say what it allows, in plain words."""
    token = read_token(token, "warrant")
    now = dt.datetime.now(dt.UTC)
    with opened(home) as domain:
        try:
            w = warrants.verify_warrant(token, domain.public_key, domain=domain.domain, now=now)
        except WarrantError as exc:
            # `inspect` is an operator tool: show the cause the caller would not see.
            raise click.ClickException(f"{exc.message}: {exc.detail}") from exc
        # The same checks a decision makes: the task, every token of it, every agent
        # of its delegation chain; then, class by class, what a narrowing took away.
        revoked = domain.store.revoked(task_id=w.task_id, agent_id=w.holder, credential_id=None,
                                       token_ids=w.revocation_ids, agent_ids=w.agents)
        narrowed = {risk.value: found for risk in RiskClass
                    if (found := domain.store.revoked(
                        task_id=w.task_id, agent_id=w.holder, credential_id=None,
                        token_ids=w.revocation_ids, agent_ids=w.agents, risk_class=risk))
                    and found.startswith("narrowed")}
    data = {**w.to_json(), "revoked": revoked, "narrowed": narrowed}

    def human() -> None:
        click.echo(warrants.describe_warrant(w, now=now))
        if revoked:
            click.echo(f"REVOKED: {revoked}")
        for risk, found in narrowed.items():
            click.echo(f"NARROWED ({risk}): {found}")

    emit(data, as_json, human)


@click.command()
@click.option("--task", "task_id", help="Revoke one task's warrant (and every attenuation).")
@click.option("--agent", "agent_name", help="Revoke everything an agent holds.")
@click.option("--all", "everything", is_flag=True,
              help="Kill switch: revoke every warrant and credential in the domain.")
@click.option("--narrow", "narrow", multiple=True,
              type=click.Choice([r.value for r in RiskClass]),
              help="With --task or --agent: take only this risk class away (repeatable); "
                   "everything else keeps working, e.g. --narrow write --narrow "
                   "external-communication leaves reads.")
@click.option("--reason", default="revoked by operator", show_default=True)
@home_option
@json_option
def revoke(task_id: str | None, agent_name: str | None, everything: bool,
           narrow: tuple[str, ...], reason: str, home: Path | None, as_json: bool) -> None:
    """Revoke by task, by agent, or domain-wide; or narrow a task or agent to fewer
    risk classes. Checked on every decision."""
    if sum(map(bool, (task_id, agent_name, everything))) != 1:
        raise click.UsageError("give exactly one of --task, --agent or --all")
    if narrow and everything:
        raise click.UsageError("--narrow applies to one --task or --agent, not --all")
    with opened(home) as domain:
        if everything:
            kind, value = RevocationKind.ALL, "*"
        elif agent_name:
            kind, value = RevocationKind.AGENT, domain.agent(agent_name).agent_id
        else:
            kind, value = RevocationKind.TASK, str(task_id)
        if narrow:
            scope = "agent" if agent_name else "task"
            values = [RevocationKind.narrowing_value(scope, value, RiskClass(r)) for r in narrow]
            # Every class is recorded (no short circuit), then: was any of them new?
            recorded = [domain.revoke(RevocationKind.NARROW, v, reason) for v in values]
            new = any(recorded)
            emit({"kind": "narrow", "value": values, "new": new}, as_json, lambda: click.echo(
                f"narrowed {scope} {value}: no more {', '.join(narrow)} tools"))
            return
        new = domain.revoke(kind, value, reason)
    emit({"kind": kind.value, "value": value, "new": new}, as_json, lambda: click.echo(
        f"revoked {kind.value} {value}" + ("" if new else " (it already was)")))


def describe_decision(decision: Decision) -> str:
    marks = {Effect.ALLOW: "ALLOW", Effect.DENY: "DENY", Effect.NEEDS_APPROVAL: "NEEDS APPROVAL"}
    lines = [f"{marks[decision.effect]}  {decision.tool}  "
             f"({decision.latency_us:.0f} µs, decision {decision.decision_id[:8]}, "
             f"policy {decision.policy_revision})"]
    lines += [f"  - [{r.source}] {r.message}  ({r.code})" for r in decision.reasons]
    return "\n".join(lines)


def exit_for(decision: Decision) -> None:
    if decision.effect is Effect.DENY:
        sys.exit(EXIT_DENY)
    if decision.effect is Effect.NEEDS_APPROVAL:
        sys.exit(EXIT_APPROVAL)


@click.command()
@click.option("--warrant", "warrant_token", required=True,
              help="Warrant token (inline, @FILE or - for stdin).")
@click.option("--credential", "credential_token", required=True,
              help="Credential token (inline, @FILE or - for stdin).")
@click.option("--tool", required=True, help="Tool name (server/tool for a server's tool).")
@click.option("--args", "args_json", default="{}", show_default=True,
              help="The call's arguments as a JSON object.")
@click.option("--proof", help="Proof of possession signed by the agent (inline or @FILE).")
@click.option("--agent-key", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Sign the proof here with the agent's private key (acting as the agent).")
@home_option
@json_option
def check(warrant_token: str, credential_token: str, tool: str, args_json: str,
          proof: str | None, agent_key: Path | None, home: Path | None, as_json: bool) -> None:
    """Decide one call through the enforcement pipeline and print the decision.

    Exit status: 0 allow, 1 deny, 3 needs approval, 2 error.
    """
    arguments = _parse_args(args_json)
    server, _, name = tool.rpartition("/")
    call = ToolCall(tool=name, server=server or None, arguments=arguments)
    warrant_token = read_token(warrant_token, "warrant")
    credential_token = read_token(credential_token, "credential")
    if proof:
        proof = read_token(proof, "proof")
    elif agent_key:
        proof = identity.make_proof(
            identity.read_private_key(agent_key), credential_token=credential_token,
            tool=call.qualified_name, argument_digest=call.argument_digest(),
            warrant_token=warrant_token, now=dt.datetime.now(dt.UTC).timestamp())
    with opened(home) as domain:
        # One-shot: no results seen, so destinations are checked against the
        # warrant's instruction alone.
        pipeline = Pipeline(domain, ledgers=session_ledgers(domain, observes_results=False))
        decision = pipeline.decide(CallRequest(
            call=call, credential=credential_token, warrant=warrant_token, proof=proof))
    emit(decision.to_json(), as_json, lambda: click.echo(describe_decision(decision)))
    exit_for(decision)


def _no_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not a JSON number")


def _parse_args(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"--args is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise click.BadParameter("--args is nested too deeply") from exc
    except ValueError as exc:  # NaN / Infinity, an integer too long to convert
        raise click.BadParameter(f"--args is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise click.BadParameter("--args must be a JSON object, e.g. '{\"to\": \"bob\"}'")
    return value
