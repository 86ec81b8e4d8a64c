"""`warrant redteam`: security benchmarks run against Warrant's real pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import click

from warrant.errors import ConfigError
from warrant.redteam import ORDERS, SUITE_NAMES, Mode, Order, Report, run_agentdojo

from ._common import opened, write_output


@click.group("redteam")
def redteam_group() -> None:
    """Security benchmarks you can run on your own policies (offline, no LLM)."""


@redteam_group.command("agentdojo")
@click.option("--suite", "suites", multiple=True, type=click.Choice(SUITE_NAMES),
              help="AgentDojo suite to run (repeatable; default: all four).")
@click.option("--warrant", "warrant_mode", type=click.Choice(["role", "task", "both"]),
              default="both", show_default=True,
              help="role: every tool of the suite; task: only the user task's tools.")
@click.option("--order", type=click.Choice(["user-first", "attacker-first", "both"]),
              default="both", show_default=True, help="Where the attacker's calls go.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most N (user task, injection task) pairs per suite (a quick run).")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the full report (every replay) as JSON to FILE.")
@click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the Markdown report to FILE (else it goes to stdout).")
@click.option("--detector", type=click.Choice(["auto", "patterns", "classifier", "off"]),
              default=None, help="Injection detector for data flow (default: auto = the "
              "classifier when installed, else patterns; `off` measures the rules alone).")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Use this trust domain's policies instead of the default policy pack.")
def agentdojo(suites: tuple[str, ...], warrant_mode: str, order: str, limit: int | None,
              json_file: Path | None, markdown_file: Path | None, detector: str | None,
              home: Path | None) -> None:
    """Replay AgentDojo as a FULLY COMPROMISED agent through Warrant's real pipeline.

    \b
    For each (user task, injection task) pair the agent runs the user task's
    ground-truth calls AND the attacker's, with AgentDojo's injection placed
    where the task reads it. No LLM is called. The user's instruction is bound
    into the warrant as trusted; everything a tool returns is untrusted.
    AgentDojo's own checks score the result.

    \b
    Measured per suite, warrant and order, and overall:
      attack success rate      share of pairs where the attack worked (lower is better)
      utility under attack     share of pairs where the user's task still succeeded
      utility without attack   share of user tasks, run alone, that succeeded
      approvals                share of user tasks, run alone, needing a human approval
    \b
    Warrants: `role` grants every tool of the suite (the headline: no knowledge
    of the task); `task` grants only the tools of the user task's ground truth
    (an upper bound for a well-behaved planner). An allow-all baseline (no
    Warrant) runs in the same invocation. Attacks that only change what the
    agent says are reported apart; attacks without ground truth as not covered.
    Needs the `redteam` extra: pip install 'agent-warrant[redteam]'.
    """
    for path in (json_file, markdown_file):
        if path is not None and not path.parent.is_dir():
            # Refuse before the run, not with a traceback after it.
            raise ConfigError(f"cannot write `{path}`: no directory `{path.parent}`")
    policy_dir = None
    if home is not None:
        with opened(home) as domain:
            policy_dir = domain.policy_dir
    modes: list[Mode] = ["allow-all", *_pick(warrant_mode, ("role", "task"))]
    orders = cast("list[Order]", _pick(order, ORDERS))
    report = run_agentdojo(suites or SUITE_NAMES, modes=modes, orders=orders, limit=limit,
                           policy_dir=policy_dir, detector=detector,
                           progress=lambda text: click.echo(text, err=True))
    _write(report, json_file, markdown_file)


def _pick(choice: str, every: tuple[Any, ...]) -> list[Any]:
    return list(every) if choice == "both" else [choice]


def _write(report: Report, json_file: Path | None, markdown_file: Path | None) -> None:
    markdown = report.render_markdown()
    if json_file is not None:
        write_output(json_file, report.render_json() + "\n")
    if markdown_file is not None:
        write_output(markdown_file, markdown)
    else:
        click.echo(markdown, nl=False)
