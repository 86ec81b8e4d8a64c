"""The sandboxed processes this process started, and for which agent.

Whoever starts a long-running sandboxed process (the gateway, for its stdio MCP
servers) or a sandboxed tool run registers it with the agent (and task) it
works for; the response engine's `kill_sandboxes` step ends every one of an
agent's processes when that agent is contained. Only processes of this OS
process are known: in a multi-process deployment each process runs its own
engine step (the fan-out is a later issue's).

INVARIANT: a registered `kill` must be safe to call more than once and on a
process that already ended.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("warrant.sandbox")


@dataclass(frozen=True, slots=True)
class RunningSandbox:
    """One live sandboxed process: whom it works for and how to end it."""

    token: int
    agent: str | None
    task: str | None
    label: str
    kill: Callable[[], None]


_lock = threading.Lock()
_running: dict[int, RunningSandbox] = {}
_tokens = itertools.count(1)


def register(*, kill: Callable[[], None], agent: str | None, task: str | None = None,
             label: str) -> int:
    """Remember a live sandboxed process; returns the token to `unregister` it with."""
    with _lock:
        token = next(_tokens)
        _running[token] = RunningSandbox(token, agent, task, label, kill)
        return token


def unregister(token: int) -> None:
    with _lock:
        _running.pop(token, None)


def running(*, agent: str | None = None, task: str | None = None) -> list[RunningSandbox]:
    """The live sandboxed processes of `agent` (and `task`, when given)."""
    with _lock:
        return [r for r in _running.values()
                if (agent is None or r.agent == agent) and (task is None or r.task == task)]


def kill_running(*, agent: str, task: str | None = None) -> list[str]:
    """Kill every sandboxed process of `agent` (of `task` only, when given).

    Returns the labels of the processes ended. A kill that fails is logged and
    the others still run; the failure is re-raised at the end so the caller
    (a playbook step) reports it.
    """
    ended: list[str] = []
    failure: Exception | None = None
    for entry in running(agent=agent, task=task):
        try:
            entry.kill()
        except Exception as exc:  # one stuck process must not shield the others
            log.exception("could not kill sandboxed %s", entry.label)
            failure = exc
            continue
        unregister(entry.token)
        ended.append(entry.label)
    if failure is not None:
        raise failure
    return ended
