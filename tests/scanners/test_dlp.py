"""The DLP scanner finds secrets and personal data, redacts them, and fails closed at bounds."""

from __future__ import annotations

import base64
import json
import random
import re
import string
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from warrant.scanners import DlpReport, SensitiveFinding, redact_sensitive, scan_sensitive
from warrant.scanners._dlp import MAX_DEPTH, MAX_FINDINGS, MAX_SCAN_CHARS

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "dlp"
ALNUM = string.ascii_letters + string.digits


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@cache
def fake_secrets() -> dict[str, str]:
    """Key-shaped values made up at test time, so the repository holds none."""
    rng = random.Random(7)

    def pick(n: int, alphabet: str = ALNUM) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    body = "\n".join(pick(64, ALNUM + "+/") for _ in range(6))
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps({"sub": "agent-7", "exp": 1900000000}).encode())
    return {
        "pem_rsa": f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----",
        "pem_cut": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}",
        "github_token": "ghp_" + pick(36),
        "github_pat": "github_pat_" + pick(22) + "_" + pick(59),
        "slack_token": "xoxb-" + pick(12, string.digits) + "-" + pick(24),
        "stripe_key": "sk_live_" + pick(24),
        "openai_key": "sk-proj-" + pick(20) + "7" + pick(27),
        "anthropic_key": "sk-ant-api03-" + pick(80, ALNUM + "-_"),
        "google_key": "AIza" + pick(35, ALNUM + "-_"),
        "jwt": f"{header}.{payload}.{_b64url(rng.randbytes(32))}",
        "opaque": pick(40, ALNUM + "-._~"),
    }


def load(name: str) -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads((VECTORS / name).read_text("utf-8"))["vectors"]
    fill = fake_secrets()
    for vector in vectors:
        vector["text"] = re.sub(r"\{([a-z_]+)\}", lambda m: fill.get(m[1], m[0]), vector["text"])
    return vectors


POSITIVE = load("positive.json")
NEGATIVE = load("negative.json")


@pytest.mark.parametrize("vector", POSITIVE, ids=[v["id"] for v in POSITIVE])
def test_every_positive_vector_is_found_as_its_kinds(vector: dict[str, Any]) -> None:
    report = scan_sensitive(vector["text"])
    assert report.kinds == set(vector["kinds"])
    assert not report.truncated


@pytest.mark.parametrize("vector", NEGATIVE, ids=[v["id"] for v in NEGATIVE])
def test_near_misses_produce_no_finding(vector: dict[str, Any]) -> None:
    report = scan_sensitive(vector["text"])
    if "absent" in vector:
        assert not report.kinds & set(vector["absent"])
    else:
        assert report == DlpReport(findings=(), truncated=False)


@pytest.mark.parametrize("vector", POSITIVE, ids=[v["id"] for v in POSITIVE])
def test_redaction_leaves_only_markers_where_values_were(vector: dict[str, Any]) -> None:
    redacted, report = redact_sensitive(vector["text"])
    assert isinstance(redacted, str)
    for finding in report.findings:
        assert f"[REDACTED:{finding.kind}]" in redacted
    assert scan_sensitive(redacted).findings == ()


def test_a_password_assignment_keeps_its_name_and_loses_its_value() -> None:
    redacted, report = redact_sensitive("login with password=hunter2x please")
    assert redacted == "login with password=[REDACTED:secret.credential] please"
    (finding,) = report.findings
    assert "login with password=hunter2x please"[finding.start:finding.end] == "hunter2x"
    assert finding.category == "secret"


def test_offsets_cover_the_original_text_including_hidden_characters() -> None:
    text = "pay 4111\u200b1111\u200b1111\u200b1111 now"
    (finding,) = scan_sensitive(text).findings
    assert text[finding.start:finding.end] == "4111\u200b1111\u200b1111\u200b1111"
    assert redact_sensitive(text)[0] == "pay [REDACTED:pii.card] now"


def test_an_obfuscated_value_has_the_fingerprint_of_the_plain_one() -> None:
    plain = scan_sensitive("4111111111111111").findings[0].fingerprint
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "4111111111111111")
    assert scan_sensitive(fullwidth).findings[0].fingerprint == plain
    assert scan_sensitive("%34111111111111111").findings[0].fingerprint == plain
    assert scan_sensitive("5555555555554444").findings[0].fingerprint != plain


def test_the_report_never_contains_the_value_it_found() -> None:
    secret = fake_secrets()["stripe_key"]
    report = scan_sensitive({"note": f"use {secret}", "to": ["jane@example.com"]})
    assert report.kinds == {"secret.stripe-key", "pii.email"}
    assert secret not in repr(report)
    assert "jane@example.com" not in repr(report)


def test_findings_carry_the_json_path_of_their_string() -> None:
    arguments = {"to": ["bob@example.com", "jane@example.com"],
                 "body": {"lines": ["ok", "IBAN DE89370400440532013000"]},
                 "odd key": "call +44 20 7946 0958"}
    paths = {(f.kind, f.path) for f in scan_sensitive(arguments).findings}
    assert paths == {("pii.email", "$.to[0]"), ("pii.email", "$.to[1]"),
                     ("pii.iban", "$.body.lines[1]"), ("pii.phone", '$["odd key"]')}
    assert scan_sensitive("bob@example.com").findings[0].path == "$"


def test_a_key_holding_personal_data_is_redacted_in_the_value_and_in_paths() -> None:
    redacted, report = redact_sensitive({"jane@example.com": {"card": "4111111111111111"}})
    assert redacted == {"[REDACTED:pii.email]": {"card": "[REDACTED:pii.card]"}}
    assert [(f.kind, f.path) for f in report.findings] == [
        ("pii.email", '$["[REDACTED:pii.email]"]#key'),
        ("pii.card", '$["[REDACTED:pii.email]"].card'),
    ]


def test_two_keys_redacted_alike_do_not_overwrite_each_other() -> None:
    redacted, _ = redact_sensitive({"a@example.com": 1, "b@example.com": 2})
    assert redacted == {"[REDACTED:pii.email]": 1, "[REDACTED:pii.email]~2": 2}


@pytest.mark.parametrize(("text", "shown"), [
    # `&`, `;` and `,` inside a value: the whole value goes (before, the tail stayed).
    ("password=Tr0ub4dor&3 ok", "password=[REDACTED:secret.credential] ok"),
    ("pwd=p@ss;w0rd-Secret99", "pwd=[REDACTED:secret.credential]"),
    ("password=ab&Zx9Qw8Er7Ty6", "password=[REDACTED:secret.credential]"),
    ("api_key=abc,DEF123456789xyz", "api_key=[REDACTED:secret.credential]"),
    # ... and where they start the next parameter or end a clause, they stay.
    ("/login?user=bob&password=hunter22&next=/home",
     "/login?user=bob&password=[REDACTED:secret.credential]&next=/home"),
    ("set password=Tr0ub4dor, then log in",
     "set password=[REDACTED:secret.credential], then log in"),
    ("password=hunter22; user=bob", "password=[REDACTED:secret.credential]; user=bob"),
])
def test_an_unquoted_password_is_taken_whole_up_to_the_next_parameter(text: str,
                                                                     shown: str) -> None:
    assert redact_sensitive(text)[0] == shown


def test_the_value_of_a_credential_field_is_redacted_whole() -> None:
    redacted, report = redact_sensitive(
        {"password": "correct horse", "api_key": "plainword", "db": {"client_secret": "x9!k"},
         "next_page_token": "CgNhYmM", "max_tokens": 100, "token": "null"})
    assert redacted == {"password": "[REDACTED:secret.credential]",
                        "api_key": "[REDACTED:secret.credential]",
                        "db": {"client_secret": "[REDACTED:secret.credential]"},
                        "next_page_token": "CgNhYmM", "max_tokens": 100, "token": "null"}
    assert {f.path for f in report.findings} == {"$.password", "$.api_key", "$.db.client_secret"}


def test_a_known_key_kind_wins_over_the_field_name() -> None:
    key = fake_secrets()["openai_key"]
    assert scan_sensitive({"api_key": key}).kinds == {"secret.openai-key"}


def test_a_card_number_given_as_an_integer_is_found_and_redacted() -> None:
    redacted, report = redact_sensitive({"card": 4111111111111111, "amount": 4111, "rate": 0.5})
    assert redacted == {"card": "[REDACTED:pii.card]", "amount": 4111, "rate": 0.5}
    assert report.kinds == {"pii.card"}


def test_bytes_are_reported_as_binary_not_decoded() -> None:
    blob = b"\x89PNG\r\n" + b"4111111111111111"
    redacted, report = redact_sensitive({"attachment": blob, "raw": bytearray(b"x")})
    assert redacted == {"attachment": "[REDACTED:binary]", "raw": "[REDACTED:binary]"}
    assert [(f.kind, f.category, f.end) for f in report.findings] == [
        ("binary", "binary", len(blob)), ("binary", "binary", 1)]
    assert report.categories == {"binary"}


def test_a_secret_hidden_in_base64_is_found_and_the_whole_run_redacted() -> None:
    hidden = base64.b64encode(b"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    text = f"payload {hidden.decode()} end"
    redacted, report = redact_sensitive(text)
    assert report.kinds == {"secret.aws-secret-key"}
    assert redacted == "payload [REDACTED:secret.aws-secret-key] end"


def test_overlapping_findings_become_one_redaction_of_their_union() -> None:
    token = fake_secrets()["jwt"]
    redacted, report = redact_sensitive(f"Authorization: Bearer {token}")
    assert redacted == "Authorization: Bearer [REDACTED:secret.jwt]"
    assert report.kinds == {"secret.jwt"}


def test_a_private_key_is_redacted_from_begin_to_end_line() -> None:
    pem = fake_secrets()["pem_rsa"]
    redacted, _ = redact_sensitive(f"before\n{pem}\nafter")
    assert redacted == "before\n[REDACTED:secret.private-key]\nafter"


def test_redaction_copies_and_leaves_the_input_untouched() -> None:
    arguments = {"to": ["bob@example.com"], "n": 1}
    snapshot = json.dumps(arguments)
    redacted, _ = redact_sensitive(arguments)
    assert json.dumps(arguments) == snapshot
    assert redacted == {"to": ["[REDACTED:pii.email]"], "n": 1}


def test_clean_values_are_returned_equal_and_untruncated() -> None:
    arguments = {"query": "weather in Paris", "days": 3, "units": None, "ok": True}
    assert redact_sensitive(arguments) == (arguments, DlpReport(findings=(), truncated=False))


def test_report_categories_and_kinds_summarise_its_findings() -> None:
    report = scan_sensitive(["AKIAIOSFODNN7EXAMPLE", "bob@example.com", "jane@example.com"])
    assert report.categories == {"secret", "pii"}
    assert report.kinds == {"secret.aws-access-key", "pii.email"}
    assert all(isinstance(f, SensitiveFinding) and len(f.fingerprint) == 8
               for f in report.findings)


def test_nesting_past_the_depth_bound_is_truncated_and_not_passed_through() -> None:
    value: Any = "bob@example.com"
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    redacted, report = redact_sensitive(value)
    assert report.truncated
    assert "bob@example.com" not in json.dumps(redacted)
    assert "[REDACTED:unscanned]" in json.dumps(redacted)


def test_a_string_past_the_size_bound_is_scanned_up_to_it_and_the_rest_replaced() -> None:
    text = "bob@example.com " + "x" * MAX_SCAN_CHARS + " jane@example.com"
    redacted, report = redact_sensitive(text)
    assert report.truncated
    assert report.kinds == {"pii.email"}
    assert isinstance(redacted, str)
    assert redacted.startswith("[REDACTED:pii.email] xxx")
    assert redacted.endswith("x[REDACTED:unscanned]")


def test_past_the_findings_bound_the_rest_is_replaced_not_passed() -> None:
    emails = [f"user{i}@example.com" for i in range(MAX_FINDINGS + 50)]
    redacted, report = redact_sensitive({"bcc": emails, "later": "carol@example.com"})
    assert report.truncated
    assert len(report.findings) == MAX_FINDINGS
    assert "@example.com" not in json.dumps(redacted)


def test_an_object_that_is_not_json_like_is_unscanned_and_fails_closed() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "bob@example.com"

    redacted, report = redact_sensitive({"x": Opaque()})
    assert report.truncated
    assert redacted == {"x": "[REDACTED:unscanned]"}


def test_a_self_referencing_list_stops_at_the_depth_bound() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert scan_sensitive(loop).truncated


def test_huge_integers_and_odd_keys_do_not_raise() -> None:
    report = scan_sensitive({10**5000: 10**5000, None: 1.5, (1, 2): "x", 3.5: float("nan")})
    assert report.findings == ()
