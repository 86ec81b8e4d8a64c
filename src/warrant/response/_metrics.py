"""The response metrics the framework asks for, computed from the incident tables.

- time to contain: offending record → first revocation recorded, per incident;
- dwell time: incident opened → a human acknowledged it;
- coverage: share of alerts that were triaged (evidence + disposition written);
- detection latency: offending record → alert raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from warrant.store import SqliteIncidents


def _summary(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 3)

    return {"count": len(ordered), "p50_ms": pick(0.5), "p99_ms": pick(0.99),
            "max_ms": round(ordered[-1] * 1000, 3)}


def response_metrics(incidents: SqliteIncidents, *, limit: int = 10_000) -> dict[str, Any]:
    """Time to contain, dwell time, coverage and detection latency as one JSON object."""
    rows = incidents.list(limit=limit)
    alerts = incidents.alerts()
    triaged = sum(1 for a in alerts if a["triaged_at"] is not None)
    return {
        "incidents": {"total": len(rows),
                      "by_status": {s: sum(1 for i in rows if i.status == s)
                                    for s in ("open", "acked", "contained", "closed")}},
        "time_to_contain": _summary([i.contained_at - i.first_event_at for i in rows
                                     if i.contained_at is not None]),
        "dwell_time": _summary([i.acked_at - i.opened_at for i in rows
                                if i.acked_at is not None]),
        "detection_latency": _summary([a["at"] - a["event_at"] for a in alerts
                                       if a["detection"] != "response.action"]),
        "coverage": {"alerts": len(alerts), "triaged": triaged,
                     "ratio": round(triaged / len(alerts), 4) if alerts else None},
    }
