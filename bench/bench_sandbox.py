"""Sandbox start-up overhead vs. a plain subprocess of the same command, in one run.

Run: .venv/bin/python bench/bench_sandbox.py [N]   (needs bubblewrap: scripts/install-system-deps)

Cases: `/bin/true` and `python3 -c pass`, each started plainly with subprocess
(stdout/stderr piped, like the runner) and through `run_sandboxed` (namespaces,
seccomp, Landlock where the kernel has it, rlimits, scrubbed environment, pipe
pump). Plus a Python tool as `Guard(sandbox=...)` runs it (`call_in_sandbox`:
function sent by code, Landlock file rules inside, JSON back) against the same
bootstrap run as a plain subprocess, and the egress profile's extra set-up
(proxy started in the sandbox's network namespace) for `/bin/true`. Reports p50
added ms; targets: <= 15 ms native, <= 30 ms Python. Writes
bench/results/sandbox.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, table, write_results

from warrant.sandbox import SandboxProfile, call_in_sandbox, get_profile, run_sandboxed
from warrant.sandbox._pytool import BOOTSTRAP, _interpreter, function_spec

TARGET_MS = {"/bin/true": 15.0, "python3 -c pass": 30.0, "python tool": 30.0,
             "/bin/true egress": 15.0}


def tool(text: str) -> str:
    return text.upper()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    profile = get_profile()
    rows: list[tuple[str, dict[str, float]]] = []
    added: dict[str, float] = {}
    for label, argv in (("/bin/true", ["/bin/true"]),
                        ("python3 -c pass", ["/usr/bin/python3", "-c", "pass"])):
        def plain(argv: list[str] = argv) -> None:
            subprocess.run(argv, capture_output=True, check=True)

        def sandboxed(argv: list[str] = argv) -> None:
            result = run_sandboxed(argv, profile)
            assert result.ok, result

        base = measure(plain, n=n, warmup=20)
        boxed = measure(sandboxed, n=n, warmup=20)
        rows += [(f"{label} (plain)", base), (f"{label} (sandboxed)", boxed)]
        added[label] = (boxed["p50_us"] - base["p50_us"]) / 1000
    request = json.dumps({"fn": function_spec(tool), "kwargs": {"text": "x"}, "path": []})
    python = _interpreter()

    def plain_tool() -> None:
        out = subprocess.run([python, "-I", "-S", "-c", BOOTSTRAP], input=request.encode(),
                             capture_output=True, check=True).stdout
        assert json.loads(out)["result"] == "X", out

    def boxed_tool() -> None:
        assert call_in_sandbox(tool, {"text": "x"}, profile)[0] == "X"

    base, boxed = measure(plain_tool, n=n, warmup=20), measure(boxed_tool, n=n, warmup=20)
    rows += [("python tool (plain bootstrap)", base), ("python tool (sandboxed)", boxed)]
    added["python tool"] = (boxed["p50_us"] - base["p50_us"]) / 1000
    egress = SandboxProfile(name="egress", network="egress-allowlist")

    def plain_true() -> None:
        subprocess.run(["/bin/true"], capture_output=True, check=True)

    def egress_true() -> None:
        assert run_sandboxed(["/bin/true"], egress).ok

    base, boxed = measure(plain_true, n=n, warmup=20), measure(egress_true, n=n, warmup=20)
    rows += [("/bin/true egress (plain)", base), ("/bin/true egress (sandboxed)", boxed)]
    added["/bin/true egress"] = (boxed["p50_us"] - base["p50_us"]) / 1000
    print(table(rows))
    for label, ms in added.items():
        verdict = "ok" if ms <= TARGET_MS[label] else "OVER TARGET"
        print(f"p50 added {label}: {ms:.1f} ms (target <= {TARGET_MS[label]:g} ms) {verdict}")
    path = write_results("sandbox", {"cases": dict(rows), "p50_added_ms": added,
                                     "target_ms": TARGET_MS})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
