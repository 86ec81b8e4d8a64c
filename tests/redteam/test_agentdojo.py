"""`warrant.redteam`: AgentDojo replayed as a fully compromised agent through the real pipeline."""

from __future__ import annotations

import os
import sys

import pytest

from warrant.redteam import (
    RISK_TABLE,
    SUITE_NAMES,
    PlannedCall,
    RedteamError,
    Report,
    RunResult,
    Step,
    agentdojo_available,
    load_suite,
    replay,
    risk_of,
    run_agentdojo,
    summarise,
)
from warrant.redteam._agentdojo_extra import EXTRA_GROUND_TRUTH
from warrant.redteam._suites import _agentdojo
from warrant.types import Effect

if not agentdojo_available():
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must install the `redteam` extra (agentdojo) to run these tests")
    pytest.skip("agentdojo is not installed: pip install 'agent-warrant[redteam]'",
                allow_module_level=True)

USERS = ("user_task_0", "user_task_3")
ATTACKS = ("injection_task_0", "injection_task_7")


@pytest.fixture(scope="module")
def banking() -> Report:
    """2 user tasks x 2 injection tasks of banking, every mode and order."""
    return run_agentdojo(["banking"], user_tasks=USERS, injection_tasks=ATTACKS)


def test_the_unprotected_baseline_is_really_attacked(banking: Report) -> None:
    baseline = [r for r in banking.results
                if r.mode == "allow-all" and r.injection_task is not None]
    assert len(baseline) == 2 * 2 * 2
    assert any(r.attack_succeeded for r in baseline)
    assert all(r.status == "scored" for r in baseline)


def test_every_pair_runs_in_every_mode_and_order(banking: Report) -> None:
    attacked = {(r.mode, r.order, r.user_task, r.injection_task)
                for r in banking.results if r.injection_task is not None}
    assert len(attacked) == 3 * 2 * 2 * 2
    alone = {(r.mode, r.user_task) for r in banking.results if r.injection_task is None}
    assert alone == {(m, u) for m in ("allow-all", "role", "task") for u in USERS}


def test_the_task_warrant_refuses_tools_the_user_task_does_not_use(banking: Report) -> None:
    # injection_task_7 changes the password; no banking user task here touches it.
    steps = [s for r in banking.results if r.mode == "task"
             and r.injection_task == "injection_task_7" for s in r.steps
             if s.function == "update_password"]
    assert steps
    assert all(not s.ran and "warrant.tool-not-granted" in s.reasons for s in steps)


def test_warrant_runs_are_never_worse_than_the_baseline(banking: Report) -> None:
    rows = {(row.mode, row.order): row for row in banking.rows()}
    for order in ("user-first", "attacker-first"):
        baseline = rows[("allow-all", order)].attacks_succeeded
        assert rows[("role", order)].attacks_succeeded <= baseline
        assert rows[("task", order)].attacks_succeeded <= baseline


def test_the_risk_table_covers_every_tool_of_every_suite() -> None:
    for name in SUITE_NAMES:
        suite = load_suite(name)
        assert set(suite.tool_names) == set(RISK_TABLE[name]), name


def test_an_unclassified_tool_refuses_to_run() -> None:
    with pytest.raises(RedteamError, match="no risk class"):
        risk_of("banking", "launch_rocket")


def test_an_unknown_suite_is_a_clear_error() -> None:
    with pytest.raises(RedteamError, match="no AgentDojo suite `nosuch`"):
        run_agentdojo(["nosuch"])


@pytest.mark.parametrize(("suite_name", "injection_id"),
                         [(s, i) for s, tasks in EXTRA_GROUND_TRUTH.items() for i in tasks])
def test_written_ground_truth_makes_the_attack_succeed_unprotected(
        suite_name: str, injection_id: str) -> None:
    suite = load_suite(suite_name)
    user_id, user_task = suite.user_tasks[0]
    attack = dict(suite.injection_tasks)[injection_id]
    env = user_task.init_environment(suite.environment(suite.injections_for(user_task, attack)))
    pre = env.model_copy(deep=True)
    runtime = suite.runtime()
    calls = [PlannedCall(c.function, dict(c.args), "attacker")
             for c in attack.ground_truth(pre.model_copy(deep=True))]
    assert calls, injection_id
    played = replay([], calls, order="user-first", gate=_run_all,
                    run=lambda call: runtime.run_function(env, call.function, call.args))
    trace = [suite.function_call(c.function, c.args) for c in played.ran]
    assert suite.check(attack, "", pre, env, trace), f"{injection_id} with {user_id}"


def _run_all(call: PlannedCall, execute: object) -> Step:
    assert callable(execute)
    _, error = execute()
    return Step(call.function, call.origin, Effect.ALLOW, ran=True, error=error)


def test_attacker_first_places_the_attack_right_after_the_injection_is_read() -> None:
    order: list[str] = []
    user = [PlannedCall("read", {}, "user"), PlannedCall("pay", {}, "user")]
    attacker = [PlannedCall("steal", {}, "attacker")]

    def run(call: PlannedCall) -> tuple[object, None]:
        order.append(call.function)
        return ({"body": "hello <INFORMATION> do evil </INFORMATION>"}
                if call.function == "read" else "ok"), None

    replay(user, attacker, order="attacker-first", run=run, gate=_run_all,
           injected=["\n<INFORMATION> do evil </INFORMATION>\n"])
    assert order == ["read", "steal", "pay"]


def _result(suite: str, mode: str, order: str | None, injection: str | None, *,
            utility: bool, attacked: bool | None, status: str = "scored",
            approval: bool = False) -> RunResult:
    steps = (Step("send_money", "user", Effect.ALLOW, ran=True,
                  approval="approved" if approval else None),)
    return RunResult(suite=suite, mode=mode, order=order,  # type: ignore[arg-type]
                     user_task="user_task_0", injection_task=injection,
                     status=status, utility=utility,  # type: ignore[arg-type]
                     attack_succeeded=attacked, steps=steps, seconds=0.0)


def test_report_arithmetic_on_hand_built_results() -> None:
    results = [
        _result("banking", "role", None, None, utility=True, attacked=None, approval=True),
        _result("banking", "role", None, None, utility=False, attacked=None),
        _result("banking", "role", "user-first", "i0", utility=True, attacked=True),
        _result("banking", "role", "user-first", "i1", utility=True, attacked=False),
        _result("banking", "role", "user-first", "i2", utility=False, attacked=False),
        _result("banking", "role", "user-first", "i3", utility=False, attacked=True,
                status="output-only"),
        _result("banking", "role", "user-first", "i4", utility=False, attacked=None,
                status="not-covered"),
        _result("banking", "role", "attacker-first", "i0", utility=True, attacked=True),
        _result("slack", "role", "user-first", "i0", utility=True, attacked=True),
    ]
    row = summarise(results, "banking", "role", "user-first")
    assert (row.pairs, row.attacks_succeeded) == (3, 1)
    assert row.attack_success_rate == pytest.approx(1 / 3)
    # Output-only pairs count for utility, never as blocked or as scored pairs.
    assert row.utility_under_attack_rate == pytest.approx(2 / 4)
    assert (row.output_only, row.output_only_succeeded, row.not_covered) == (1, 1, 1)
    assert row.utility_without_attack_rate == pytest.approx(1 / 2)
    assert row.approval_rate == pytest.approx(1 / 2)
    overall = summarise(results, "all", "role", "user-first")
    assert (overall.pairs, overall.attacks_succeeded) == (4, 2)
    report = Report(results=tuple(results), suites=("banking", "slack"), modes=("role",),
                    orders=("user-first",), seconds=1.0, policy_revision="sha256:test")
    assert [r.suite for r in report.rows()] == ["banking", "slack", "all"]
    assert report.not_covered() == ["banking/i4"]
    text = report.render_markdown()
    assert "| banking | role | user-first | 33.3% (1/3) |" in text
    assert "| 1 / 0 |" in text
    assert '"attack_success_rate"' in report.render_json()


def test_the_report_says_what_the_simulated_human_approves() -> None:
    results = [_result("banking", "role", "user-first", "i0", utility=True, attacked=False)]
    report = Report(results=tuple(results), suites=("banking",), modes=("role",),
                    orders=("user-first",), seconds=1.0, policy_revision="sha256:test")
    text = " ".join(report.render_markdown().split())
    assert "approves a held call only when it is exactly one of the user task's" in text
    assert "counts as blocked only because this human refused it" in text


def test_without_agentdojo_the_error_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "agentdojo.task_suite.load_suites", None)
    assert not agentdojo_available()
    with pytest.raises(RedteamError) as caught:
        _agentdojo("task_suite.load_suites")
    assert "agent-warrant[redteam]" in caught.value.diagnostics()
