"""The audit log and the approval queue never keep a secret a call carried, wherever it was."""

from __future__ import annotations

import pytest

from tests.conftest import AgentKit, make_agent
from warrant.audit import AuditRecord
from warrant.enforce import Pipeline, TrustDomain
from warrant.enforce._inspect import InspectArguments
from warrant.types import Decision, Effect, ToolCall

AWS_KEY = "AKIAIOSFODNN7EXAMPLQ"
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
PEM_BODY = "\n".join(["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"] * 8)
PRIVATE_KEY = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----"
SECRETS = (AWS_KEY, GITHUB_TOKEN, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw")


def record_of(domain: TrustDomain, decision: Decision) -> AuditRecord:
    assert decision.audit_seq is not None
    return domain.audit.get(decision.audit_seq).record


def leaky_call(agent: AgentKit) -> object:
    # Addressed to an allowed recipient; the secrets ride in free text and a URL.
    return agent.request(
        "send_email", to="ops@acme.example",
        body=f"deploy with {AWS_KEY}, then fetch "
             f"https://api.example/v1/repos?access={GITHUB_TOKEN}&page=2",
        attachments=[{"name": "key.pem", "text": PRIVATE_KEY}])


@pytest.mark.claim("audit.no-secrets")
def test_secrets_in_free_text_urls_and_nested_values_never_reach_the_audit_log(
        domain: TrustDomain, agent: AgentKit) -> None:
    decision = Pipeline(domain).decide(leaky_call(agent))  # type: ignore[arg-type]
    record = record_of(domain, decision)
    kept = record.to_bytes().decode()
    for secret in SECRETS:
        assert secret not in kept
    arguments = record.arguments_redacted
    assert arguments["to"] == "ops@acme.example"  # personal data stays: where data went
    assert "[REDACTED:secret.aws-access-key]" in arguments["body"]
    assert "&page=2" in arguments["body"]  # only the secret is cut out
    # What was redacted is still on record: kind, path and fingerprint, never the value.
    assert record.detail is not None
    kinds = {finding["kind"] for finding in record.detail["dlp"]}
    assert {"secret.aws-access-key", "secret.private-key"} <= kinds


def test_a_long_private_key_is_redacted_before_long_strings_are_cut(
        domain: TrustDomain, agent: AgentKit) -> None:
    # Cut first, the key's END line would be gone and the body no longer read as a
    # key: its first 256 characters would be kept in clear.
    assert len(PRIVATE_KEY) > 256
    decision = Pipeline(domain).decide(leaky_call(agent))  # type: ignore[arg-type]
    (attachment,) = record_of(domain, decision).arguments_redacted["attachments"]
    assert attachment["text"] == "[REDACTED:secret.private-key]"


def test_secrets_are_redacted_from_the_log_even_without_the_dlp_stage(
        domain: TrustDomain, agent: AgentKit) -> None:
    full = Pipeline(domain)
    pipeline = Pipeline(domain, stages=[
        s for s in full._stages if not isinstance(s, InspectArguments)])
    decision = pipeline.decide(leaky_call(agent))  # type: ignore[arg-type]
    record = record_of(domain, decision)
    for secret in SECRETS:
        assert secret not in record.to_bytes().decode()
    assert record.detail is not None
    assert "secret.aws-access-key" in {f["kind"] for f in record.detail["dlp"]}


def test_a_held_call_keeps_no_secret_in_the_approval_queue(domain: TrustDomain) -> None:
    payer = make_agent(domain, "payer", tools=("transfer:amount=0..5000",), total_budget=None)
    decision = Pipeline(domain).decide(payer.request(
        "transfer", amount=2500, memo=f"ref {AWS_KEY}"))
    assert decision.effect is Effect.NEEDS_APPROVAL
    (pending,) = domain.store.approvals.list(pending_only=True, now=0)
    assert AWS_KEY not in repr(pending)
    assert pending.arguments["memo"] == "ref [REDACTED:secret.aws-access-key]"


@pytest.mark.claim("audit.no-secrets")
def test_data_flow_notes_quoting_a_secret_keep_it_out_of_the_log_and_the_queue(
        domain: TrustDomain) -> None:
    # The flow stage quotes the URL it could not trace back to the user or a record;
    # the note must not carry the token inside it (nor one used as an argument key).
    payer = make_agent(domain, "payer", tools=("transfer:amount=0..5000",), total_budget=None)
    decision = Pipeline(domain).decide(payer.request_call(ToolCall(tool="transfer", arguments={
        "amount": 2500, "memo": f"https://hooks.example.net/p?token={GITHUB_TOKEN}",
        "meta": {GITHUB_TOKEN: 1}, AWS_KEY: "x"})))  # a secret as an argument's name too
    record = record_of(domain, decision)
    assert record.detail is not None and record.detail["flow"]["notes"]  # the notes are kept
    text = record.to_bytes().decode()
    for secret in (GITHUB_TOKEN, AWS_KEY):  # notes quote URLs lowercased
        assert secret.lower() not in text.lower()
        for pending in domain.store.approvals.list(pending_only=True, now=0):
            assert secret.lower() not in repr(pending).lower()
