r"""The detectors of the DLP scanner: what secrets and personal data look like.

Every detector has one shape: it takes normalised text (see `_dlp`) and yields
`(kind, start, end)` for each value it finds, the span covering only the
sensitive value (for `password=hunter2`, `hunter2`). Adding a kind is adding a
`_Regex` to `DETECTORS` (or a function of the same shape).

INVARIANT: every pattern is linear in the text. Runs of a character class
start with a negative look-behind on that class (a run is tried once, not at
each of its characters), repeats are bounded or unambiguous, and anything
needing look-ahead over unbounded text (a PEM block's end, an IBAN's length)
is done in code, not in the regex. Where a pattern can start with a plain
character class, the look-behind comes after it (`[2-6](?<!\d.)`): `re` then
skips ahead over characters that cannot start a match instead of trying each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from . import _dlp_checks as check

Hit = tuple[str, int, int]
#: Longest PEM block searched for its END line; beyond it the base64 body is taken.
MAX_PEM_CHARS = 65_536
# Matches of digit-triggered detectors (IBAN, cards, phones, ids) are shorter than this,
# so one lies within this distance of a run of two digits, look-arounds included.
_DIGIT_REACH = 64
_DIGITS = re.compile(r"[0-9][0-9]+")
_A = re.ASCII
_AI = re.ASCII | re.IGNORECASE


class Text:
    """A folded string as the detectors see it, with what they share computed once.

    Regex passes cost ~10 ns a character whatever they find, so most detectors
    only run inside windows around a trigger: a run of digits, or a needle
    found with `str.find`.
    """

    __slots__ = ("_digit_windows", "lowered", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.lowered = text.lower()
        self._digit_windows: list[tuple[int, int]] | None = None

    def digit_windows(self) -> list[tuple[int, int]]:
        if self._digit_windows is None:
            # `_merged` inlined: digit-dense text has thousands of runs.
            windows: list[tuple[int, int]] = []
            lo = hi = -1
            for match in _DIGITS.finditer(self.text):
                start, end = match.span()
                if start - _DIGIT_REACH > hi:
                    if hi >= 0:
                        windows.append((max(0, lo), hi))
                    lo = start - _DIGIT_REACH
                hi = end + _DIGIT_REACH
            if hi >= 0:
                windows.append((max(0, lo), min(hi, len(self.text))))
            self._digit_windows = windows
        return self._digit_windows

    def needle_windows(self, needles: tuple[str, ...], before: int, after: int | None,
                       then: str = "") -> list[tuple[int, int]]:
        """Windows around each needle (followed within 16 characters by `then`, if given)."""
        found = []
        lowered = self.lowered
        for needle in needles:
            at = lowered.find(needle)
            while at != -1:
                end = at + len(needle)
                if not then or lowered.find(then, end, end + 16) != -1:
                    found.append((at, end))
                at = lowered.find(needle, at + 1)
        found.sort()
        return _merged(found, before, len(self.text), len(self.text) if after is None else after)


def _merged(spans: Iterable[tuple[int, int]], before: int, size: int, after: int | None = None
            ) -> list[tuple[int, int]]:
    """Spans widened by `before`/`after` characters, overlapping ones joined (sorted input)."""
    after = before if after is None else after
    windows: list[tuple[int, int]] = []
    for start, end in spans:
        lo, hi = max(0, start - before), min(size, end + after)
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(windows[-1][1], hi))
        else:
            windows.append((lo, hi))
    return windows


#: Text -> hits: one shape for every detector.
Detector = Callable[[Text], Iterator[Hit]]


@dataclass(frozen=True, slots=True)
class _Regex:
    """A pattern, a validator of the value group, and where in the text to run it."""

    kind: str
    pattern: re.Pattern[str]
    valid: Callable[[str], bool] | None = None
    #: Lower-case substrings that trigger the pattern (near them only); none: digit runs.
    needles: tuple[str, ...] = ()
    #: Group holding the sensitive value; quotes around it are left out of the span.
    group: int = 0
    #: How far before and after a needle a match reaches (None: to the end of the text).
    reach: tuple[int, int | None] = (2, None)
    #: A character that must follow the needle closely (the `=` of an assignment).
    then: str = ""

    def __call__(self, text: Text) -> Iterator[Hit]:
        if self.needles:
            windows = text.needle_windows(self.needles, *self.reach, self.then)
        else:
            windows = text.digit_windows()
        for lo, hi in windows:
            for match in self.pattern.finditer(text.text, lo, hi):
                start, end = match.span(self.group)
                value = match.group(self.group)
                if self.valid is not None and not self.valid(value):
                    continue
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                    start, end = start + 1, end - 1
                yield self.kind, start, end


_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----", _A)
_PEM_END = re.compile(r"-----END ([A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----", _A)
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=\s]*", _A)


def private_keys(folded: Text) -> Iterator[Hit]:
    """PEM private keys (PKCS#1, PKCS#8, OpenSSH, PGP), from BEGIN to END.

    A block without its END line (cut off, or a second BEGIN inside) ends where
    its base64 body does. The next END is searched once and reused while it is
    ahead, so many BEGIN lines cost one pass.
    """
    text = folded.text
    if "PRIVATE KEY" not in text:
        return
    end_at, next_end, searched = -1, None, False
    for begin in _PEM_BEGIN.finditer(text):
        if begin.start() < end_at:
            continue
        if not searched or (next_end is not None and next_end.start() < begin.end()):
            next_end, searched = _PEM_END.search(text, begin.end()), True
        following = _PEM_BEGIN.search(text, begin.end(), next_end.start()) if next_end else None
        if (next_end is not None and following is None
                and next_end.start() - begin.end() <= MAX_PEM_CHARS):
            end_at = next_end.end()
        else:
            body = _PEM_BODY.match(text, begin.end(), begin.end() + MAX_PEM_CHARS)
            end_at = body.end() if body else begin.end()
        yield "secret.private-key", begin.start(), end_at


def ibans(folded: Text) -> Iterator[Hit]:
    """IBANs printed compact or in groups of four; the country fixes where one ends."""
    text = folded.text
    starts = (m for lo, hi in folded.digit_windows() for m in _IBAN_START.finditer(text, lo, hi))
    for match in starts:
        length = check.IBAN_LENGTHS.get(match.group(1))
        if length is None:
            continue
        body = _IBAN_BODY.match(text, match.start(), match.start() + length * 2)
        if body is None:
            continue
        taken, end = 0, match.start()
        for i, char in enumerate(body.group()):
            if char != " ":
                taken += 1
                if taken == length:
                    end = match.start() + i + 1
                    break
        if taken != length or (end < len(text) and text[end].isalnum()):
            continue
        if check.iban(text[match.start():end].replace(" ", "")):
            yield "pii.iban", match.start(), end


_IBAN_START = re.compile(r"([A-Z](?<![A-Za-z0-9].)[A-Z])\d{2}(?=[ ]?[A-Z0-9])", _A)
_IBAN_BODY = re.compile(r"[A-Z0-9]+(?: [A-Z0-9]+)*", _A)

_RUN = r"A-Za-z0-9_\-"
_ASSIGNED_NAME = (r"(?<![A-Za-z0-9])(?:pass(?:word|wd|phrase)?|pwd|secret|client[_-]?secret"
                r"|secret[_-]?key|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
                r"|auth[_-]?token|access[_-]?token|refresh[_-]?token)[\"']?[ \t]{0,4}")
_CREDENTIAL_NEEDLES = ("pass", "pwd", "secret", "key", "token")
# An unquoted value ends at whitespace, a quote or a bracket; at `&`, `;` or `,` only when
# another `name=` follows (the next parameter of a query string or a list), so that
# `password=Tr0ub4dor&3` is taken whole and `password=abc&next=2` stops at `abc`.
_BARE = r"[^\s\"',;&<>{}\[\]]"
_VALUE = (r"(\"[^\"\n]{1,200}\"|'[^'\n]{1,200}'"
          rf"|{_BARE}(?:{_BARE}|[,;&](?={_BARE})(?![A-Za-z0-9_.\-]{{1,64}}=)){{0,199}})")

#: Most specific first: on spans that overlap, the first detector's kind is kept.
DETECTORS: tuple[Detector, ...] = (
    private_keys,
    _Regex("secret.jwt", re.compile(
        rf"(?<![{_RUN}.])eyJ[{_RUN}]{{8,}}\.eyJ[{_RUN}]{{8,}}\.[{_RUN}]*", _A),
        check.jwt, ("eyj",), reach=(2, None)),
    _Regex("secret.aws-access-key", re.compile(
        r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])", _A),
        needles=("akia", "asia", "abia", "acca", "a3t"), reach=(2, 24)),
    _Regex("secret.aws-secret-key", re.compile(
        r"(?<![A-Za-z0-9])aws_?secret_?(?:access_?)?key[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?"
        r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])", _AI), needles=("aws",), group=1,
        reach=(2, 100)),
    _Regex("secret.github-token", re.compile(
        r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})"
        r"(?![A-Za-z0-9_])", _A), needles=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        reach=(2, 260)),
    _Regex("secret.slack-token", re.compile(
        r"(?<![A-Za-z0-9-])xox[abposre]-[A-Za-z0-9-]{10,250}(?![A-Za-z0-9-])", _A),
        needles=("xox",), reach=(2, 260)),
    _Regex("secret.stripe-key", re.compile(
        r"(?<![A-Za-z0-9_])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}(?![A-Za-z0-9_])", _A),
        needles=("_live_", "_test_"), reach=(4, 260)),
    _Regex("secret.anthropic-key", re.compile(
        rf"(?<![{_RUN}])sk-ant-[{_RUN}]{{20,250}}(?![{_RUN}])", _A), needles=("sk-ant-",),
        reach=(2, 260)),
    _Regex("secret.openai-key", re.compile(
        rf"(?<![{_RUN}])sk-(?!ant-)[{_RUN}]{{20,250}}(?![{_RUN}])", _A), check.has_digit,
        ("sk-",), reach=(2, 260)),
    _Regex("secret.google-api-key", re.compile(
        rf"(?<![{_RUN}])AIza[{_RUN}]{{35}}(?![{_RUN}])", _A), needles=("aiza",),
        reach=(2, 45)),
    _Regex("secret.bearer-token", re.compile(
        r"(?<![A-Za-z0-9])bearer[ \t]{1,4}([A-Za-z0-9._~+/\-]{16,4096}=*)", _AI),
        needles=("bearer",), group=1, reach=(2, 4_120)),
    _Regex("secret.basic-auth", re.compile(
        r"authorization[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?basic[ \t]{1,4}"
        r"([A-Za-z0-9+/]{8,4096}=*)", _AI), needles=("authorization",), group=1, reach=(2, 4_150)),
    _Regex("secret.credential", re.compile(_ASSIGNED_NAME + "=[ \t]{0,4}" + _VALUE, _AI),
           check.password_value, _CREDENTIAL_NEEDLES, group=1, reach=(16, 240), then="="),
    _Regex("secret.credential", re.compile(_ASSIGNED_NAME + ":[ \t]{0,4}" + _VALUE, _AI),
           check.weak_password_value, _CREDENTIAL_NEEDLES, group=1, reach=(16, 240),
           then=":"),
    ibans,
    _Regex("pii.card", re.compile(
        r"[2-6](?<!\d.)(?<!\d[ -].)(?:[ -]?\d){12,18}(?!\d)", _A), check.card),
    _Regex("pii.us-ssn", re.compile(
        r"\d(?<!\d.)(?<!\d[ -].)\d\d([- ])\d{2}\1\d{4}(?!\d)(?![ -]\d)", _A), check.us_ssn),
    _Regex("pii.uk-nino", re.compile(
        r"[A-CEGHJ-PR-TW-Z](?<![A-Za-z0-9].)[A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]"
        r"(?![A-Za-z0-9])", _A), check.uk_nino),
    _Regex("pii.es-dni", re.compile(
        r"[0-9XYZ](?<![A-Za-z0-9].)\d{7}-?[A-Z](?![A-Za-z0-9])", _A), check.es_dni),
    _Regex("pii.nl-bsn", re.compile(
        r"(?<![A-Za-z0-9])(?:bsn|burgerservicenummer|sofinummer)\b[^\d\n]{0,20}"
        r"(\d{9}|\d{4}\.\d{2}\.\d{3})(?![\d])", _AI), check.nl_bsn,
        ("bsn", "burgerservicenummer", "sofinummer"), group=1, reach=(2, 60)),
    _Regex("pii.email", re.compile(
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})"
        r"(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![A-Za-z0-9-])", _A), needles=("@",),
        reach=(66, 600)),
    _Regex("pii.phone", re.compile(
        r"[+0](?<![\w+.\-/].)(?<!\d[ .\-].)(?:(?<=\+)|(?<=0)0)[1-9][\d .()\-]{6,22}\d(?!\w)", _A),
        check.phone),
    _Regex("pii.phone", re.compile(
        r"[(\d](?<![\w+.\-/].)(?<!\d[ .\-].)(?:(?<=\()\d{3}\) ?|(?<=\d)\d\d[ .\-])\d{3}[ .\-]\d{4}"
        r"(?!\w|[.\-]\d)", _A),
        check.nanp),
    _Regex("pii.phone", re.compile(
        r"0(?<![\w+.\-/]0)(?<!\d[ .\-]0)[1-9][\d .\-()]{6,16}\d(?!\w|[.\-/]\d)", _A),
        check.national_phone),
)

#: Matches wherever some detector could fire; text without a match skips them all (most
#: short strings: one search instead of a call per detector).
TRIGGER = re.compile("|".join(
    [re.escape(n) for d in DETECTORS if isinstance(d, _Regex) for n in d.needles]
    + [r"[0-9][0-9]", "private key"]))
