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
Writes bench/results/gateway.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import table, write_results

from warrant import warrants
from warrant.enforce import TrustDomain

ROOT = Path(__file__).resolve().parent.parent
TIME_SERVER = [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]
ARGS = {"timezone": "Europe/Paris"}


async def timed_calls(params: StdioServerParameters, tool: str, n: int,
                      warmup: int) -> dict[str, float]:
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
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


def gateway_params(tmp: Path, durability: str) -> StdioServerParameters:
    home = tmp / durability
    TrustDomain.init(home, "bench.example", settings={"audit_durability": durability}).close()
    with TrustDomain.open(home) as domain:
        _, key = domain.register_agent("bench", owner="bench", purpose="benchmark")
        issued = domain.issue_credential("bench", ttl_seconds=3600)
        _, token = domain.mint(agent="bench", task="bench",
                               tools=[warrants.parse_tool_spec("time/get_current_time")],
                               ttl_seconds=3600)
    (tmp / f"{durability}.cred").write_text(issued.token)
    (tmp / f"{durability}.warrant").write_text(token)
    gw_config = tmp / "gateway.json"
    gw_config.write_text(json.dumps({"servers": {"time": {"command": TIME_SERVER}}}))
    env = {"WARRANT_HOME": str(home), "PYTHONPATH": str(ROOT / "src"),
           "WARRANT_CREDENTIAL_FILE": str(tmp / f"{durability}.cred"),
           "WARRANT_WARRANT_FILE": str(tmp / f"{durability}.warrant"),
           "WARRANT_AGENT_KEY_FILE": str(key)}
    registered = os.environ.get("BENCH_GATEWAY_CMD", "-m warrant").split()
    return StdioServerParameters(command=sys.executable,
                                 args=[*registered, "gateway", "--config", str(gw_config)],
                                 env=env, cwd=str(ROOT))


async def main(n: int) -> dict[str, Any]:
    warmup = max(50, n // 10)
    rows: dict[str, dict[str, float]] = {}
    direct = StdioServerParameters(command=TIME_SERVER[0], args=TIME_SERVER[1:])
    rows["direct"] = await timed_calls(direct, "get_current_time", n, warmup)
    with tempfile.TemporaryDirectory() as tmp:
        for durability in ("normal", "full"):
            params = gateway_params(Path(tmp), durability)
            rows[f"gateway (audit {durability})"] = await timed_calls(
                params, "time__get_current_time", n, warmup)
    base = rows["direct"]
    added = {name: {"p50_us": r["p50_us"] - base["p50_us"], "p99_us": r["p99_us"] - base["p99_us"]}
             for name, r in rows.items() if name != "direct"}
    return {"rows": rows, "added": added}


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    data = anyio.run(main, count)
    print(table(list(data["rows"].items())))
    for name, r in data["rows"].items():
        print(f"{name:<24} {r['calls_per_s']:>8.0f} calls/s")
    print("added latency vs direct:")
    print(table([(f"+ {k}", v) for k, v in data["added"].items()]))
    print(f"written to {write_results('gateway', data)}")
