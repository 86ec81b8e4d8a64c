"""Run the `warrant` command as a user does: a real process with its own home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def warrant(home: Path, *args: str, expect: int | None = 0, stdin: str | None = None) -> str:
    """Run `warrant ARGS` with WARRANT_HOME=home; check the exit status (unless `expect` is
    None); stdout + stderr."""
    env = {**os.environ, "WARRANT_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "warrant", *args], capture_output=True,
                          text=True, env=env, input=stdin, timeout=60, check=False)
    assert expect is None or proc.returncode == expect, (proc.returncode, proc.stdout,
                                                         proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout + proc.stderr
