"""Loading the tool-definition corpora in `vectors/`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).parent / "vectors"


def load(name: str) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = json.loads((VECTORS / name).read_text(encoding="utf-8"))["tools"]
    return tools


BENIGN = load("benign_tools.json")
MALICIOUS = load("malicious_tools.json")
