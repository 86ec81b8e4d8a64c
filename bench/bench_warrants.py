"""Benchmark warrant verification and checking against raw Biscuit.

Run: .venv/bin/python bench/bench_warrants.py
Prints a table and writes bench/results/warrants.json.

- verify (cold): block-parse cache cleared before every call (first sight of a token)
- verify (warm): the same token again (blocks already parsed; signatures still checked)
- raw biscuit: `Biscuit.from_base64` + an authorizer running the same Datalog checks
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import biscuit_auth as ba
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, write_results

from warrant.types import ToolCall
from warrant.warrants import attenuate_warrant, mint_warrant, parse_tool_spec, verify_warrant
from warrant.warrants._datalog import clear_parse_cache

DOMAIN = "acme.example"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
WARMUP = 200  # warm-up calls before every case


def tokens() -> tuple[Ed25519PrivateKey, str, str]:
    key = Ed25519PrivateKey.generate()
    tools = [
        parse_tool_spec("transfer:amount=0..100,currency=EUR|USD@5"),
        parse_tool_spec("send_email:to^=ops@"),
        parse_tool_spec("read_file:path~reports/[a-z0-9_]+\\.csv"),
    ]
    root = mint_warrant(
        key,
        domain=DOMAIN,
        task_id="bench-1",
        agent="spiffe://acme.example/agent/a",
        tools=tools,
        on_behalf_of="user:alice",
        total_budget=20,
        expires_at=NOW + timedelta(hours=1),
        max_depth=3,
        now=NOW,
    )
    token, pub = root, key.public_key()
    for n, spec in enumerate(("transfer:amount=0..50@3", "transfer@2", "transfer:currency=EUR")):
        extra = [parse_tool_spec(spec), parse_tool_spec("read_file")] if n == 0 else None
        token = attenuate_warrant(
            token,
            pub,
            domain=DOMAIN,
            now=NOW,
            tools=extra or [parse_tool_spec(spec)],
            holder=f"spiffe://acme.example/agent/sub-{n}",
        )
    return key, root, token


def raw_biscuit(token: str, public: ba.PublicKey, call: ToolCall) -> None:
    builder = ba.AuthorizerBuilder()
    builder.add_fact(ba.Fact("tool({t})", {"t": call.tool}))
    builder.add_fact(ba.Fact("time({t})", {"t": NOW}))
    for name, value in call.arguments.items():
        builder.add_fact(ba.Fact("arg({k}, {v})", {"k": name, "v": value}))
    builder.add_policy(ba.Policy("allow if true"))
    builder.build(ba.Biscuit.from_base64(token, public)).authorize()


def main() -> None:
    key, root, attenuated = tokens()
    pub = key.public_key()
    bpub = ba.PublicKey.from_bytes(pub.public_bytes_raw(), ba.Algorithm.Ed25519)  # type: ignore[call-arg, attr-defined]  # stub predates 0.4.0
    call = ToolCall("transfer", {"amount": 20, "currency": "EUR"})
    warrant = verify_warrant(attenuated, pub, domain=DOMAIN, now=NOW)
    assert warrant.check(call, now=NOW) == ()

    def cold(token: str) -> Callable[[], object]:
        def run() -> object:
            clear_parse_cache()
            return verify_warrant(token, pub, domain=DOMAIN, now=NOW)

        return run

    rows = {
        "verify 0 attenuations (cold)": measure(cold(root), n=2000, warmup=WARMUP),
        "verify 0 attenuations (warm)": measure(
            lambda: verify_warrant(root, pub, domain=DOMAIN, now=NOW), n=2000, warmup=WARMUP
        ),
        "verify 3 attenuations (cold)": measure(cold(attenuated), n=2000, warmup=WARMUP),
        "verify 3 attenuations (warm)": measure(
            lambda: verify_warrant(attenuated, pub, domain=DOMAIN, now=NOW), n=2000, warmup=WARMUP
        ),
        "raw biscuit parse+authorize, 0 att.": measure(
            lambda: raw_biscuit(root, bpub, call), n=2000, warmup=WARMUP
        ),
        "raw biscuit parse+authorize, 3 att.": measure(
            lambda: raw_biscuit(attenuated, bpub, call), n=2000, warmup=WARMUP
        ),
        "raw biscuit parse only, 3 att.": measure(
            lambda: ba.Biscuit.from_base64(attenuated, bpub), n=2000, warmup=WARMUP
        ),
        "Warrant.check (allowed call)": measure(
            lambda: warrant.check(call, now=NOW), n=20_000, warmup=WARMUP
        ),
        "Warrant.check (no now: reads clock)": measure(
            lambda: warrant.check(call), n=20_000, warmup=WARMUP
        ),
    }
    print(f"{'operation':40} {'p50 µs':>9} {'p99 µs':>9}")
    for name, row in rows.items():
        print(f"{name:40} {row['p50_us']:>9.1f} {row['p99_us']:>9.1f}")
    report = {"token_chars": {"0": len(root), "3": len(attenuated)}, "results": rows}
    print(f"wrote {write_results('warrants', report)}")


if __name__ == "__main__":
    main()
