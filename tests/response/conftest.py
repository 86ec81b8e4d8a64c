"""Fixtures for the response engine: a started engine over the real domain, and a watcher."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from warrant.enforce import Pipeline, TrustDomain
from warrant.response import DetectionConfig, ResponseEngine

CANARY = "CANARY-7f3a9c"
#: A honeytoken shaped like an AWS access key: DLP redacts it before the log keeps it.
SECRET_CANARY = "AKIAZ7HONEYT0KEN2QX4"


class Watch:
    """Collects the engine's notifications; `wait` blocks (with a timeout) until one matches."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Mapping[str, Any]]] = []
        self._cond = threading.Condition()

    def __call__(self, kind: str, incident_id: str, detail: Mapping[str, Any]) -> None:
        with self._cond:
            self.seen.append((kind, incident_id, detail))
            self._cond.notify_all()

    def wait(self, kind: str, match: Callable[[str, Mapping[str, Any]], bool] = lambda i, d: True,
             timeout: float = 5.0) -> tuple[str, Mapping[str, Any]]:
        found: list[tuple[str, Mapping[str, Any]]] = []

        def ready() -> bool:
            found[:] = [(i, d) for k, i, d in self.seen if k == kind and match(i, d)]
            return bool(found)

        with self._cond:
            assert self._cond.wait_for(ready, timeout), f"no `{kind}` in {timeout}s: {self.seen}"
        return found[0]

    def kinds(self) -> list[str]:
        with self._cond:
            return [k for k, _, _ in self.seen]


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def pipeline(domain: TrustDomain) -> Pipeline:
    return Pipeline(domain)


@pytest.fixture
def engine(domain: TrustDomain, watch: Watch) -> Iterator[ResponseEngine]:
    """The default detections and playbooks, with a canary planted."""
    started = ResponseEngine(domain, config=DetectionConfig(canaries=(CANARY, SECRET_CANARY)))
    started.observe(watch)
    with started:
        yield started
