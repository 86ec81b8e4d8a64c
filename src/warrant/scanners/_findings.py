"""What a scanner reports: findings with a stable code, a severity and evidence."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(str, enum.Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a scanner found. `code` is stable (`poisoning.hidden-instruction`)."""

    code: str
    severity: Severity
    message: str
    #: Where it was found (`description`, `inputSchema.properties.path.description`).
    location: str = ""
    #: A short, already-safe excerpt of what matched (never more than ~120 chars).
    evidence: str = ""

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity.value, "message": self.message,
                "location": self.location, "evidence": self.evidence}
