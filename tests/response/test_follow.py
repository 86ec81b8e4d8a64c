"""`warrant incidents list --follow` prints incidents as the engine opens them."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import AgentKit, make_agent
from warrant.enforce import Pipeline, TrustDomain
from warrant.response import ResponseEngine

from .conftest import CANARY, Watch

#: Generous bound on how long a line may take to appear (process start-up, polling).
WAIT = 30.0


class Lines:
    """A process's stdout, line by line, read on a thread so every wait is bounded."""

    def __init__(self, proc: subprocess.Popen[str]):
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next(self) -> str:
        try:
            line = self._lines.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError(f"no line from `warrant incidents list --follow` "
                                 f"within {WAIT}s") from None
        assert line is not None, "the follow command exited"
        return line


@contextmanager
def following(home: Path, *args: str) -> Iterator[tuple[Lines, subprocess.Popen[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "warrant", "incidents", "list", "--follow", "--interval", "0.1",
         *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "WARRANT_HOME": str(home)})
    try:
        yield Lines(proc), proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)
        assert proc.stderr is not None
        proc.stderr.close()


def canary_call(pipeline: Pipeline, agent: AgentKit) -> None:
    pipeline.decide(agent.request("send_email", to="ops@acme.example", body=CANARY))


def test_follow_prints_a_new_incident_as_it_opens(
        domain: TrustDomain, engine: ResponseEngine, watch: Watch, pipeline: Pipeline,
        agent: AgentKit) -> None:
    canary_call(pipeline, agent)
    first, _ = watch.wait("alert")
    with following(domain.home, "--json") as (lines, proc):
        # The incident that was already open is listed first: the command is polling now.
        assert json.loads(lines.next())["incident_id"] == first
        other = make_agent(domain, "courier")
        canary_call(pipeline, other)
        second, _ = watch.wait("alert", lambda i, d: i != first)
        shown = json.loads(lines.next())
        assert shown["incident_id"] == second
        assert shown["agent"] == other.agent_id and shown["severity"] == "critical"
        assert "response.canary-token" in shown["detections"]
        proc.send_signal(signal.SIGINT)  # Ctrl-C ends following quietly
        assert proc.wait(WAIT) == 0
        assert proc.stderr is not None
        err = proc.stderr.read()
    assert "Traceback" not in err


def test_follow_in_human_form_names_the_incident_and_its_agent(
        domain: TrustDomain, engine: ResponseEngine, watch: Watch, pipeline: Pipeline,
        agent: AgentKit) -> None:
    with following(domain.home) as (lines, _):
        canary_call(pipeline, agent)
        incident_id, _ = watch.wait("alert")
        line = lines.next()
    assert line.startswith(incident_id) and agent.agent_id in line
