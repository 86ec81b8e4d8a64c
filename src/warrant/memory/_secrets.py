"""Secret detection on write: credentials and tokens never enter memory.

Deterministic patterns for the shapes that leak most: JWTs, PEM private keys,
cloud and SaaS API keys, and `password=...` style assignments. They run over
every string (and every object key) of the content, however deeply nested.
A hit names the kind and the JSON path, never the secret itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: (kind, pattern). Ordered most specific first; one hit per string is enough.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private-key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b")),
    ("aws-secret-access-key", re.compile(
        r"(?i)aws_?secret_?access_?key['\"]?\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("openai-style-key", re.compile(r"\bsk-(?:[a-z]+-)?[A-Za-z0-9_\-]{20,}")),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}")),
    ("password-assignment", re.compile(
        r"(?i)\b(?:password|passwd|pwd|api[_-]?key|secret[_-]?key|access[_-]?token|"
        r"client[_-]?secret)\b['\"]?\s*[:=]\s*['\"]?[^\s'\"]{8,}")),
)
#: Every pattern in one alternation: one search per string says whether any kind matches
#: (most strings hold none); only then is each pattern tried, to name the kind.
_ANY = re.compile("|".join(
    f"(?i:{p.pattern[4:]})" if p.pattern.startswith("(?i)") else f"(?:{p.pattern})"
    for _, p in _PATTERNS))
#: A string longer than this is checked in its first and last part only (bounded cost).
_MAX_CHARS = 200_000


@dataclass(frozen=True, slots=True)
class SecretHit:
    """A secret-shaped string: what kind, and where in the content (`$.notes[2]`)."""

    kind: str
    path: str


def find_secrets(content: Any) -> tuple[SecretHit, ...]:
    """Every string of `content` that looks like a credential, token or private key."""
    return tuple(_walk(content, "$", depth=0))


def _check(text: str, path: str) -> Iterator[SecretHit]:
    if len(text) > _MAX_CHARS:
        text = text[: _MAX_CHARS // 2] + "\n" + text[-_MAX_CHARS // 2:]
    if _ANY.search(text) is None:
        return
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            yield SecretHit(kind, path)
            return


def _walk(value: Any, path: str, *, depth: int) -> Iterator[SecretHit]:
    if depth > 64:
        # Deeper than any sane memory item; refuse rather than scan partially.
        yield SecretHit("too-deep-to-scan", path)
        return
    if isinstance(value, str):
        yield from _check(value, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _check(str(key), f"{path}.<key>")
            yield from _walk(item, f"{path}.{key}", depth=depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]", depth=depth + 1)
