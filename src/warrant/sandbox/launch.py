"""The sandbox launcher's entry point: `python -I .../warrant/sandbox/launch.py ... -- CMD`.

Started by whatever spawns a sandboxed server (see `sandboxed_command`); it sets
up the seccomp filter and limits, then execs bubblewrap. Run as a file (`-I`
ignores PYTHONPATH), so it makes its own package importable first.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    if not __package__:  # run as a file: sys.path[0] is this directory, not the package root
        sys.path[0] = str(Path(__file__).resolve().parents[2])
    from warrant.sandbox._launch import main

    main()
