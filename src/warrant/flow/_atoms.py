"""Values worth tracing, recognised in any text and normalised so a copy matches.

An *atom* is a value with a recognisable shape: an email address, an IBAN, a
URL or a phone number (the *destinations*: where money, messages or requests
go). Text is normalised first (NFKC, invisible characters removed, case folded)
so `Attacker@Evil.example`, `attacker@evil.example` and a fullwidth or
zero-width-split copy are the same atom.

INVARIANT: every function here is total and linear in its input: no regular
expression with nested quantifiers, and inputs are bounded by the caller.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass

#: Zero-width and other invisible characters an attacker can hide inside a value.
_INVISIBLE = dict.fromkeys(
    [0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x2060, 0x2061,
     0x2062, 0x2063, 0x2064, 0xFEFF, *range(0x200B, 0x2010), *range(0x202A, 0x202F),
     *range(0x2066, 0x206A), *range(0xFE00, 0xFE10)])
_SPACE = re.compile(r"\s+")
_DIGIT = re.compile(r"\d")
_WORD = re.compile(r"\w+")

EMAIL = "email"
IBAN = "iban"
URL = "url"
PHONE = "phone"
DESTINATIONS = frozenset({EMAIL, IBAN, URL, PHONE})

_EMAIL = re.compile(r"[\w.%+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}\.[a-z]{2,24}")
# Groups of four split by one kind of separator throughout: spaces as printed, `-` or
# `.` as typed (payment forms and libraries such as python-stdnum strip all three).
_IBAN = re.compile(r"\b[a-z]{2}\d{2}(?:[a-z0-9]{11,30}"
                   r"|([ .-])[a-z0-9]{4}(?:\1[a-z0-9]{4}){1,6}(?:\1[a-z0-9]{1,4})?)\b")
_IBAN_SEPARATORS = str.maketrans("", "", " .-")
#: A decimal digit of another script (Arabic-Indic `٤`, Devanagari `४`...): NFKC keeps
#: them, `int()` and many sinks read them as digits, so they are read as ASCII here.
_OTHER_DIGIT = re.compile(r"(?![0-9])\d")
# A URL: with a scheme, or `www.`, or a host under a common top-level domain
# (file names such as `bill-2023.txt` are not hosts).
_TLDS = ("com|org|net|io|ai|co|uk|de|fr|it|es|nl|ch|eu|us|info|biz|app|dev|me|edu|gov|"
         "ly|gl|tv|xyz|site|online|shop|cloud|tech|page|link|club|live|news|example")
_URL = re.compile(
    r"(?:https?://|ftp://|www\.)[^\s<>\"'`)\]}]{1,2000}"
    rf"|\b[a-z0-9-]{{1,63}}(?:\.[a-z0-9-]{{1,63}}){{0,6}}\.(?:{_TLDS})\b(?:/[^\s<>\"'`)\]}}]{{0,2000}})?")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{6,20}\d(?!\w)")


def normalise(text: str) -> str:
    """NFKC, invisible characters dropped, case folded, whitespace collapsed, every
    script's decimal digits read as ASCII digits."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).casefold()
    if not text.isascii():
        text = _OTHER_DIGIT.sub(_ascii_digit, text)
    return _SPACE.sub(" ", text).strip()


def _ascii_digit(match: re.Match[str]) -> str:
    return str(unicodedata.decimal(match.group()))


def words(normalised: str) -> list[str]:
    return _WORD.findall(normalised)


@dataclass(frozen=True, slots=True)
class Atom:
    kind: str
    value: str
    start: int  # offsets in the normalised text
    end: int


_TLD_SET = frozenset(_TLDS.split("|"))


def _url_key(raw: str) -> str:
    url = re.sub(r"^(?:https?|ftp)://", "", raw)
    url = url.removeprefix("www.").rstrip(".,;:!?/")
    host, slash, rest = url.partition("/")
    labels = host.split(".")
    if not slash and labels[-1] not in _TLD_SET:
        # "www.example.com.Then" (a missing space): end the host at its last known TLD.
        for i in range(len(labels) - 1, 0, -1):
            if labels[i - 1] in _TLD_SET and i > 1:
                return ".".join(labels[:i])
    return f"{host}{slash}{rest}"


def atoms(normalised: str, *, scan_all: bool = False) -> list[Atom]:
    """The destinations in already `normalise`d text, each as its canonical key."""
    found: list[Atom] = []
    taken: list[tuple[int, int]] = []
    # Each shape needs a character most prose lacks: skip the regular expressions
    # whose shape cannot occur (most of a trace's cost on a plain-text body).
    # (`scan_all` runs every one anyway: the tests check the shortcut changes nothing.)
    numeric = scan_all or _DIGIT.search(normalised) is not None
    hosts = scan_all or "." in normalised or "://" in normalised
    mail = scan_all or "@" in normalised
    if not (mail or hosts or numeric):
        return found
    for m in _EMAIL.finditer(normalised) if mail else ():
        found.append(Atom(EMAIL, m.group(), m.start(), m.end()))
        taken.append(m.span())
    for m in _IBAN.finditer(normalised) if numeric else ():
        key = m.group().translate(_IBAN_SEPARATORS).upper()
        if sum(c.isdigit() for c in key) >= 8:
            found.append(Atom(IBAN, key, m.start(), m.end()))
            taken.append(m.span())
    # URL matches never overlap one another, so only emails and IBANs can hide one.
    before_urls = _Spans(taken)
    for m in _URL.finditer(normalised) if hosts else ():
        if before_urls.touches(m.span()):  # the domain of an email address is not a URL
            continue
        key = _url_key(m.group())
        if key:
            found.append(Atom(URL, key, m.start(), m.end()))
            taken.append(m.span())
    every = _Spans(taken)
    for m in _PHONE.finditer(normalised) if numeric else ():
        digits = re.sub(r"\D", "", m.group())
        if 8 <= len(digits) <= 15 and not every.touches(m.span()) and not _is_date(m.group()):
            found.append(Atom(PHONE, digits[-9:], m.start(), m.end()))
    return found


class _Spans:
    """Spans already taken, asked whether a new span starts or ends inside one of them.

    Sorted starts with a running maximum of ends: each question is one bisection,
    so text full of addresses stays linear (a scan of every span was quadratic).
    """

    def __init__(self, spans: list[tuple[int, int]]):
        ordered = sorted(spans)
        self._starts = [s for s, _ in ordered]
        self._reach: list[int] = []  # the furthest end among spans starting up to here
        furthest = -1
        for _, end in ordered:
            furthest = max(furthest, end)
            self._reach.append(furthest)

    def touches(self, span: tuple[int, int]) -> bool:
        """Some taken (s, e) has s <= span.start < e, or s < span.end <= e."""
        start, end = span
        i = bisect.bisect_right(self._starts, start) - 1  # spans with s <= start
        if i >= 0 and self._reach[i] > start:
            return True
        j = bisect.bisect_left(self._starts, end) - 1  # spans with s < end
        return j >= 0 and self._reach[j] >= end


_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


def _is_date(text: str) -> bool:
    return bool(_DATE.match(text.strip().lstrip("+(")))
