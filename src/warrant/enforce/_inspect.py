"""Content inspection around a call: secrets and personal data going out, and coming back.

`InspectArguments` is a pipeline stage: DLP over the call's arguments adds the
labels `secret` (a key, token, password, private key) and `pii` (cards, IBANs,
national ids, emails, phones) for policy; the default pack forbids secrets
reaching external communication. A scan that hit its bounds counts as secret
(fail closed) and says so.

`Pipeline.inspect_output` redacts what a tool returned before the agent sees it
(secrets by default; personal data too when configured); `findings_json` is
what the outcome's audit record keeps of that: kind, path and fingerprint,
never the value.
"""

from __future__ import annotations

import json
from typing import Any

from warrant import flow, scanners
from warrant.types import Effect

from ._context import CallContext
from ._redact import redact_arguments

PII = "pii"
#: What the audit log and the approval queue never keep in clear: personal data stays,
#: as evidence of where data went (who was sent what), secrets never do.
SECRETS = frozenset({"secret"})
#: A secret (password, key, token) in the arguments that is not verbatim from the
#: user's instruction: setting or sending credentials the user never gave is how
#: an injection takes over an account.
SECRET_NOT_FROM_USER = "secret-not-from-user"  # noqa: S105 - a label, not a password


def audit_arguments(ctx: CallContext) -> dict[str, Any]:
    """The call's arguments as the audit log and the approval queue keep them.

    Secrets found anywhere are replaced first (before long strings are cut, so no
    half of a key is left to read), then values under secret-looking keys and
    long strings (`redact_arguments`). Reuses the DLP stage's walk when it ran;
    otherwise walks here and notes the findings (kind, path, fingerprint) so a
    planted canary can still be recognised.
    """
    if ctx.secrets_redacted is None:
        redacted, report = scanners.redact_sensitive(ctx.arguments(), categories=SECRETS)
        assert isinstance(redacted, dict)
        ctx.secrets_redacted = redacted
        if report.findings and "dlp" not in ctx.detail:
            ctx.detail["dlp"] = findings_json(report)
    return redact_arguments(ctx.secrets_redacted)


def findings_json(report: scanners.DlpReport) -> list[dict[str, str]]:
    """What the audit record keeps of a DLP report: kind, path and fingerprint."""
    return [{"kind": f.kind, "path": f.path, "fingerprint": f.fingerprint}
            for f in report.findings[:50]]


class InspectArguments:
    """Secrets and personal data in the call's arguments become labels policy sees."""

    def __call__(self, ctx: CallContext) -> Effect | None:
        redacted, report = scanners.inspect_sensitive(ctx.arguments(), redact=SECRETS)
        assert isinstance(redacted, dict)
        ctx.secrets_redacted = redacted
        if report.truncated:
            ctx.labels.add(flow.SECRET)
            ctx.detail["dlp_truncated"] = True
        if "secret" in report.categories or "binary" in report.categories:
            ctx.labels.add(flow.SECRET)
        for finding in report.findings:
            if finding.category == "secret" and not _from_user(ctx, _top_argument(finding.path)):
                ctx.labels.add(SECRET_NOT_FROM_USER)
        if PII in report.categories:
            ctx.labels.add(PII)
        if report.findings:
            ctx.detail["dlp"] = findings_json(report)
        return None


def _from_user(ctx: CallContext, argument: str | None) -> bool:
    """The argument is verbatim the user's words (the flow trace saw no payload in it)."""
    if ctx.flow is None or argument is None:
        return False
    return flow.CARRIES_PAYLOAD not in ctx.flow.arguments.get(argument, frozenset())


def _top_argument(path: str) -> str | None:
    """`$.password` → `password`; `$["a b"][0]` → `a b`; None when it cannot tell."""
    if path.startswith("$."):
        rest = path[2:]
        end = min((i for i in (rest.find("."), rest.find("["), rest.find("#")) if i >= 0),
                  default=len(rest))
        return rest[:end]
    if path.startswith('$["'):
        try:
            return str(json.JSONDecoder().raw_decode(path[2:])[0])
        except ValueError:
            return None
    return None
