"""Memory guard: verified read and signed write vs. the unguarded SQLite store, in one run.

Run: .venv/bin/python bench/bench_memory.py

Cases, same machine, same process, same SQLite schema and settings (WAL,
synchronous=NORMAL; the audit log unsynced, as in bench_decision's session case):
- `unguarded write` / `unguarded read`: `SqliteMemoryStore` alone — insert a row /
  load the newest row and parse its JSON; no policy, signing, log or verification.
- `signed write (guard)`: `GuardedMemory.put` — agent status, policy (memoised per
  hour), secret check, canonical payload, Ed25519 signature with the AGENT's own
  key (checked against its registered key), digest + signer + public key appended
  to the audit log, row inserted.
- `verified read (guard)`: `GuardedMemory.get` — agent status (record re-read when
  state.db changed), policy (memoised per hour), row load, log entry found (memoised
  per seq: log records are immutable), signer and key checked against the log,
  payload digest recomputed from the row (content hashed as stored), signature
  checked (Ed25519, memoised per (key, signature, digest)), digest compared with
  the log's.
- `verified read, cold (no memo)`: the same with every memo cleared before each
  call: a Cedar evaluation, an agent lookup, an Ed25519 verify and an audit-record
  parse per read.
Writes bench/results/memory.json.

`--gateway NODE_ENTRY` (the `dist/index.js` of `@modelcontextprotocol/server-memory`,
e.g. from the test cache) instead times `read_graph` of a 10-entity, 30-observation
graph over MCP stdio, one client call at a time: straight to the npm server, through
the gateway without the memory guard, and through the gateway with `memory_guard`
(every entity and observation verified). No target; writes memory_gateway.json.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, table, write_results

from warrant import warrants
from warrant.enforce import TrustDomain
from warrant.enforce._memory import GuardedMemory
from warrant.memory import SqliteMemoryStore
from warrant.memory._guard import _provenance
from warrant.memory._store import StoredRow
from warrant.types import JsonValue

CONTENT: JsonValue = {"customer": "ACME GmbH", "preference": "email on Tuesdays",
                      "open_invoices": [42, 43]}


def open_domain(home: Path) -> TrustDomain:
    domain = TrustDomain.init(home, "bench.example", settings={"audit_durability": "normal"})
    domain.register_agent("helper", owner="ops", purpose="remembers things")
    return domain


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        domain = open_domain(Path(tmp) / "home")
        guarded = GuardedMemory(domain)
        plain = SqliteMemoryStore(Path(tmp) / "plain.db")
        text = json.dumps(CONTENT)
        counter = itertools.count()

        def plain_write() -> object:
            key = f"k{next(counter) % 500}"
            return plain.insert_next("agent:helper", key, lambda v: StoredRow(
                "agent:helper", key, v, text, "{}", 0.0, False, None, "", b"", "", 0, "ok", 0.0))

        def plain_read() -> object:
            row = plain.latest("agent:helper", "k7")
            assert row is not None
            assert row.content is not None
            return json.loads(row.content)

        def signed_write() -> object:
            return guarded.put("helper", "agent:helper", f"k{next(counter) % 500}", CONTENT)

        def verified_read() -> object:
            return guarded.get("helper", "agent:helper", "k7")

        # Bench-only peeks at the memos, to time a cold read (first sight of a version).
        memos = (guarded._authz._memo, guarded._log._memo,  # type: ignore[attr-defined]
                 guarded._verified, guarded._agents._records)

        def verified_read_cold() -> object:
            for memo in memos:
                memo.clear()
            _provenance.cache_clear()
            return guarded.get("helper", "agent:helper", "k7")

        rows = [
            ("unguarded write", measure(plain_write, n=5_000, warmup=500)),
            ("signed write (guard)", measure(signed_write, n=5_000, warmup=500)),
            ("unguarded read", measure(plain_read, n=20_000)),
            ("verified read (guard)", measure(verified_read, n=20_000)),
            ("verified read, cold (no memo)", measure(verified_read_cold, n=5_000)),
        ]
        guarded.close()
        plain.close()
        domain.close()
    print(table(rows))
    path = write_results("memory", dict(rows))
    print(f"wrote {path}")


GRAPH = [{"name": f"customer-{i}", "entityType": "customer",
          "observations": [f"note {j} about customer {i}" for j in range(3)]} for i in range(10)]


async def _read_times(params: StdioServerParameters, n: int) -> dict[str, float]:
    """Fill the graph through `params`, then time `read_graph` calls one at a time."""
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name for t in (await session.list_tools()).tools}
        prefix = "memory__" if "memory__read_graph" in tools else ""
        created = await session.call_tool(prefix + "create_entities", {"entities": GRAPH})
        assert not created.is_error, created
        for _ in range(20):
            await session.call_tool(prefix + "read_graph", {})
        samples = []
        for _ in range(n):
            start = time.perf_counter_ns()
            result = await session.call_tool(prefix + "read_graph", {})
            samples.append(time.perf_counter_ns() - start)
            assert not result.is_error, result
            assert "withheld" not in str(result.content), result
    samples.sort()
    return {"p50_us": samples[n // 2] / 1000, "p99_us": samples[int(n * 0.99)] / 1000,
            "mean_us": statistics.fmean(samples) / 1000, "n": n}


def gateway_main(entry: Path, n: int = 300) -> None:
    node = shutil.which("node") or "node"
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        grants = [warrants.parse_tool_spec(f"memory/{t}") for t in ("create_entities",
                                                                   "read_graph")]
        with TrustDomain.init(home, "bench.example", settings={
                "strict": False, "audit_durability": "normal"}) as domain:
            _, key = domain.register_agent("bot", owner="ops", purpose="remembers customers")
            issued = domain.issue_credential("bot", ttl_seconds=3600)
            # One task per gateway (a new gateway cannot vouch for a task's earlier calls);
            # the user's own words, so what the bench writes is not a tool result's.
            tokens = [domain.mint(agent="bot", task="bench", tools=grants, ttl_seconds=3600,
                                  instruction="Remember: " + json.dumps(GRAPH))[1]
                      for _ in range(2)]
        assert key is not None
        (root / "credential").write_text(issued.token, encoding="utf-8")
        for i, token in enumerate(tokens):
            (root / f"warrant-{i}").write_text(token, encoding="utf-8")
        env = {**os.environ, "WARRANT_HOME": str(home),
               "WARRANT_CREDENTIAL_FILE": str(root / "credential"),
               "WARRANT_AGENT_KEY_FILE": str(key)}
        direct = StdioServerParameters(command=node, args=[str(entry)], env={
            **os.environ, "MEMORY_FILE_PATH": str(root / "direct.jsonl")})
        rows.append(("read_graph, npm server direct", anyio.run(_read_times, direct, n)))
        for guarded in (False, True):
            config = root / f"gateway-{guarded}.json"
            config.write_text(json.dumps({"servers": {"memory": {
                "command": [node, str(entry)], "unsafe_no_sandbox": True,
                "memory_guard": guarded,
                "env": {"MEMORY_FILE_PATH": str(root / f"via-{guarded}.jsonl")}}}}))
            params = StdioServerParameters(command=sys.executable, args=[
                "-m", "warrant", "gateway", "--config", str(config)],
                env={**env, "WARRANT_WARRANT_FILE": str(root / f"warrant-{int(guarded)}")})
            name = ("read_graph, gateway + memory guard (40 facts verified)" if guarded
                    else "read_graph, gateway, no memory guard")
            rows.append((name, anyio.run(_read_times, params, n)))
    print(table(rows))
    path = write_results("memory_gateway", dict(rows))
    print(f"wrote {path}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--gateway":
        gateway_main(Path(sys.argv[2]))
    else:
        main()
