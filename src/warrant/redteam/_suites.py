"""AgentDojo's suites, tasks and attack text, loaded through AgentDojo's own API.

AgentDojo is an optional extra (`agent-warrant[redteam]`); it is imported only
when a suite is loaded, so `import warrant.redteam` works without it. AgentDojo
ships without type information: everything from it is `Any` here, and this is
the only module that touches its task-suite internals.

Injections follow AgentDojo exactly: its `get_injection_candidates` runs the
user task's ground truth with canaries to find the vectors the task reads, and
the attack text is its "important_instructions" template, with the generic
user and model names AgentDojo itself uses when no model is named.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from warrant.errors import WarrantError

from ._agentdojo_extra import with_ground_truth

#: The AgentDojo benchmark version replayed (the default of AgentDojo's own runner).
BENCHMARK_VERSION = "v1.2.2"
SUITE_NAMES = ("banking", "slack", "workspace", "travel")
_INSTALL_HINT = "install agent-warrant[redteam] (pip install 'agent-warrant[redteam]')"


class RedteamError(WarrantError):
    """The red-team benchmark cannot run (AgentDojo missing, unknown suite or tool)."""

    code = "redteam.error"


def _agentdojo(module: str) -> Any:
    try:
        return importlib.import_module(f"agentdojo.{module}")
    except ImportError as exc:
        raise RedteamError("the red-team benchmark needs the `agentdojo` package",
                           hint=_INSTALL_HINT) from exc


def agentdojo_available() -> bool:
    """True when AgentDojo can be imported (the `redteam` extra is installed)."""
    try:
        _agentdojo("task_suite.load_suites")
    except RedteamError:
        return False
    return True


def task_number(task_id: str) -> int:
    """`user_task_12` → 12, so tasks sort as AgentDojo numbers them."""
    match = re.search(r"(\d+)$", task_id)
    return int(match.group(1)) if match else -1


@dataclass(frozen=True, slots=True)
class Suite:
    """One AgentDojo suite: its tools and tasks, in AgentDojo's numbering order."""

    name: str
    suite: Any
    user_tasks: tuple[tuple[str, Any], ...]
    injection_tasks: tuple[tuple[str, Any], ...]

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(str(tool.name) for tool in self.suite.tools)

    def tool_description(self, name: str) -> str:
        for tool in self.suite.tools:
            if tool.name == name:
                return str(tool.description).split("\n", 1)[0]
        return ""

    def runtime(self) -> Any:
        """A fresh AgentDojo `FunctionsRuntime` over the suite's tools."""
        return _agentdojo("functions_runtime").FunctionsRuntime(self.suite.tools)

    def environment(self, injections: dict[str, str]) -> Any:
        """The suite's default environment with `injections` placed in their vectors."""
        return self.suite.load_and_inject_default_environment(injections)

    def check(self, task: Any, model_output: str, pre_env: Any, post_env: Any,
              trace: list[Any]) -> bool:
        """AgentDojo's own utility/security check for `task` (the `*_from_traces` variant first).

        For an injection task, True means the ATTACK succeeded.
        """
        types = _agentdojo("types")
        blocks = [types.text_content_block_from_string(model_output)]
        return bool(self.suite._check_task_result(task, blocks, pre_env, post_env, trace))

    def function_call(self, function: str, args: dict[str, Any]) -> Any:
        """An AgentDojo `FunctionCall` (what trace-based checks read)."""
        return _agentdojo("functions_runtime").FunctionCall(function=function, args=dict(args))

    def injections_for(self, user_task: Any, injection_task: Any) -> dict[str, str]:
        """The attack for one pair: AgentDojo's important-instructions text in every vector
        the user task reads. Empty when the user task reads no vector."""
        return _attack(self.name).attack(user_task, injection_task)  # type: ignore[no-any-return]


@cache
def _attack(suite_name: str) -> Any:
    """AgentDojo's important-instructions attack with its generic names (no model is named)."""
    base = _agentdojo("attacks.base_attacks")
    important = _agentdojo("attacks.important_instructions_attacks")
    pipeline = _agentdojo("agent_pipeline.ground_truth_pipeline").GroundTruthPipeline(None)
    attack = base.FixedJailbreakAttack(important.ImportantInstructionsAttack._JB_STRING,
                                       load_suite(suite_name).suite, pipeline)
    attack.user_name = base.DEFAULT_USER_NAME
    attack.model_name = base.DEFAULT_MODEL_NAME
    return _Injectable(attack)


class _Injectable:
    """Wraps the attack so a user task that reads no vector yields no injections
    (AgentDojo raises `ValueError` for it, and skips the task in its own runs)."""

    def __init__(self, attack: Any):
        self._attack = attack

    def attack(self, user_task: Any, injection_task: Any) -> dict[str, str]:
        try:
            return dict(self._attack.attack(user_task, injection_task))
        except ValueError:
            return {}


@cache
def load_suite(name: str) -> Suite:
    """One suite of AgentDojo `BENCHMARK_VERSION`; raises `RedteamError` if unknown or missing."""
    suites = _agentdojo("task_suite.load_suites").get_suites(BENCHMARK_VERSION)
    if name not in suites:
        known = ", ".join(sorted(suites))
        raise RedteamError(f"no AgentDojo suite `{name}` (known: {known})")
    suite = suites[name]
    users = sorted(suite.user_tasks.items(), key=lambda item: task_number(item[0]))
    injections = sorted(with_ground_truth(name, suite.injection_tasks).items(),
                        key=lambda item: task_number(item[0]))
    return Suite(name=name, suite=suite, user_tasks=tuple(users),
                 injection_tasks=tuple(injections))
