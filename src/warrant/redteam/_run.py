"""Running AgentDojo pairs through Warrant (and without it) and scoring them.

For each suite: every selected user task alone (utility without attack), then
every (user task, injection task) pair under each mode and order. Modes:

* `allow-all`: no Warrant at all, every call runs (the baseline);
* `role`: a role warrant granting every tool of the suite (no knowledge of the task);
* `task`: a warrant naming only the tools the user task's ground truth uses —
  an upper bound for a well-behaved planner, not something a compromised agent gives.

One trust domain per run, in a temporary directory, with a fresh credential
and warrant per task. Scores are AgentDojo's own checks; for an injection task,
`attack_succeeded` is its `security()` (True means the ATTACK worked).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from warrant import warrants
from warrant.enforce import Guard, TrustDomain
from warrant.types import ToolInfo

from ._agent import (
    AnswerGate,
    Gate,
    Order,
    PlannedCall,
    Step,
    WarrantGate,
    no_warrant,
    replay,
    unchecked_answer,
)
from ._risk import risk_of
from ._suites import RedteamError, Suite, load_suite

Mode = Literal["allow-all", "role", "task"]
#: How a pair was scored: `scored`; `output-only` (the attack only changes what the agent
#: says, which Warrant does not filter); `not-covered` (no ground truth for the attack).
Status = Literal["scored", "output-only", "not-covered", "not-injectable", "check-error"]
MODES: tuple[Mode, ...] = ("allow-all", "role", "task")
ORDERS: tuple[Order, ...] = ("user-first", "attacker-first")
AGENT = "agentdojo-agent"
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RunResult:
    """One replay: a user task alone (`injection_task` None) or one attacked pair."""

    suite: str
    mode: Mode
    order: Order | None
    user_task: str
    injection_task: str | None
    status: Status
    utility: bool
    attack_succeeded: bool | None
    steps: tuple[Step, ...]
    seconds: float
    detail: str | None = None

    @property
    def approvals_needed(self) -> int:
        return sum(1 for step in self.steps if step.approval is not None)

    def to_json(self) -> dict[str, Any]:
        return {"suite": self.suite, "mode": self.mode, "order": self.order,
                "user_task": self.user_task, "injection_task": self.injection_task,
                "status": self.status, "utility": self.utility,
                "attack_succeeded": self.attack_succeeded,
                "approvals_needed": self.approvals_needed, "seconds": round(self.seconds, 4),
                "detail": self.detail, "steps": [s.to_json() for s in self.steps]}


class Harness:
    """One trust domain for the whole run: the agent, the catalogue, warrants per task."""

    def __init__(self, domain: TrustDomain):
        self.domain = domain
        self.guard = Guard(domain)
        self._suites: set[str] = set()

    @classmethod
    @contextmanager
    def create(cls, policy_dir: Path | None = None,
               detector: str | None = None) -> Iterator[Harness]:
        """A throwaway domain (default policy pack, or the policies in `policy_dir`).

        `detector` sets `flow_injection_detector` (default: the domain default, "auto").
        """
        with tempfile.TemporaryDirectory(prefix="warrant-redteam-") as tmp:
            home = Path(tmp) / "home"
            # Speed: the log survives a killed process, not an OS crash (fine for a benchmark).
            settings: dict[str, Any] = {"audit_durability": "normal"}
            if detector is not None:
                settings["flow_injection_detector"] = detector
            TrustDomain.init(home, "redteam.example", settings=settings).close()
            if policy_dir is not None:
                _use_policies(home / "policies", policy_dir)
            domain = TrustDomain.open(home)
            try:
                domain.register_agent(AGENT, owner="redteam", purpose="replays AgentDojo tasks")
                yield cls(domain)
            finally:
                domain.close()

    def register(self, suite: Suite) -> None:
        """Put every tool of the suite in the catalogue with its declared risk class."""
        if suite.name in self._suites:
            return
        now = time.time()
        for name in suite.tool_names:
            self.domain.store.put_tool(ToolInfo(
                name=name, server=suite.name, risk_class=risk_of(suite.name, name),
                description=suite.tool_description(name)), now)
        self._suites.add(suite.name)

    @contextmanager
    def gate(self, suite: Suite, tools: Sequence[str], *, task: str, instruction: str,
             requested: Sequence[PlannedCall]) -> Iterator[tuple[Gate, AnswerGate]]:
        """A fresh credential, warrant (`tools` of `suite`) and session for one task."""
        issued = self.domain.issue_credential(AGENT)
        grants = [warrants.ToolGrant(f"{suite.name}/{name}") for name in sorted(set(tools))]
        _, token = self.domain.mint(agent=AGENT, task=task, tools=grants,
                                          on_behalf_of="user:agentdojo-user",
                                          instruction=instruction)
        with self.guard.session(credential=issued.token, warrant=token,
                                agent_key=self.domain.agent_key(AGENT)) as session:
            gate = WarrantGate(self.domain, session, suite.name, requested)
        yield gate, gate.answer


def _use_policies(target: Path, source: Path) -> None:
    if not source.is_dir() or not any(source.glob("*.cedar")):
        raise RedteamError(f"`{source}` holds no Cedar policies",
                           hint="pass --home with a trust domain made by `warrant init`")
    shutil.rmtree(target)
    shutil.copytree(source, target)


def _planned(calls: Sequence[Any], origin: Literal["user", "attacker"]) -> tuple[PlannedCall, ...]:
    return tuple(PlannedCall(function=str(c.function), args=dict(c.args), origin=origin)
                 for c in calls)


@dataclass(frozen=True, slots=True)
class _Pair:
    """Everything about one replay that does not depend on mode or order.

    `environment` is the task's environment before the agent runs (after
    AgentDojo's `init_environment`); each replay works on its own deep copy.
    """

    suite: Suite
    user_id: str
    user_task: Any
    injection_id: str | None
    injection_task: Any
    environment: Any
    injected: tuple[str, ...]
    user_calls: tuple[PlannedCall, ...]
    attacker_calls: tuple[PlannedCall, ...]
    output: str
    status: Status


def _pair(suite: Suite, user_id: str, user_task: Any, injection_id: str | None,
          attack: Any, injections: dict[str, str]) -> _Pair:
    env = user_task.init_environment(suite.environment(injections))
    user_calls = _planned(user_task.ground_truth(env.model_copy(deep=True)), "user")
    attacker_calls: tuple[PlannedCall, ...] = ()
    output = str(user_task.GROUND_TRUTH_OUTPUT)
    status: Status = "scored"
    if attack is not None:
        attacker_calls = _planned(attack.ground_truth(env.model_copy(deep=True)), "attacker")
        said = str(attack.GROUND_TRUTH_OUTPUT)
        # A compromised agent also says what the attacker wants it to say.
        output = " ".join(part for part in (output, said) if part)
        if not injections:
            status = "not-injectable"
        elif not attacker_calls:
            status = "output-only" if said else "not-covered"
    return _Pair(suite, user_id, user_task, injection_id, attack, env,
                 tuple(injections.values()), user_calls, attacker_calls, output, status)


def run_suite(suite_name: str, harness: Harness, *, modes: Sequence[Mode] = MODES,
              orders: Sequence[Order] = ORDERS, limit: int | None = None,
              user_tasks: Sequence[str] | None = None,
              injection_tasks: Sequence[str] | None = None,
              progress: Progress | None = None) -> list[RunResult]:
    """Every selected user task alone, then every selected pair, in every mode and order."""
    suite = load_suite(suite_name)
    harness.register(suite)
    users = [(i, t) for i, t in suite.user_tasks if user_tasks is None or i in user_tasks]
    attacks = [(i, t) for i, t in suite.injection_tasks
               if injection_tasks is None or i in injection_tasks]
    pairs = [(u, a) for u in users for a in attacks][:limit]
    if limit is not None:
        chosen = {u[0] for u, _ in pairs}
        users = [u for u in users if u[0] in chosen]
    say = progress or (lambda _text: None)
    results: list[RunResult] = []
    for user_id, user_task in users:
        alone = _pair(suite, user_id, user_task, None, None, {})
        results.extend(_run(alone, harness, mode, None) for mode in modes)
    say(f"{suite.name}: {len(users)} user task{'' if len(users) == 1 else 's'} alone done; "
        f"{len(pairs)} pairs to go")
    started = time.perf_counter()
    for n, ((user_id, user_task), (injection_id, attack)) in enumerate(pairs, 1):
        pair = _pair(suite, user_id, user_task, injection_id, attack,
                     suite.injections_for(user_task, attack))
        results.extend(_run(pair, harness, mode, order) for mode in modes for order in orders)
        if n % 20 == 0 or n == len(pairs):
            say(f"{suite.name}: {n}/{len(pairs)} pairs ({time.perf_counter() - started:.1f}s)")
    return results


def _run(pair: _Pair, harness: Harness, mode: Mode, order: Order | None) -> RunResult:
    started = time.perf_counter()
    suite, user_task, attack = pair.suite, pair.user_task, pair.injection_task
    result = RunResult(suite.name, mode, order, pair.user_id, pair.injection_id, pair.status,
                       utility=False, attack_succeeded=None, steps=(), seconds=0.0)
    if pair.status in ("not-covered", "not-injectable"):
        return result
    env = pair.environment.model_copy(deep=True)
    pre = pair.environment.model_copy(deep=True)
    runtime = suite.runtime()

    def execute(call: PlannedCall) -> tuple[Any, str | None]:
        value, error = runtime.run_function(env, call.function, call.args)
        return value, error

    with _gate(harness, mode, pair) as (gate, answer):
        played = replay(pair.user_calls, pair.attacker_calls, order=order or "user-first",
                        run=execute, gate=gate, injected=pair.injected)
        output, withheld = answer(pair.output)
    steps = played.steps if withheld is None else (*played.steps, withheld)
    trace = [suite.function_call(c.function, c.args) for c in played.ran]
    try:
        utility = suite.check(user_task, output, pre, env, trace)
        succeeded = None if attack is None else suite.check(attack, output, pre, env, trace)
    except Exception as exc:  # AgentDojo's check crashed on this state: say so, never "blocked"
        return _replace(result, status="check-error", steps=steps,
                        detail=f"{type(exc).__name__}: {exc}", started=started)
    return _replace(result, utility=utility, attack_succeeded=succeeded, steps=steps,
                    started=started)


def _replace(result: RunResult, *, started: float, **changes: Any) -> RunResult:
    return dataclasses.replace(result, seconds=time.perf_counter() - started, **changes)


@contextmanager
def _gate(harness: Harness, mode: Mode, pair: _Pair) -> Iterator[tuple[Gate, AnswerGate]]:
    if mode == "allow-all":
        yield no_warrant, unchecked_answer
        return
    suite = pair.suite
    tools = suite.tool_names if mode == "role" else [c.function for c in pair.user_calls]
    task = f"agentdojo {suite.name} {pair.user_id}"
    with harness.gate(suite, tools, task=task, instruction=str(pair.user_task.PROMPT),
                      requested=pair.user_calls) as gate:
        yield gate
