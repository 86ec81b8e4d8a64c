"""What of a call's arguments the audit log keeps: digests always, values redacted.

The log keeps records forever, so it must not become the place secrets leak
to. Secrets DLP finds anywhere in the arguments are replaced first
(`_inspect.audit_arguments`); here values under secret-looking keys are
replaced and long strings cut.
"""

from __future__ import annotations

import math
import re
from typing import Any

_SECRET_KEY = re.compile(r"(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|"
                         r"authorization|cookie|session)", re.IGNORECASE)
MAX_STRING = 256
MAX_ITEMS = 64
REDACTED = "[redacted]"


def redact_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    result = _redact(arguments, depth=0)
    assert isinstance(result, dict)
    return result


def _redact(value: Any, depth: int) -> Any:
    if depth > 8:
        return "[nested too deep]"
    if isinstance(value, dict):
        items = list(value.items())[:MAX_ITEMS]
        return {str(k): REDACTED if _SECRET_KEY.search(str(k)) else _redact(v, depth + 1)
                for k, v in items}
    if isinstance(value, list):
        return [_redact(v, depth + 1) for v in value[:MAX_ITEMS]]
    if isinstance(value, str) and len(value) > MAX_STRING:
        return value[:MAX_STRING] + f"…[{len(value) - MAX_STRING} more chars]"
    if isinstance(value, float) and math.isnan(value):  # NaN is not JSON
        return "NaN"
    return value
