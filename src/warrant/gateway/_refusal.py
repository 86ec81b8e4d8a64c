"""What an MCP client is told when the pipeline did not allow its request.

One wording for every kind of request (`tools/call` answers it as an `isError`
result, `resources/read` and `prompts/get` as a JSON-RPC error), so a client,
or a person reading its log, sees the same reasons and decision id everywhere.
"""

from __future__ import annotations

from warrant.types import Decision, Effect


def refusal(decision: Decision) -> str:
    """`denied: …` or `held for human approval, not run: …`, with reasons and decision id."""
    text = "; ".join(r.message for r in decision.reasons) or "no reason given"
    reasons = f"{text} (decision {decision.decision_id})"
    if decision.effect is Effect.NEEDS_APPROVAL:
        return "held for human approval, not run: " + reasons
    return "denied: " + reasons
