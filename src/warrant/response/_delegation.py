"""Detections over messages between agents (`delegation.*` admin records).

- `response.delegation-attack` (high): a message was refused for a reason only
  an attacker produces — a replayed envelope, a widened or stolen warrant, a
  body or warrant that does not match its seal. When the seal verified, the
  sender is named (and contained by the high playbook); a replay or forgery
  names nobody, since whoever sent it is not proven.
- `response.delegation-unusual` (medium): a delegation deeper than the domain
  expects, or one agent fanning out to many recipients in a short window.
- `response.delegation-new-pair` (low): after a warm-up, a sender → recipient
  pair never seen before by this engine.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._model import Alert, Detection, Event, Severity

#: Refusal reasons that only an attack (or a badly broken client) produces.
ATTACK_REASONS = frozenset({
    "delegation.replay", "delegation.widening", "delegation.stolen-warrant",
    "delegation.tampered", "delegation.bad-seal", "delegation.bad-warrant",
})


#: The admin action the unusual-delegation and new-pair detections read.
RECEIVED = frozenset({"delegation.received"})


@dataclass(frozen=True, slots=True)
class DelegationConfig:
    """Tunables of the delegation detections."""

    #: Chains deeper than this (user → orchestrator → … hops) are unusual.
    max_depth: int = 2
    #: One sender to at least `fan_out` distinct recipients within `fan_out_window` s.
    fan_out: int = 5
    fan_out_window: float = 60.0
    #: New pairs are reported only after this many messages taught the engine the usual ones.
    pairs_warmup: int = 20


def _detail(event: Event, action: str) -> Mapping[str, Any] | None:
    record = event.record
    if record.kind != "admin" or record.tool != action:
        return None
    return dict(record.detail or {})


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def delegation_attack() -> Detection:
    """A message refused as replayed, widened, stolen or tampered."""

    def detect(event: Event, state: dict[str, Any]) -> Iterable[Alert]:
        detail = _detail(event, "delegation.rejected")
        if detail is None or detail.get("reason") not in ATTACK_REASONS:
            return ()
        sender = _text(detail.get("sender"))
        who = f"from {sender}" if sender else "from an unproven sender"
        return (detection.alert(
            event, f"message to {detail.get('recipient')} {who} refused: "
                   f"{detail.get('reason')} ({str(detail.get('message'))[:120]})",
            agent=sender, task_id=_text(detail.get("task_id")),
            reason=detail.get("reason")),)

    detection = Detection("response.delegation-attack", Severity.HIGH,
                          "a message between agents was replayed, forged, or carried a "
                          "widened or stolen warrant", detect, inline=True,
                          kinds=frozenset({"admin"}), actions=frozenset({"delegation.rejected"}))
    return detection


def delegation_unusual(config: DelegationConfig) -> Detection:
    """A deep delegation chain, or one agent fanning out to many recipients."""

    def detect(event: Event, state: dict[str, Any]) -> Iterable[Alert]:
        detail = _detail(event, "delegation.received")
        if detail is None:
            return ()
        sender, recipient = _text(detail.get("sender")), _text(detail.get("recipient"))
        depth = detail.get("depth")
        alerts: list[Alert] = []
        if isinstance(depth, int) and depth > config.max_depth:
            alerts.append(detection.alert(
                event, f"delegation depth {depth} (more than {config.max_depth}) "
                       f"from {sender} to {recipient}", agent=sender,
                task_id=_text(detail.get("task_id")), depth=depth))
        if sender and recipient:
            recent: deque[tuple[float, str]] = state.setdefault(sender, deque())
            recent.append((event.received_at, recipient))
            while recent and recent[0][0] < event.received_at - config.fan_out_window:
                recent.popleft()
            recipients = {r for _, r in recent}
            if len(recipients) >= config.fan_out:
                recent.clear()
                alerts.append(detection.alert(
                    event, f"{sender} messaged {len(recipients)} agents within "
                           f"{config.fan_out_window:g}s", agent=sender,
                    task_id=_text(detail.get("task_id")), recipients=sorted(recipients)))
        return alerts

    detection = Detection("response.delegation-unusual", Severity.MEDIUM,
                          f"delegation deeper than {config.max_depth} or fan-out to "
                          f"{config.fan_out}+ agents within {config.fan_out_window:g}s", detect,
                          kinds=frozenset({"admin"}), actions=RECEIVED)
    return detection


def delegation_new_pair(config: DelegationConfig) -> Detection:
    """A sender → recipient pair not seen before (after a warm-up of usual traffic)."""

    def detect(event: Event, state: dict[str, Any]) -> Iterable[Alert]:
        detail = _detail(event, "delegation.received")
        if detail is None:
            return ()
        pair = (_text(detail.get("sender")), _text(detail.get("recipient")))
        seen: set[tuple[str | None, str | None]] = state.setdefault("pairs", set())
        count = state["count"] = state.get("count", 0) + 1
        if pair in seen:
            return ()
        seen.add(pair)
        if count <= config.pairs_warmup:
            return ()
        return (detection.alert(event, f"first message from {pair[0]} to {pair[1]}",
                                agent=pair[0], task_id=_text(detail.get("task_id"))),)

    detection = Detection("response.delegation-new-pair", Severity.LOW,
                          "a sender → recipient pair not seen before", detect,
                          kinds=frozenset({"admin"}), actions=RECEIVED)
    return detection


def delegation_detections(config: DelegationConfig | None = None) -> list[Detection]:
    config = config or DelegationConfig()
    return [delegation_attack(), delegation_unusual(config), delegation_new_pair(config)]
