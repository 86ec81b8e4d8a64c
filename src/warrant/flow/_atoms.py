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

import re
import unicodedata
from dataclasses import dataclass

#: Zero-width and other invisible characters an attacker can hide inside a value.
_INVISIBLE = dict.fromkeys(
    [0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x2060, 0x2061,
     0x2062, 0x2063, 0x2064, 0xFEFF, *range(0x200B, 0x2010), *range(0x202A, 0x202F),
     *range(0x2066, 0x206A), *range(0xFE00, 0xFE10)])
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")

EMAIL = "email"
IBAN = "iban"
URL = "url"
PHONE = "phone"
DESTINATIONS = frozenset({EMAIL, IBAN, URL, PHONE})

_EMAIL = re.compile(r"[\w.%+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}\.[a-z]{2,24}")
_IBAN = re.compile(r"\b[a-z]{2}\d{2}(?:[a-z0-9]{11,30}|(?: [a-z0-9]{4}){2,7}(?: [a-z0-9]{1,4})?)\b")
# A URL: with a scheme, or `www.`, or a host under a common top-level domain
# (file names such as `bill-2023.txt` are not hosts).
_TLDS = ("com|org|net|io|ai|co|uk|de|fr|it|es|nl|ch|eu|us|info|biz|app|dev|me|edu|gov|"
         "ly|gl|tv|xyz|site|online|shop|cloud|tech|page|link|club|live|news|example")
_URL = re.compile(
    r"(?:https?://|ftp://|www\.)[^\s<>\"'`)\]}]{1,2000}"
    rf"|\b[a-z0-9-]{{1,63}}(?:\.[a-z0-9-]{{1,63}}){{0,6}}\.(?:{_TLDS})\b(?:/[^\s<>\"'`)\]}}]{{0,2000}})?")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{6,20}\d(?!\w)")


def normalise(text: str) -> str:
    """NFKC, invisible characters dropped, case folded, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).casefold()
    return _SPACE.sub(" ", text).strip()


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


def atoms(normalised: str) -> list[Atom]:
    """The destinations in already `normalise`d text, each as its canonical key."""
    found: list[Atom] = []
    taken: list[tuple[int, int]] = []
    for m in _EMAIL.finditer(normalised):
        found.append(Atom(EMAIL, m.group(), m.start(), m.end()))
        taken.append(m.span())
    for m in _IBAN.finditer(normalised):
        key = m.group().replace(" ", "").upper()
        if sum(c.isdigit() for c in key) >= 8:
            found.append(Atom(IBAN, key, m.start(), m.end()))
            taken.append(m.span())
    for m in _URL.finditer(normalised):
        if _inside(m.span(), taken):  # the domain of an email address is not a URL
            continue
        key = _url_key(m.group())
        if key:
            found.append(Atom(URL, key, m.start(), m.end()))
            taken.append(m.span())
    for m in _PHONE.finditer(normalised):
        digits = re.sub(r"\D", "", m.group())
        if 8 <= len(digits) <= 15 and not _inside(m.span(), taken) and not _is_date(m.group()):
            found.append(Atom(PHONE, digits[-9:], m.start(), m.end()))
    return found


def _inside(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(s <= span[0] < e or s < span[1] <= e for s, e in taken)


_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


def _is_date(text: str) -> bool:
    return bool(_DATE.match(text.strip().lstrip("+(")))
