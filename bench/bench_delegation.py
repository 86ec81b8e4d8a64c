"""Benchmark delegation-chain verification by depth, and receiving a sealed message.

Run: .venv/bin/python bench/bench_delegation.py
Prints a table and writes bench/results/delegation.json.

For each depth d (0 = the orchestrator's own warrant, d = handed on d times,
each hop a Biscuit third-party block signed by the delegating agent's key):
- `verify chain`: what the pipeline does on first sight of the token — verify
  every block's signature and layer (`verify_warrant`, with the block-parse and
  verified-token caches cleared each call: nothing about the token is known)
  plus each hop's signature against the delegator's registered key in the real
  SQLite store (`ChainVerifier`);
- `first sight after receive`: the same, for a token this process has already
  verified (as `receive` does before the recipient's first call): the token's
  signatures and blocks are remembered, each hop's signer is read again;
- `per call`: what every later call of the same token pays (the verified
  warrant is cached; each hop's signer is looked up again so a key rotation or
  retirement takes effect at once);
- `receive`: a whole message — credential, seal, replay check (SQLite),
  sender's warrant chain, the handed-over warrant, and the audit record.
Baseline: depth 0 in the same run (and a bare `verify_warrant` of a one-block
token), so the cost of each hop shows as a ratio.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, write_results

from warrant.enforce import Guard, GuardSession, TrustDomain
from warrant.enforce._delegation import ChainVerifier
from warrant.warrants import ToolGrant, attenuate_warrant, parse_tool_spec, verify_warrant
from warrant.warrants._datalog import clear_parse_cache

DEPTHS = (0, 1, 2, 3, 4)
N, WARMUP = 2_000, 200


def build(domain: TrustDomain) -> tuple[list[str], list[str]]:
    """A chain of agents a0 → a1 → … and the warrant as held at each depth."""
    names = [f"a{i}" for i in range(max(DEPTHS) + 1)]
    for name in names:
        domain.register_agent(name, owner="bench", purpose="delegation bench")
    tools = [parse_tool_spec("search"), parse_tool_spec("read_file:path^=reports/")]
    _, token = domain.mint(agent="a0", task="bench", tools=tools, max_depth=max(DEPTHS),
                           on_behalf_of="user:alice")
    held = [token]
    now = dt.datetime.now(dt.UTC)
    for i in range(1, max(DEPTHS) + 1):
        token = attenuate_warrant(token, domain.public_key, domain=domain.domain, now=now,
                                  tools=[ToolGrant("search")], holder=domain.agent(
                                      names[i]).agent_id, signer=domain.agent_key(names[i - 1]))
        held.append(token)
    return names, held


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        domain = TrustDomain.init(Path(tmp) / "home", "acme.example")
        names, held = build(domain)
        chain = ChainVerifier(domain.store)
        guard = Guard(domain)
        public = domain.public_key  # the pipeline holds the key object; so does the bench
        rows: dict[str, dict[str, float]] = {}

        def verify(token: str) -> None:
            clear_parse_cache()
            warrant = verify_warrant(token, public, domain=domain.domain,
                                     now=dt.datetime.now(dt.UTC))
            chain.check(warrant)

        for depth in DEPTHS:
            token = held[depth]
            rows[f"verify chain, depth {depth}"] = measure(lambda t=token: verify(t), N, WARMUP)
        for depth in DEPTHS:
            token = held[depth]
            clear_parse_cache()
            verify_warrant(token, public, domain=domain.domain, now=dt.datetime.now(dt.UTC))
            rows[f"first sight after receive, depth {depth}"] = measure(
                lambda t=token: chain.check(verify_warrant(
                    t, public, domain=domain.domain, now=dt.datetime.now(dt.UTC))), N, WARMUP)
        for depth in DEPTHS:
            # Every later call of the same token: the pipeline's cache holds the verified
            # warrant, and only the hop signatures' owners are looked up again.
            warrant = verify_warrant(held[depth], public, domain=domain.domain,
                                     now=dt.datetime.now(dt.UTC))
            rows[f"per call (cached token), depth {depth}"] = measure(
                lambda w=warrant: chain.check(w), N, WARMUP)

        for depth in DEPTHS[:-1]:
            # The holder at `depth` hands a narrowed warrant to the next agent.
            sender, recipient = names[depth], names[depth + 1]
            cred = domain.issue_credential(sender).token
            session = GuardSession(guard, credential=cred, warrant=held[depth],
                                   agent_key=domain.agent_key(sender))
            envelopes = [session.seal(recipient, {"ask": "x"}, delegate=[ToolGrant("search")])
                         for _ in range(N + WARMUP)]
            queue = iter(envelopes)
            rows[f"receive, handing over at depth {depth + 1}"] = measure(
                lambda r=recipient, q=queue: guard.receive(next(q), {"ask": "x"}, recipient=r),
                N, WARMUP)
        domain.close()

    base = rows["verify chain, depth 0"]["p50_us"]
    width = max(len(k) for k in rows)
    print(f"{'case':<{width}}  {'p50 µs':>9}  {'p99 µs':>9}  {'x depth 0':>9}")
    for name, row in rows.items():
        print(f"{name:<{width}}  {row['p50_us']:>9.1f}  {row['p99_us']:>9.1f}  "
              f"{row['p50_us'] / base:>9.2f}")
    target = rows["verify chain, depth 3"]["p50_us"]
    print(f"\ntarget: chain verification at depth 3 p50 <= 1000 µs: "
          f"{'met' if target <= 1000 else 'MISSED'} ({target:.0f} µs)")
    write_results("delegation", {"rows": rows, "baseline": "verify chain, depth 0"})


if __name__ == "__main__":
    main()
