"""Properties of the DLP scanner on arbitrary and adversarial input: total, bounded, exact."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from warrant.scanners import _dlp, redact_sensitive, scan_sensitive

# Pieces that reach the folding, the decoders and the detectors, mixed into random text.
FRAGMENTS = [
    "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00", "bob@example.com", "+44 20 7946 0958",
    "password=", "api_key: ", "Bearer ", "AKIA", "eyJ", "-----BEGIN PRIVATE KEY-----", "sk-",
    "123-45-6789", "AB 12 34 56 C", "12345678Z", "bsn ", "%34", "&#64;", "\\u0034", "\u200b",
    "\uff14", "\u0430", "\U000e0041", "[REDACTED:pii.card]", "=", ":", "\n", " ", "-", "0",
]
TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=25).map(
        "".join),
)
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=30,
)
FILLER = st.text(st.sampled_from(" abcxyz.,;:!?()\n"), max_size=20)
CARD_PREFIXES = ["4", "51", "55", "2221", "34", "37", "6011", "65", "35"]
IBAN_SPECS = {"DE": (22, "0123456789"), "GB": (22, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
              "FR": (27, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"), "NL": (18, "0123456789"),
              "NO": (15, "0123456789"), "MT": (31, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}


def luhn_digit(body: str) -> str:
    """The check digit that makes `body + digit` Luhn-valid (an oracle independent of `_dlp`)."""
    total = 0
    for i, char in enumerate(reversed(body)):
        d = int(char) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(CARD_PREFIXES))
    length = draw(st.sampled_from([16, 16, 15, 19, 13]))
    body = prefix + draw(st.text("0123456789", min_size=length - 1 - len(prefix),
                                 max_size=length - 1 - len(prefix)))
    assume(len(set(body)) > 1)
    return body + luhn_digit(body)


def grouped(number: str, separator: str) -> str:
    return separator.join(number[i:i + 4] for i in range(0, len(number), 4))


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(sorted(IBAN_SPECS)))
    length, alphabet = IBAN_SPECS[country]
    bban = draw(st.text(alphabet, min_size=length - 4, max_size=length - 4))
    number = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return f"{country}{98 - number % 97:02d}{bban}"


@contextmanager
def within(seconds: int) -> Iterator[None]:
    """Fail if the block runs longer than `seconds` (generous: catches blow-ups, not noise)."""
    def expire(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@settings(max_examples=300, deadline=None)
@given(value=JSON)
def test_any_json_like_value_is_scanned_without_raising(value: Any) -> None:
    redacted, report = redact_sensitive(value)
    assert scan_sensitive(value) == report
    for finding in report.findings:
        assert finding.path.startswith("$")
        assert 0 <= finding.start <= finding.end
        assert finding.start < finding.end or finding.kind == "binary"  # b"" is still bytes
        assert len(finding.fingerprint) == 8
        assert finding.category in {"secret", "pii", "binary"}
    json.dumps(redacted, default=str)  # JSON-like in, JSON-like out


@settings(max_examples=300, deadline=None)
@given(text=TEXT)
def test_findings_point_into_the_string_and_redaction_replaces_exactly_them(text: str) -> None:
    redacted, report = redact_sensitive(text)
    rebuilt, done = [], 0
    for finding in report.findings:
        assert done <= finding.start < finding.end <= len(text)
        rebuilt += [text[done:finding.start], f"[REDACTED:{finding.kind}]"]
        done = finding.end
    assert redacted == "".join([*rebuilt, text[done:]])


@settings(max_examples=300, deadline=None)
@given(value=JSON)
def test_redacting_twice_changes_nothing_more(value: Any) -> None:
    once, report = redact_sensitive(value)
    twice, again = redact_sensitive(once)
    assert repr(twice) == repr(once) or report.truncated  # repr: NaN != NaN
    assert again.findings == () or report.truncated


@settings(max_examples=300, deadline=None)
@given(card=cards(), separator=st.sampled_from(["", " ", "-"]), before=FILLER, after=FILLER)
def test_every_luhn_valid_card_is_found_and_never_left_in_the_output(
        card: str, separator: str, before: str, after: str) -> None:
    shown = grouped(card, separator) if separator else card
    redacted, report = redact_sensitive(f"{before} {shown} {after}")
    assert "pii.card" in report.kinds
    assert isinstance(redacted, str)
    assert shown not in redacted


@settings(max_examples=300, deadline=None)
@given(card=cards(), wrong=st.integers(1, 9), separator=st.sampled_from(["", " ", "-"]))
def test_a_luhn_invalid_number_is_never_a_card(card: str, wrong: int, separator: str) -> None:
    broken = card[:-1] + str((int(card[-1]) + wrong) % 10)
    shown = grouped(broken, separator) if separator else broken
    assert "pii.card" not in scan_sensitive(f"ref {shown}.").kinds


@settings(max_examples=300, deadline=None)
@given(iban=ibans(), spaced=st.booleans(), before=FILLER, after=FILLER)
def test_every_valid_iban_is_found_and_never_left_in_the_output(
        iban: str, spaced: bool, before: str, after: str) -> None:
    shown = grouped(iban, " ") if spaced else iban
    redacted, report = redact_sensitive(f"{before} {shown} {after}")
    assert "pii.iban" in report.kinds
    assert isinstance(redacted, str)
    assert shown not in redacted


@settings(max_examples=200, deadline=None)
@given(iban=ibans(), wrong=st.integers(1, 96))
def test_an_iban_with_wrong_check_digits_is_never_an_iban(iban: str, wrong: int) -> None:
    check = (int(iban[2:4]) + wrong) % 97
    assume(check >= 2)
    assert "pii.iban" not in scan_sensitive(f"to {iban[:2]}{check:02d}{iban[4:]} now").kinds


@settings(max_examples=200, deadline=None)
@given(invisible=st.lists(st.sampled_from(["\u200b", "\u200c", "\u2060", "\ufeff", "\u00ad",
                                           "\U000e0020", "\u0301"]), min_size=1, max_size=15),
       seed=st.randoms(use_true_random=False))
def test_invisible_characters_never_hide_a_card(invisible: list[str], seed: Any) -> None:
    chars = list("4111111111111111")
    for char in invisible:
        chars.insert(seed.randint(1, len(chars) - 1), char)
    assert "pii.card" in scan_sensitive("".join(chars)).kinds


ADVERSARIAL = {
    "digits": "4" * 200_000,
    "spaced-digits": "1 " * 100_000,
    "dashed-digits": "12-" * 70_000,
    "plus-digits": "+1 " * 70_000,
    "jwt-prefixes": "eyJ" * 70_000,
    "jwt-dots": "eyJhbGciOiJIUzI1NiJ9." * 10_000,
    "ats": "a@" * 100_000,
    "email-dots": "a@" + "b." * 100_000,
    "pem-begins": "-----BEGIN PRIVATE KEY-----\n" * 7_000,
    "assignments": "password=" * 22_000,
    "colons": "secret: " * 25_000,
    "bearers": "Bearer " * 28_000,
    "aws": "AKIA" * 50_000,
    "iban-starts": "DE89 " * 40_000,
    "base64": "QUJD" * 50_000,
    "percent": "%34" * 70_000,
    "entities": "&#52;" * 40_000,
    "invisible": "\u200b4" * 100_000,
    "fullwidth": "\uff14" * 200_000,
    "combining": "4\u0301" * 100_000,
    "nino": "AB 12 " * 35_000,
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_text_is_scanned_in_bounded_time(name: str) -> None:
    # A quadratic pattern would need minutes on 200 KB; linear ones take well under a second.
    with within(20):
        redacted, report = redact_sensitive(ADVERSARIAL[name])
    assert isinstance(redacted, str)
    assert len(report.findings) <= 1_000


def test_deep_wide_and_large_values_are_bounded_and_flagged() -> None:
    deep: Any = "x"
    for _ in range(10_000):
        deep = {"a": deep}
    wide = list(range(2_000_000))
    with within(20):
        assert scan_sensitive(deep).truncated
        assert scan_sensitive(wide).truncated
        assert scan_sensitive(b"\x00" * 5_000_000).truncated


# ASCII pieces around the shortcut's edge: needles in any case, near-needles, `%&\`,
# digits and runs just under and over an encoded run's length.
ASCII_PIECES = ["Token", "TOKEN", "tok", "Pass", "pwd", "SECRET", "Key", "ke", "BEARER", "bear",
                "Authorization", "sk-", "sk", "AKIA", "eyJ", "ghp_", "xox", "_live_", "aws",
                "Private Key", "BSN", "@", "%", "&", "\\", "7", "42", "a" * 23, "b" * 24, "==",
                "type", "content", "Europe/Paris", " ", "-", "_", "/", "+", "."]
ASCII_TEXT = st.lists(st.one_of(st.sampled_from(ASCII_PIECES), st.text(
    st.characters(max_codepoint=127), max_size=4)), max_size=12).map("".join)
ASCII_JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.integers() | ASCII_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ASCII_TEXT, inner, max_size=4),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(value=st.one_of(ASCII_JSON, JSON))
def test_the_inert_string_shortcut_finds_exactly_what_the_full_scan_finds(value: Any) -> None:
    shortcut = redact_sensitive(value), scan_sensitive(value)
    with patch.object(_dlp, "_inert", lambda _text: False):
        full = redact_sensitive(value), scan_sensitive(value)
    assert repr(shortcut) == repr(full)  # repr: NaN != NaN


def test_plain_keys_take_the_shortcut_and_near_secrets_do_not() -> None:
    assert all(_dlp._inert(text) for text in ("content", "type", "Europe/Paris", "is_dst"))
    assert not any(_dlp._inert(text) for text in (
        "Token", "x%41", "a&b", "2026", "PRIVATE KEY", "AKIAxxxx", "a" * 24, "me@x", "é"))
