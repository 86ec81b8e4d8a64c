"""Sandbox tests run real bubblewrap. Checked once: skipped only when it truly cannot run
here, and never skipped under CI=true, where a missing sandbox is a failure."""

from __future__ import annotations

import os

import pytest

from warrant.sandbox import SandboxUnavailable
from warrant.sandbox._bwrap import check_works, find_bwrap


def _problem() -> str | None:
    try:
        check_works(find_bwrap())
    except SandboxUnavailable as exc:
        return f"{exc.message} ({exc.hint})"
    return None


_PROBLEM = _problem()


@pytest.fixture(autouse=True)
def _need_bubblewrap(request: pytest.FixtureRequest) -> None:
    if _PROBLEM is None or request.node.get_closest_marker("no_bwrap_needed"):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"bubblewrap must work in CI: {_PROBLEM}")
    pytest.skip(f"bubblewrap cannot run here: {_PROBLEM}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_bwrap_needed: runs even where bubblewrap cannot")
