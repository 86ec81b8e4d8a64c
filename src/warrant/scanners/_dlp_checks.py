"""Validators that turn a pattern's candidate into a finding: checksums and shape rules.

A regex only says "looks like"; these say "is". Payment cards must pass Luhn,
IBANs the ISO 13616 mod-97 check at their country's length, national ids their
check digit or issuing rules. Each takes the candidate text (already normalised
and free of invisible characters) and returns a bool; none raises.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

# SWIFT IBAN registry: length of a full IBAN per country code.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})
# Published specimen SSNs (the Woolworth wallet card, a 1940s advert): never real.
_SSN_SPECIMENS = frozenset({"078051120", "219099999"})
_DATE = re.compile(r"\d{1,2}[-./]\d{1,2}[-./](?:19|20)\d{2}|(?:19|20)\d{2}[-./]\d{1,2}[-./]\d{1,2}")
_DOUBLED = re.compile(r"[ .\-/]{2}|\(\)|\)\(")
_PLACEHOLDER = re.compile(
    r"\[REDACTED|\$|%\(|\{\{|<|\*{3}|x{4}|(?:null|none|true|false|undefined|string|"
    r"required|optional|redacted|hidden|masked)$", re.IGNORECASE)


def digits(text: str) -> str:
    return "".join(c for c in text if "0" <= c <= "9")


def luhn(number: str) -> bool:
    """The Luhn mod-10 check of a string of ASCII digits."""
    total = 0
    for i, char in enumerate(reversed(number)):
        d = ord(char) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card(candidate: str) -> bool:
    """13-19 digits of a card brand's range (2-6), Luhn-valid, grouped the way cards print."""
    number = digits(candidate)
    if not 13 <= len(number) <= 19 or number[0] not in "23456" or len(set(number)) == 1:
        return False
    groups = [len(g) for g in re.split(r"[ -]", candidate)]
    if len(groups) > 1 and groups not in ([4, 6, 5], [4, 6, 4]) and (
            any(g != 4 for g in groups[:-1]) or not 1 <= groups[-1] <= 4):
        return False
    return luhn(number)


def iban(compact: str) -> bool:
    """ISO 13616: a known country, that country's length, and mod 97 == 1."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit():
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def us_ssn(candidate: str) -> bool:
    """Area not 000, 666 or 900-999; group not 00; serial not 0000; not a known specimen."""
    number = digits(candidate)
    area, group, serial = number[:3], number[3:5], number[5:]
    return (area not in {"000", "666"} and area[0] != "9" and group != "00"
            and serial != "0000" and number not in _SSN_SPECIMENS)


def uk_nino(candidate: str) -> bool:
    """Prefixes HMRC never issues (BG, GB, NK, KN, TN, NT, ZZ) are excluded."""
    return candidate[:2].upper() not in _NINO_BAD_PREFIXES


def es_dni(candidate: str) -> bool:
    """DNI (8 digits) or NIE (X/Y/Z + 7 digits): the letter is the number mod 23."""
    body = candidate.replace("-", "").upper()
    number = "XYZ".find(body[0]) if body[0] in "XYZ" else None
    value = int(f"{number}{body[1:-1]}") if number is not None else int(body[:-1])
    return _DNI_LETTERS[value % 23] == body[-1]


def nl_bsn(candidate: str) -> bool:
    """Dutch BSN elfproef: 9..2 weights on the first eight digits, -1 on the last."""
    number = digits(candidate)
    if len(number) != 9 or number == "000000000":
        return False
    total = sum(int(d) * w for d, w in zip(number, (9, 8, 7, 6, 5, 4, 3, 2, -1), strict=True))
    return total % 11 == 0


def phone(candidate: str) -> bool:
    """8-15 digits (E.164), one separator at a time, balanced parentheses, not a date."""
    count = len(digits(candidate))
    if not 8 <= count <= 15 or _DATE.search(candidate):
        return False
    if _DOUBLED.search(candidate) or candidate.count("(") != candidate.count(")"):
        return False
    # A lone dot between digits is a decimal number, not a separator.
    return not (candidate.count(".") == 1 and not re.search(r"[ \-()]", candidate))


def nanp(candidate: str) -> bool:
    """North American numbers: area code and exchange both start 2-9."""
    number = digits(candidate)
    return number[0] in "23456789" and number[3] in "23456789"


def jwt(candidate: str) -> bool:
    """Three base64url parts whose first decodes to a JSON object with `alg` or `typ`."""
    header = candidate.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict) and ("alg" in decoded or "typ" in decoded)


def has_digit(candidate: str) -> bool:
    return any("0" <= c <= "9" for c in candidate)


def password_value(candidate: str) -> bool:
    """A value assigned to a password-like name that is not a placeholder or a reference."""
    value = candidate.strip("'\"")
    return len(value) >= 4 and not _PLACEHOLDER.match(value)


def weak_password_value(candidate: str) -> bool:
    """After `password:` (prose uses colons too): longer, and not a plain lowercase word."""
    value = candidate.strip("'\"")
    quoted = value != candidate
    return password_value(candidate) and (quoted or (
        len(value) >= 6 and not (value.isalpha() and (value.islower() or value.istitle()))))


def national_phone(candidate: str) -> bool:
    """A number with a trunk 0 (`020 7946 0958`, `06-12345678`): at least nine digits."""
    return phone(candidate) and len(digits(candidate)) >= 9
