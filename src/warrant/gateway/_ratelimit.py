"""Bounded auditing of requests the HTTP edge refuses before the pipeline.

Every refused request is still refused; what is bounded is how many audit
records an unauthenticated client can make the gateway write. Without a bound,
a flood of malformed requests writes the audit log at the attacker's rate,
growing it without limit and slowing every honest caller's audited decisions.

Time is cut into fixed windows (`window_s`). In each window, each client
address gets its first `per_client` refusals recorded in full; the rest are
counted, and when the window closes one summary record per such client says
how many were left out and why (`gateway.http-rejected-summary`). Nothing is
silently lost: full records plus summary counts equal the refusals.

INVARIANT: memory and records per window are bounded whatever the traffic. At
most `max_clients` addresses are tracked per window (each with at most
`MAX_REASONS` reason counters); refusals from addresses beyond that are counted
together under `OTHER_CLIENTS`. So a window writes at most
`max_clients * (per_client + 1) + 1` records.

A window closes lazily (the next refusal after it ends), on `tick` (the server
calls it every window) and on `flush` (at shutdown), so the last summary is
written even when the flood stops.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Audit action of one refusal recorded in full.
REJECTED_ACTION = "gateway.http-rejected"
#: Audit action of a window's count of refusals not recorded in full.
SUMMARY_ACTION = "gateway.http-rejected-summary"
#: The summary key for refusals from addresses beyond `max_clients`.
OTHER_CLIENTS = "other"
#: Distinct reasons counted per client; further ones are counted under "other reasons".
MAX_REASONS = 8
_OTHER_REASON = "other reasons"
#: Defaults: ~13 records per second at most, with 128 addresses flooding at once.
PER_CLIENT, WINDOW_S, MAX_CLIENTS = 5, 60.0, 128

#: Writes one audit record: (action, detail), like `TrustDomain.record_admin`.
Record = Callable[[str, Mapping[str, Any]], object]


@dataclass(slots=True)
class _Tally:
    recorded: int = 0
    suppressed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def suppress(self, reason: str) -> None:
        self.suppressed += 1
        if reason not in self.reasons and len(self.reasons) >= MAX_REASONS:
            reason = _OTHER_REASON
        self.reasons[reason] += 1


class AuditThrottle:
    """Audits refusals per client address: the first few in full, then a count per window."""

    def __init__(self, record: Record, *, per_client: int = PER_CLIENT,
                 window_s: float = WINDOW_S, max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic):
        if per_client < 0 or window_s <= 0 or max_clients < 1:
            raise ValueError("per_client >= 0, window_s > 0 and max_clients >= 1 are required")
        self._record = record
        self._per_client, self._window_s, self._max_clients = per_client, window_s, max_clients
        self._clock = clock
        self._window_start = clock()
        self._tallies: dict[str, _Tally] = {}
        self._others = _Tally()

    @property
    def window_s(self) -> float:
        return self._window_s

    def rejected(self, host: str | None, detail: Mapping[str, Any]) -> None:
        """Audit one refused request from `host`: in full while its allowance lasts."""
        self.tick()
        key = host or "unknown"
        tally = self._tallies.get(key)
        if tally is None:
            if len(self._tallies) >= self._max_clients:
                self._others.suppress(_reason(detail))
                return
            tally = self._tallies[key] = _Tally()
        if tally.recorded < self._per_client:
            tally.recorded += 1
            self._record(REJECTED_ACTION, detail)
        else:
            tally.suppress(_reason(detail))

    def tick(self) -> None:
        """Close the window if it has ended (its summaries are written)."""
        if self._clock() - self._window_start >= self._window_s:
            self.flush()

    def flush(self) -> None:
        """Close the window now: one summary per client with refusals left out, then reset."""
        tallies, others = self._tallies, self._others
        self._tallies, self._others = {}, _Tally()
        self._window_start = self._clock()
        for client, tally in (*tallies.items(), (OTHER_CLIENTS, others)):
            if tally.suppressed:
                self._record(SUMMARY_ACTION, {
                    "client": client, "suppressed": tally.suppressed,
                    "recorded": tally.recorded, "reasons": dict(tally.reasons),
                    "window_s": self._window_s})


def _reason(detail: Mapping[str, Any]) -> str:
    return str(detail.get("reason", ""))[:200]
