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

`bench_sandbox.py --ablation [N]`: bubblewrap alone (as the sandbox's host user,
`/bin/true`, no seccomp or limits), one layout change at a time, all variants
interleaved round by round so load drifts hit them alike; plus the same layout
started the old way (fork + `preexec_fn`) and the whole `run_sandboxed`. Writes
bench/results/sandbox_ablation.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import table, write_results

from warrant.sandbox import SandboxProfile, call_in_sandbox, get_profile, run_sandboxed
from warrant.sandbox._bwrap import (
    _BASE_DIRS,
    _DEV_LINKS,
    _DEVICES,
    close_copies,
    find_bwrap,
    host_ids,
    open_copies,
)
from warrant.sandbox._landlock import restrict_self, ruleset_fd
from warrant.sandbox._pytool import BOOTSTRAP, _interpreter, function_spec
from warrant.sandbox._spawn import spawn

TARGET_MS = {"/bin/true": 15.0, "python3 -c pass": 30.0, "python tool": 30.0,
             "/bin/true egress": 15.0}


def tool(text: str) -> str:
    return text.upper()


def paired(plain: Callable[[], object], boxed: Callable[[], object], n: int,
           warmup: int = 20) -> tuple[dict[str, float], dict[str, float], float]:
    """Plain and sandboxed runs alternated call by call, so load that drifts during the
    run (other jobs on a shared machine) hits both alike. Returns the stats of each and
    the median of the per-pair differences in ms."""
    for _ in range(warmup):
        plain()
        boxed()
    times: tuple[list[int], list[int]] = ([], [])
    for _ in range(n):
        for index, fn in enumerate((plain, boxed)):
            start = time.perf_counter_ns()
            fn()
            times[index].append(time.perf_counter_ns() - start)
    diffs = [b - a for a, b in zip(*times, strict=True)]

    def stats(samples: list[int]) -> dict[str, float]:
        ordered = sorted(samples)
        return {"p50_us": ordered[n // 2] / 1000, "p99_us": ordered[min(n - 1, n * 99 // 100)]
                / 1000, "mean_us": statistics.fmean(ordered) / 1000, "n": n}

    return stats(times[0]), stats(times[1]), statistics.median(diffs) / 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    profile = get_profile()
    egress = SandboxProfile(name="egress", network="egress-allowlist")
    request = json.dumps({"fn": function_spec(tool), "kwargs": {"text": "x"}, "path": []})
    python = _interpreter()

    def plain_tool() -> None:
        out = subprocess.run([python, "-I", "-S", "-c", BOOTSTRAP], input=request.encode(),
                             capture_output=True, check=True).stdout
        assert json.loads(out)["result"] == "X", out

    def boxed_tool() -> None:
        assert call_in_sandbox(tool, {"text": "x"}, profile)[0] == "X"

    def command(argv: list[str], p: SandboxProfile) -> tuple[Callable[[], object],
                                                             Callable[[], object]]:
        def plain() -> None:
            subprocess.run(argv, capture_output=True, check=True)

        def boxed() -> None:
            result = run_sandboxed(argv, p)
            assert result.ok, result

        return plain, boxed

    cases = [("/bin/true", *command(["/bin/true"], profile)),
             ("python3 -c pass", *command(["/usr/bin/python3", "-c", "pass"], profile)),
             ("python tool", plain_tool, boxed_tool),
             ("/bin/true egress", *command(["/bin/true"], egress))]
    load = os.getloadavg()[0]
    rows: list[tuple[str, dict[str, float]]] = []
    added: dict[str, float] = {}
    pair_median: dict[str, float] = {}
    for label, plain, boxed in cases:
        base, sandboxed, diff = paired(plain, boxed, n)
        rows += [(f"{label} (plain)", base), (f"{label} (sandboxed)", sandboxed)]
        added[label] = (sandboxed["p50_us"] - base["p50_us"]) / 1000
        pair_median[label] = diff
    print(table(rows))
    print(f"load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    for label, ms in added.items():
        verdict = "ok" if ms <= TARGET_MS[label] else "OVER TARGET"
        print(f"p50 added {label}: {ms:.1f} ms (median paired difference "
              f"{pair_median[label]:.1f} ms; target <= {TARGET_MS[label]:g} ms) {verdict}")
    path = write_results("sandbox", {"cases": dict(rows), "p50_added_ms": added,
                                     "median_paired_difference_ms": pair_median,
                                     "target_ms": TARGET_MS})
    print(f"wrote {path}")


# -- ablation ------------------------------------------------------------------------------

_OLD_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
            "/etc/localtime")


def _layout(*, etc: str, dev: str, copies: dict[str, int]) -> list[str]:
    """bubblewrap's options for one layout variant (namespaces and /usr as the runner)."""
    args = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--cap-drop", "ALL", "--uid", "65534", "--gid", "65534",
            "--hostname", "sandbox", "--ro-bind", "/usr", "/usr"]
    for path in _BASE_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    binds = {"old": _OLD_ETC, "no-conf": _OLD_ETC[:1] + _OLD_ETC[3:],
             "symlink": _OLD_ETC[:1] + _OLD_ETC[3:4], "copy": _OLD_ETC[3:4]}[etc]
    args += [a for path in binds for a in ("--ro-bind-try", path, path)]
    if etc in ("symlink", "copy") and os.path.islink("/etc/localtime"):
        args += ["--symlink", os.readlink("/etc/localtime"), "/etc/localtime"]
    if etc == "copy":
        args += [a for dest, fd in copies.items() for a in ("--file", str(fd), dest)]
    args += ["--proc", "/proc"]
    if dev == "old":
        args += ["--dev", "/dev"]
    else:
        args += [a for d in _DEVICES for a in ("--dev-bind", d, d)]
        args += [a for target, link in _DEV_LINKS for a in ("--symlink", target, link)]
    return [*args, "--tmpfs", "/tmp", "--remount-ro", "/", "--chdir", "/tmp", "--clearenv"]


def _bwrap_case(*, etc: str, dev: str, old_spawn: bool = False) -> Callable[[], None]:
    bwrap, ids = find_bwrap(), host_ids()
    landlock = ruleset_fd(None)

    def run() -> None:
        copies = open_copies() if etc == "copy" else {}
        argv = [bwrap, *_layout(etc=etc, dev=dev, copies=copies), "--", "/bin/true"]
        try:
            if old_spawn:
                proc = subprocess.Popen(
                    argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/", env={},
                    pass_fds=tuple(copies.values()), start_new_session=True,
                    user=ids[0] if ids else None, group=ids[1] if ids else None,
                    extra_groups=[] if ids else None,
                    preexec_fn=lambda: restrict_self(landlock) if landlock else None)  # noqa: PLW1509
            else:
                proc, _ = spawn(argv, connect_port=None, ids=ids, fallback_limits=lambda: None,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/", env={},
                                pass_fds=tuple(copies.values()), start_new_session=True)
        finally:
            close_copies(copies)
        _, err = proc.communicate()
        assert proc.returncode == 0, err

    return run


def ablation(n: int) -> None:
    ids = host_ids()
    cases: dict[str, Callable[[], object]] = {
        "plain /bin/true (as the same user)": lambda: subprocess.run(
            ["/bin/true"], capture_output=True, check=True, env={}, cwd="/",
            user=ids[0] if ids else None, group=ids[1] if ids else None,
            extra_groups=[] if ids else None),
        "bwrap: old layout (5 /etc binds, --dev)": _bwrap_case(etc="old", dev="old"),
        "  - ld.so.conf, ld.so.conf.d": _bwrap_case(etc="no-conf", dev="old"),
        "  + /etc/localtime as a symlink": _bwrap_case(etc="symlink", dev="old"),
        "  + /etc/ld.so.cache copied (--file)": _bwrap_case(etc="copy", dev="old"),
        "  + /dev: 4 device binds on the ro root": _bwrap_case(etc="copy", dev="new"),
        "new layout, old spawn (fork + preexec_fn)": _bwrap_case(etc="copy", dev="new",
                                                                 old_spawn=True),
        "run_sandboxed (everything)": lambda: None if run_sandboxed(
            ["/bin/true"], get_profile()).ok else sys.exit("run_sandboxed failed"),
    }
    samples: dict[str, list[int]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up: spawner threads, caches
        for _ in range(5):
            fn()
    for _ in range(n):
        for name, fn in cases.items():
            start = time.perf_counter_ns()
            fn()
            samples[name].append(time.perf_counter_ns() - start)
    medians = {name: statistics.median(v) / 1e6 for name, v in samples.items()}
    width = max(map(len, medians))
    print(f"load average {os.getloadavg()[0]:.2f}; {n} interleaved rounds; p50 ms")
    for name, ms in medians.items():
        print(f"{name:<{width}}  {ms:6.2f}")
    path = write_results("sandbox_ablation", {"p50_ms": medians, "rounds": n})
    print(f"wrote {path}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--ablation"]:
        ablation(int(sys.argv[2]) if len(sys.argv) > 2 else 100)
    else:
        main()
