"""Each shipped detection on synthetic records, with an injected clock (no sleeps)."""

from __future__ import annotations

from typing import Any

from warrant.audit import AuditRecord, utc_now
from warrant.response import (
    Alert,
    Detection,
    DetectionConfig,
    Event,
    canary_token,
    outside_hours,
    rate_anomaly,
    repeated_denials,
)
from warrant.scanners import finding_fingerprint

AGENT = "spiffe://acme.example/agent/billing"


def decision(effect: str = "allow", code: str = "policy.permit", agent: str = AGENT,
             **arguments: Any) -> AuditRecord:
    return AuditRecord(kind="decision", time=utc_now(), effect=effect, agent=agent,
                       task_id="task-1", tool="send_email", arguments_redacted=arguments,
                       reasons=({"code": code, "message": "m", "source": "s"},))


class Feed:
    """Feeds records to one detection with its own state, at times the test chooses."""

    def __init__(self, detection: Detection):
        self.detection, self.state, self.seq = detection, {}, 0  # type: ignore[var-annotated]

    def __call__(self, record: AuditRecord, at: float) -> list[Alert]:
        self.seq += 1
        return list(self.detection.detect(Event(self.seq, record, at), self.state))


def test_repeated_denials_fire_once_per_burst_within_the_window() -> None:
    feed = Feed(repeated_denials(DetectionConfig(denials=3, denial_window=10)))
    deny = decision("deny", "warrant.tool-not-granted")
    assert feed(deny, 0) == [] and feed(deny, 1) == []
    assert feed(deny, 20) == []  # the first two fell out of the window
    assert feed(deny, 21) == []
    (alert,) = feed(deny, 22)
    assert alert.seqs == (3, 4, 5) and alert.severity.value == "high"
    assert feed(deny, 23) == []  # a new burst starts counting afresh


def test_denials_caused_by_revocation_are_not_counted() -> None:
    feed = Feed(repeated_denials(DetectionConfig(denials=2)))
    revoked = decision("deny", "revoked")
    assert feed(revoked, 0) == [] and feed(revoked, 1) == []


def test_a_canary_anywhere_in_the_arguments_is_critical() -> None:
    feed = Feed(canary_token(DetectionConfig(canaries=("HONEY-1",))))
    assert feed(decision(body="hello"), 0) == []
    (alert,) = feed(decision(body={"nested": ["x", "a HONEY-1 b"]}), 0)
    assert alert.severity.value == "critical"
    assert canary_token(DetectionConfig()).inline


def test_a_redacted_canary_is_known_by_its_fingerprint_and_other_secrets_are_not() -> None:
    canary, other = "AKIAZ7HONEYT0KEN2QX4", "AKIAIOSFODNN7EXAMPLQ"
    feed = Feed(canary_token(DetectionConfig(canaries=(canary,))))

    def redacted(value: str) -> AuditRecord:
        return AuditRecord(
            kind="decision", time=utc_now(), effect="allow", agent=AGENT, task_id="task-1",
            tool="send_email", arguments_redacted={"body": "[REDACTED:secret.aws-access-key]"},
            detail={"dlp": [{"kind": "secret.aws-access-key", "path": "$.body",
                             "fingerprint": finding_fingerprint(value)}]})

    assert feed(redacted(other), 0) == []
    (alert,) = feed(redacted(canary), 0)
    assert alert.severity.value == "critical"
    assert canary not in repr(alert)  # the alert names a prefix only


def test_rate_anomaly_learns_a_baseline_and_flags_a_spike() -> None:
    feed = Feed(rate_anomaly(DetectionConfig(rate_bucket=60, rate_z=4, rate_warmup_buckets=5,
                                             rate_min_calls=20)))
    call = decision()
    alerts: list[Alert] = []
    for minute in range(10):  # ten steady minutes, ten calls each
        for i in range(10):
            alerts += feed(call, minute * 60 + i)
    assert alerts == []
    for i in range(60):  # a spike: sixty calls in the eleventh minute
        alerts += feed(call, 600 + i)
    assert len(alerts) == 1  # once per bucket
    assert alerts[0].detail["baseline"] < 11


def test_rate_anomaly_is_quiet_during_warm_up_and_for_another_agent() -> None:
    feed = Feed(rate_anomaly(DetectionConfig(rate_warmup_buckets=5)))
    assert all(feed(decision(), i * 0.1) == [] for i in range(500))
    assert all(feed(decision(agent="spiffe://acme.example/agent/other"), 1.0) == []
               for _ in range(100))


def test_activity_outside_declared_hours_alerts_once_per_hour() -> None:
    feed = Feed(outside_hours(DetectionConfig(declared_hours={"*": (9, 17)})))
    day = 86400 * 19_000  # some midnight, UTC
    assert feed(decision(), day + 10 * 3600) == []
    assert len(feed(decision(), day + 3 * 3600)) == 1
    assert feed(decision(), day + 3 * 3600 + 60) == []
    assert len(feed(decision(), day + 4 * 3600)) == 1
