"""MCP tools/call latency: direct to `mcp-server-time` vs. through the Warrant gateway (stdio).

Run: .venv/bin/python bench/bench_gateway.py [N]

Same server (`python -m mcp_server_time`), same call (`get_current_time`,
timezone Europe/Paris), same client (the SDK's `ClientSession` over stdio), one
run. The gateway path adds: one extra stdio hop each way, authentication
(session), warrant scope check, revocation, catalogue, Cedar policy, budget,
pin status, the decision audit record before forwarding and the outcome audit
record after. Both audit durabilities are measured ("full" fsyncs each record
group; "normal" commits to SQLite without fsync). Calls are sequential (one
client, one in flight), so calls/s is 1 / mean latency.

Then streamable HTTP in front of the same stdio server, same client (the SDK's
streamable HTTP client), same calls: the published proxy `mcp-proxy` (PyPI,
0.13.0, `--stateless`, in a venv of its own: see `mcp_proxy_command`) and the
gateway (`--listen`, audit "normal", a proof of possession signed per call);
their ratio is reported. Writes bench/results/gateway.json.

Then a paired comparison over stdio: `_passthrough.py` (the SDK's own floor: the
same SDK server and client, forwarding calls and enforcing nothing) and the
gateway are open at once and the calls alternate between them in rounds, so
both see the same load; each also reports its process's CPU time and context
switches per call (all its threads, from /proc; Linux only). The difference is
what Warrant itself adds; the pass-through's own "added" is what any proxy on
the SDK pays. `BENCH_GATEWAY_BASELINE=/other/checkout/src` adds a gateway from
that tree to the same rounds.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import table, write_results

from warrant import warrants
from warrant.enforce import TrustDomain
from warrant.gateway import WarrantHttpAuth

ROOT = Path(__file__).resolve().parent.parent
TIME_SERVER = [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]
ARGS = {"timezone": "Europe/Paris"}
GATEWAY_CMD = os.environ.get("BENCH_GATEWAY_CMD", "-m warrant").split()
#: Another tree's `src` to compare with call by call (see the module docstring).
BASELINE = os.environ.get("BENCH_GATEWAY_BASELINE")
#: Rounds of the paired comparison (the order of the two flips every round).
PAIRED_ROUNDS = 20


async def timed_calls(params: StdioServerParameters, tool: str, n: int,
                      warmup: int) -> dict[str, float]:
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        return await _timed_session(session, tool, n, warmup)


async def timed_http_calls(url: str, tool: str, n: int, warmup: int,
                           auth: httpx2.Auth | None = None) -> dict[str, float]:
    """The same calls with the SDK's streamable HTTP client (one connection pool)."""
    async with httpx2.AsyncClient(auth=auth, timeout=30) as http, \
            streamable_http_client(url, http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        return await _timed_session(session, tool, n, warmup)


async def _timed_session(session: ClientSession, tool: str, n: int,
                         warmup: int) -> dict[str, float]:
    await session.initialize()
    await session.list_tools()
    for _ in range(warmup):
        result = await session.call_tool(tool, ARGS)
    assert isinstance(result, types.CallToolResult), result
    assert not result.is_error, result
    samples: list[int] = []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await session.call_tool(tool, ARGS)
        samples.append(time.perf_counter_ns() - t0)
    elapsed = time.perf_counter() - started
    samples.sort()
    return {"p50_us": samples[n // 2] / 1000, "p99_us": samples[int(n * 0.99)] / 1000,
            "mean_us": statistics.fmean(samples) / 1000, "calls_per_s": n / elapsed, "n": n}


async def paired_calls(targets: dict[str, tuple[StdioServerParameters, str]], n: int,
                       warmup: int) -> dict[str, dict[str, float]]:
    """Proxies (label: how to launch it, the tool's name there), open at once; calls
    alternate between them in rounds, so all see the same load."""
    per_round = max(1, n // PAIRED_ROUNDS)
    samples: dict[str, list[int]] = {label: [] for label in targets}
    usage = {label: [0.0, 0, 0] for label in targets}
    async with AsyncExitStack() as stack:
        sessions: dict[str, ClientSession] = {}
        pids: dict[str, int] = {}
        for label, (params, tool) in targets.items():
            known = _children()
            read, write = await stack.enter_async_context(stdio_client(params))
            (pids[label],) = _children() - known
            session = await stack.enter_async_context(ClientSession(read, write))
            await _timed_session(session, tool, 1, warmup)
            sessions[label] = session
        for turn in range(PAIRED_ROUNDS):
            for label in list(targets)[::1 if turn % 2 == 0 else -1]:
                tool = targets[label][1]
                before = _process_usage(pids[label])
                for _ in range(per_round):
                    t0 = time.perf_counter_ns()
                    await sessions[label].call_tool(tool, ARGS)
                    samples[label].append(time.perf_counter_ns() - t0)
                after = _process_usage(pids[label])
                for i in range(3):
                    usage[label][i] += after[i] - before[i]
    rows: dict[str, dict[str, float]] = {}
    for label, xs in samples.items():
        xs.sort()
        m = len(xs)
        rows[label] = {"p50_us": xs[m // 2] / 1000, "p99_us": xs[int(m * 0.99)] / 1000,
                       "mean_us": statistics.fmean(xs) / 1000, "n": m,
                       "calls_per_s": 1e9 / statistics.fmean(xs),
                       "proxy_cpu_us_per_call": usage[label][0] / m * 1e6,
                       "voluntary_switches_per_call": usage[label][1] / m,
                       "involuntary_switches_per_call": usage[label][2] / m}
    return rows


def _children() -> set[int]:
    return {int(pid) for task in os.listdir("/proc/self/task")
            for pid in Path(f"/proc/self/task/{task}/children").read_text().split()}


def _process_usage(pid: int) -> tuple[float, int, int]:
    """CPU seconds (user + system) and voluntary / involuntary switches of all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    voluntary = involuntary = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                voluntary += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                involuntary += int(line.split()[1])
    return cpu, voluntary, involuntary


@dataclass
class BenchDomain:
    """A trust domain with one agent whose warrant grants the time tool."""

    home: Path
    config: Path
    credential: Path
    warrant: Path
    key: Path

    def env(self, *, with_tokens: bool = True) -> dict[str, str]:
        env = {"WARRANT_HOME": str(self.home), "PYTHONPATH": str(ROOT / "src")}
        if with_tokens:  # stdio: one session for the process; HTTP: tokens per request
            env |= {"WARRANT_CREDENTIAL_FILE": str(self.credential),
                    "WARRANT_WARRANT_FILE": str(self.warrant),
                    "WARRANT_AGENT_KEY_FILE": str(self.key)}
        return env


def bench_domain(tmp: Path, durability: str) -> BenchDomain:
    home = tmp / durability
    TrustDomain.init(home, "bench.example", settings={"audit_durability": durability}).close()
    with TrustDomain.open(home) as domain:
        _, key = domain.register_agent("bench", owner="bench", purpose="benchmark")
        issued = domain.issue_credential("bench", ttl_seconds=3600)
        _, token = domain.mint(agent="bench", task="bench",
                               tools=[warrants.parse_tool_spec("time/get_current_time")],
                               ttl_seconds=3600)
    assert key is not None
    (tmp / f"{durability}.cred").write_text(issued.token)
    (tmp / f"{durability}.warrant").write_text(token)
    gw_config = tmp / "gateway.json"
    gw_config.write_text(json.dumps({"servers": {"time": {"command": TIME_SERVER}}}))
    return BenchDomain(home=home, config=gw_config, credential=tmp / f"{durability}.cred",
                       warrant=tmp / f"{durability}.warrant", key=key)


def gateway_params(domain: BenchDomain, src: str | None = None) -> StdioServerParameters:
    """The gateway over stdio; `src`: run the code of another tree's `src` instead."""
    params = StdioServerParameters(command=sys.executable,
                                   args=[*GATEWAY_CMD, "gateway", "--config", str(domain.config)],
                                   env=domain.env(), cwd=str(ROOT))
    if src is not None:
        params.env = (params.env or {}) | {"PYTHONPATH": src}
        params.cwd = str(Path(src).parent)  # `-m` looks in the working directory first
    return params


def passthrough_params() -> StdioServerParameters:
    """The SDK-only proxy (`_passthrough.py`) in front of the same server."""
    return StdioServerParameters(
        command=sys.executable, cwd=str(ROOT),
        args=[str(ROOT / "bench" / "_passthrough.py"), "--", *TIME_SERVER])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def listening(argv: list[str], port: int, **popen: Any) -> Iterator[None]:
    """Run `argv` until the block ends; enter once it accepts connections on `port`."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, **popen)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"`{' '.join(argv[:3])} ...` exited with {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing listens on {port} after 60 s") from None
                time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def mcp_proxy_command() -> list[str] | None:
    """The published proxy `mcp-proxy` (PyPI), installed in a venv of its own.

    It pins `mcp` 1.x while Warrant pins 2.x, so it cannot share .venv:
        python3 -m venv /tmp/mcpproxy-venv
        /tmp/mcpproxy-venv/bin/pip install mcp-proxy==0.13.0
    `BENCH_MCP_PROXY` names its executable (default: that venv, then PATH).
    """
    named = os.environ.get("BENCH_MCP_PROXY")
    for candidate in (named, "/tmp/mcpproxy-venv/bin/mcp-proxy", shutil.which("mcp-proxy")):
        if candidate and Path(candidate).is_file():
            return [candidate]
    return None


async def main(n: int) -> dict[str, Any]:
    warmup = max(50, n // 10)
    rows: dict[str, dict[str, float]] = {}
    direct = StdioServerParameters(command=TIME_SERVER[0], args=TIME_SERVER[1:])
    rows["direct"] = await timed_calls(direct, "get_current_time", n, warmup)
    with tempfile.TemporaryDirectory() as tmp:
        domains = {d: bench_domain(Path(tmp), d) for d in ("normal", "full")}
        for durability, domain in domains.items():
            rows[f"gateway (audit {durability})"] = await timed_calls(
                gateway_params(domain), "time__get_current_time", n, warmup)
        # Streamable HTTP in front of the same stdio server: the published proxy and the
        # gateway, same client, same calls. The gateway's row includes the client
        # signing a proof of possession for each call (Ed25519), which a Warrant
        # client must do; mcp-proxy authenticates nothing.
        proxy = mcp_proxy_command()
        if proxy is None:
            print("mcp-proxy not found: skipping the published-proxy rows "
                  f"(see {mcp_proxy_command.__name__}'s docstring)", file=sys.stderr)
        else:
            port = free_port()
            with listening([*proxy, "--port", str(port), "--stateless", "--transport",
                            "streamablehttp", "--", *TIME_SERVER], port):
                rows["mcp-proxy 0.13.0 (HTTP)"] = await timed_http_calls(
                    f"http://127.0.0.1:{port}/mcp", "get_current_time", n, warmup)
        domain = domains["normal"]
        # Paired: the SDK-only proxy (no enforcement: the SDK's own floor) and the
        # gateway, plus another tree's gateway if asked, calls alternating.
        targets = {"direct": (direct, "get_current_time"),
                   "SDK pass-through proxy": (passthrough_params(), "get_current_time"),
                   "gateway": (gateway_params(domain), "time__get_current_time")}
        if BASELINE:
            targets["gateway, baseline tree"] = (gateway_params(domain, BASELINE),
                                                 "time__get_current_time")
        paired = await paired_calls(targets, n, warmup)
        rows |= {f"paired: {label}": row for label, row in paired.items()}
        port = free_port()
        with listening([sys.executable, *GATEWAY_CMD, "gateway", "--config",
                        str(domain.config), "--listen", f"127.0.0.1:{port}"], port,
                       env=domain.env(with_tokens=False), cwd=str(ROOT)):
            rows["gateway HTTP (audit normal)"] = await timed_http_calls(
                f"http://127.0.0.1:{port}/mcp", "time__get_current_time", n, warmup,
                auth=WarrantHttpAuth.from_files(domain.credential, domain.warrant, domain.key))
    base = rows["direct"]
    added = {name: {"p50_us": r["p50_us"] - base["p50_us"], "p99_us": r["p99_us"] - base["p99_us"]}
             for name, r in rows.items() if name != "direct"}
    data: dict[str, Any] = {"rows": rows, "added": added}
    if "mcp-proxy 0.13.0 (HTTP)" in rows:
        ours, theirs = rows["gateway HTTP (audit normal)"], rows["mcp-proxy 0.13.0 (HTTP)"]
        data["gateway_vs_mcp_proxy"] = {
            "p50_ratio": ours["p50_us"] / theirs["p50_us"],
            "p99_ratio": ours["p99_us"] / theirs["p99_us"],
            "throughput_ratio": ours["calls_per_s"] / theirs["calls_per_s"]}
    return data


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    data = anyio.run(main, count)
    print(table(list(data["rows"].items())))
    for name, r in data["rows"].items():
        print(f"{name:<28} {r['calls_per_s']:>8.0f} calls/s" + (
            f", proxy CPU {r['proxy_cpu_us_per_call']:.0f} µs/call, context switches "
            f"{r['voluntary_switches_per_call']:.1f} voluntary + "
            f"{r['involuntary_switches_per_call']:.1f} involuntary per call"
            if "proxy_cpu_us_per_call" in r else ""))
    print("added latency vs direct:")
    print(table([(f"+ {k}", v) for k, v in data["added"].items()]))
    if "gateway_vs_mcp_proxy" in data:
        ratio = data["gateway_vs_mcp_proxy"]
        print(f"gateway HTTP / mcp-proxy HTTP: p50 x{ratio['p50_ratio']:.2f}, "
              f"p99 x{ratio['p99_ratio']:.2f}, throughput x{ratio['throughput_ratio']:.2f}")
    floor, ours = data["rows"]["paired: SDK pass-through proxy"], data["rows"]["paired: gateway"]
    alone = data["rows"]["paired: direct"]
    print("paired, added over direct: SDK pass-through p50 "
          f"+{floor['p50_us'] - alone['p50_us']:.0f} µs, "
          f"gateway p50 +{ours['p50_us'] - alone['p50_us']:.0f} µs")
    print(f"gateway over the SDK's own floor (paired): p50 +{ours['p50_us'] - floor['p50_us']:.0f} "
          f"µs, proxy CPU +{ours['proxy_cpu_us_per_call'] - floor['proxy_cpu_us_per_call']:.0f} "
          "µs/call")
    print(f"load: {os.getloadavg()}")
    print(f"written to {write_results('gateway', data)}")
