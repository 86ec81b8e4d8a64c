"""DLP: secrets and personal data in tool-call arguments and outputs, found and redacted.

`scan_sensitive` walks a JSON-like value and reports every secret (API keys,
tokens, private keys, passwords) and piece of personal data (emails, phones,
cards, IBANs, national ids) with its JSON path, offsets and a fingerprint;
`redact_sensitive` also returns a copy with each one replaced by
`[REDACTED:<kind>]`. Both are pure, deterministic and never raise.

Each string is first folded the way a reader (or a model) would take it:
invisible and format characters dropped, NFKC (fullwidth digits become
digits), look-alike letters mapped to Latin, `%41`, `&#65;`, `\\u0041` decoded.
The detectors of `_dlp_patterns` run over that, and every match is mapped back
to offsets in the original string. Base64 and hex runs are decoded once and
scanned too; a finding inside one covers the whole run.

INVARIANT: the walk is bounded (`MAX_DEPTH`, `MAX_SCAN_CHARS`, `MAX_FINDINGS`).
Past a bound the report says `truncated` and redaction replaces what was not
scanned with `[REDACTED:unscanned]`: nothing unscanned passes as clean.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html.entities
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from . import _dlp_checks as check
from ._dlp_patterns import DETECTORS, TRIGGER, Text
from ._text import is_invisible, skeleton

MAX_DEPTH = 32
#: Characters (and bytes, and one per value) scanned per call, keys and decoded runs included.
MAX_SCAN_CHARS = 1_048_576
MAX_FINDINGS = 1_000
UNSCANNED = "[REDACTED:unscanned]"
_STRIP_CATEGORIES = frozenset({"Cf", "Mn", "Me", "Cc", "Cs", "Co", "Cn"})
_SPECIAL = re.compile(r"[^\x00-\x7f]+|(?:%[0-9A-Fa-f]{2})+|\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}"
                      r"|&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# `_text._BASE64_RUN` without its look-behind, which makes `re` try every character: a
# run is consumed whole from its first character, and shorter ones cost < 24 steps each.
# Hex runs are base64 runs too, so one pass finds both.
_ENCODED_RUN = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
_HEX = re.compile(r"[0-9A-Fa-f]+")
#: In an ASCII string, anything that could make a scan find something: a detector's
#: trigger (its needles are lower-case, so any case of them here), a character folding
#: would decode (`%`, `&`, `\\`), or an encoded run. A string with none of these is
#: returned as it is without the walk's per-string work (most keys and short values);
#: a property test checks that this gives exactly what the full scan gives.
_NOT_INERT = re.compile("|".join((TRIGGER.pattern, r"[%&\\]", _ENCODED_RUN.pattern)),
                        re.IGNORECASE | re.ASCII)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_FIELD = re.compile(
    r"(?:.*[_\-. ])?(?:pass(?:word|wd|phrase)?|pwd|secret|client_?secret|secret_?key|api_?key"
    r"|apikey|access_?key|private_?key|(?:auth|access|refresh|id|session|bearer)?_?token"
    r"|authorization|credentials?|cookie)", re.IGNORECASE)
_NOT_SECRET_FIELD = re.compile(r"page|cursor|next|continuation|count|max|limit|sync",
                               re.IGNORECASE)
_KEY_DETECTOR = len(DETECTORS)  # field-name hits lose to every content detector on a tie
_Adder = Callable[[str, int, int], None]
_Span = tuple[str, str, int, int, str]  # kind, category, start, end, fingerprint
#: Times a redacted string is scanned again for values its redactions exposed.
_RESCANS = 3


@dataclass(frozen=True, slots=True)
class SensitiveFinding:
    """One secret or piece of personal data: where it is and a fingerprint, never the value."""

    #: `secret.<what>` (`secret.aws-access-key`), `pii.<what>` (`pii.iban`), or `binary`.
    kind: str
    #: `secret`, `pii`, or `binary` (bytes, reported rather than decoded).
    category: str
    #: JSON path of the string: `$` for a bare string, `$.body`, `$.to[0]`, `$["a b"]`.
    #: A finding in an object's key has `#key` appended; keys in paths are redacted.
    path: str
    #: Offsets in that string as given (not normalised): `value[start:end]` is what matched.
    start: int
    end: int
    #: First 8 hex digits of the SHA-256 of the normalised value: shows the same value
    #: recurring without storing it (low-entropy values such as phone numbers can be guessed).
    fingerprint: str


@dataclass(frozen=True, slots=True)
class DlpReport:
    """All findings of one scan; `truncated` means part of the value was not scanned."""

    findings: tuple[SensitiveFinding, ...]
    truncated: bool

    @property
    def categories(self) -> frozenset[str]:
        return frozenset(f.category for f in self.findings)

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(f.kind for f in self.findings)


def scan_sensitive(value: object) -> DlpReport:
    """Find secrets and personal data anywhere in `value` (JSON-like: dict, list, str...).

    Never raises. If `truncated` is set, a bound was hit (depth, size, number of
    findings, or a type that cannot be scanned): treat the value as unsafe.
    """
    walk = _Walk(redact=False)
    walk.value(value, "$", 0)
    return DlpReport(tuple(walk.findings), walk.truncated)


def redact_sensitive(value: object, *,
                     categories: frozenset[str] | None = None) -> tuple[object, DlpReport]:
    """`value` with each finding replaced by `[REDACTED:<kind>]`, and the report.

    Containers are copied (mappings become dicts, sequences lists); bytes become
    `[REDACTED:binary]`, an integer with a finding becomes the marker string, and
    anything not scanned becomes `[REDACTED:unscanned]`. Redacting twice changes
    nothing more. `categories` limits what is redacted (and reported), e.g.
    `frozenset({"secret"})` to leave personal data in place.
    """
    walk = _Walk(redact=True, categories=categories)
    result = walk.value(value, "$", 0)
    return result, DlpReport(tuple(walk.findings), walk.truncated)


def inspect_sensitive(value: object, *,
                      redact: frozenset[str]) -> tuple[object, DlpReport]:
    """Every finding in `value` reported, and a copy with only the `redact` categories
    replaced: one walk that both decides (on all findings) and redacts (some)."""
    walk = _Walk(redact=True, categories=redact, report_all=True)
    result = walk.value(value, "$", 0)
    return result, DlpReport(tuple(walk.findings), walk.truncated)


def finding_fingerprint(text: str) -> str:
    """The fingerprint of a finding whose span is all of `text` (as folded for the scan):
    how a known value (a planted canary) is recognised in a report without its text."""
    return fingerprint(_fold(text).text)


def fingerprint(value: str | bytes) -> str:
    data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:8]


@dataclass(slots=True)
class _Walk:
    redact: bool
    categories: frozenset[str] | None = None
    #: Report the findings of every category, not only those redacted.
    report_all: bool = False
    budget: int = MAX_SCAN_CHARS
    truncated: bool = False
    findings: list[SensitiveFinding] = field(default_factory=list)

    def value(self, value: object, path: str,  # noqa: PLR0911 - one arm per JSON type
              depth: int) -> object:
        self.budget -= 1
        if self.budget < 0 or depth > MAX_DEPTH:
            self.truncated = True
            return UNSCANNED
        match value:
            case None | bool() | float():
                return value
            case str():
                return self.text(value, path)
            case int():
                # Only up to 19 digits can hold a card number; str() of huge ints is refused.
                if not -(10**19) < value < 10**19:
                    return value
                redacted = self.text(str(value), path)
                return value if redacted == str(value) else redacted
            case bytes() | bytearray() | memoryview():
                return self.binary(value, path)
            case Mapping():
                return self.mapping(value, path, depth)
            case Sequence():
                items = [self.value(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
                return items if self.redact else value
            case _:
                self.truncated = True  # an object we do not know how to read: not clean
                return UNSCANNED

    def mapping(self, value: Mapping[object, object], path: str, depth: int) -> object:
        result: dict[object, object] = {}
        for key, item in value.items():
            name = _key_name(key)
            shown = self.text(name, path, key=True)
            child = _child(path, shown)
            out_key = _unique(result, key if shown == name else shown)
            if isinstance(item, str) and _secret_field(name):
                result[out_key] = self.text(item, child, whole=True)
            else:
                result[out_key] = self.value(item, child, depth + 1)
        return result if self.redact else value

    def binary(self, value: bytes | bytearray | memoryview, path: str) -> object:
        size = value.nbytes if isinstance(value, memoryview) else len(value)
        if size > self.budget:
            self.truncated = True
            data = bytes(value[:self.budget]) if not isinstance(value, memoryview) else b""
        else:
            data = bytes(value)
        self.budget -= size
        self.record([("binary", "binary", 0, size, fingerprint(data))], path)
        return "[REDACTED:binary]"

    def text(self, text: str, path: str, *, key: bool = False, whole: bool = False) -> str:
        """Scan one string; return it redacted (always for keys: paths show them redacted).

        `key`: `text` is a key of the object at `path`. `whole`: it is the value of a
        credential-named field, a finding as a whole unless it is a placeholder.
        """
        if not whole and len(text) <= self.budget and _inert(text):
            self.budget -= len(text)
            return text
        scanned = text[:max(self.budget, 0)]
        self.budget -= len(text)
        spans = self.spans(scanned, whole=whole)
        # INVARIANT: redacting the result again finds nothing. Removing a value can expose
        # one it hid (in `001-01-0001DE89...` the IBAN is glued to the SSN until the SSN
        # goes), so the redacted text is scanned again and what appears joins the spans.
        for _ in range(_RESCANS):
            if not spans:
                break
            redacted, markers = _apply(scanned, spans)
            exposed = self.spans(redacted)
            if not exposed:
                break
            spans = _union([*spans, *((kind, category, _back(start, markers, end=False),
                                       _back(end, markers, end=True), digest)
                                      for kind, category, start, end, digest in exposed)])
        else:
            self.truncated = bool(spans)  # still changing: fail closed
        room = MAX_FINDINGS - len(self.findings)
        if len(spans) > room:
            spans = spans[:room]
            scanned = scanned[:spans[-1][3] if spans else 0]
            self.budget = -1
        if len(scanned) < len(text):
            self.truncated = True
        shown = (spans if self.categories is None
                 else [span for span in spans if span[1] in self.categories])
        redacted = _apply(scanned, shown)[0]
        if len(scanned) < len(text):
            redacted += UNSCANNED
        self.record(spans if self.report_all else shown,
                    _child(path, redacted) + "#key" if key else path)
        return redacted if self.redact or key else text

    def spans(self, text: str, *, whole: bool = False) -> list[_Span]:
        """(kind, category, start, end, fingerprint) of each finding in `text`, in order."""
        folded = _fold(text)
        hits = list(_detect(folded.text, self))
        if whole and check.password_value(folded.text):
            hits.append(("secret.credential", 0, len(folded.text), _KEY_DETECTOR))
        hits.sort(key=lambda h: (h[1], -h[2], h[3]))
        return [(kind, kind.split(".", 1)[0], *folded.original(start, end),
                 fingerprint(folded.text[start:end])) for kind, start, end in _merge(hits)]

    def record(self, spans: list[_Span], path: str) -> None:
        for kind, category, start, end, digest in spans:
            if len(self.findings) >= MAX_FINDINGS:
                self.truncated, self.budget = True, -1
                return
            self.findings.append(SensitiveFinding(kind, category, path, start, end, digest))


def _inert(text: str) -> bool:
    """True if scanning `text` cannot find anything (see `_NOT_INERT`)."""
    return text.isascii() and _NOT_INERT.search(text) is None


def _apply(text: str, spans: list[_Span]) -> tuple[str, list[tuple[int, int, int, int]]]:
    """`text` with spans replaced by markers, and (marker start, end, span start, end)."""
    pieces: list[str] = []
    markers: list[tuple[int, int, int, int]] = []
    done = size = 0
    for kind, _category, start, end, _digest in spans:
        marker = f"[REDACTED:{kind}]"
        size += start - done
        markers.append((size, size + len(marker), start, end))
        pieces += [text[done:start], marker]
        size += len(marker)
        done = end
    pieces.append(text[done:])
    return "".join(pieces), markers


def _back(at: int, markers: list[tuple[int, int, int, int]], *, end: bool) -> int:
    """An offset in redacted text as an offset in the original (a marker maps to its span)."""
    shift = 0
    for marker_start, marker_end, start, stop in markers:
        if at < marker_start or (end and at == marker_start):
            return at + shift
        if at < marker_end or (end and at == marker_end):
            return stop if end else start
        shift = stop - marker_end
    return at + shift


def _union(spans: list[_Span]) -> list[_Span]:
    """Overlapping spans joined; the earlier-starting one names the union."""
    joined: list[_Span] = []
    for span in sorted(spans, key=lambda s: (s[2], -s[3])):
        if joined and span[2] < joined[-1][3]:
            last = joined[-1]
            joined[-1] = (last[0], last[1], last[2], max(last[3], span[3]), last[4])
        else:
            joined.append(span)
    return joined


def _key_name(key: object) -> str:
    if isinstance(key, str):
        return key
    if (isinstance(key, int) and -(10**19) < key < 10**19) or isinstance(key, float | None):
        return str(key)
    return f"<{type(key).__name__}>"


def _detect(text: str, walk: _Walk) -> Iterator[tuple[str, int, int, int]]:
    """Every detector over `text`, then over base64/hex runs decoded (a hit covers the run)."""
    yield from _detect_plain(text)
    for run in _ENCODED_RUN.finditer(text):
        encoded = run.group()
        decoded = _decode(encoded)
        if decoded is None:
            continue
        if walk.budget < len(decoded):
            walk.truncated = True
            continue
        walk.budget -= len(decoded)
        for kind, _start, _end, rank in _detect_plain(_fold(decoded).text):
            yield kind, run.start(), run.end(), rank


def _decode(run: str) -> str | None:
    """The text a base64 or hex run encodes, if it is printable UTF-8 (digits count: unlike
    `_text`'s decoders, which want words, a card number is what this is looking for)."""
    try:
        if len(run) % 2 == 0 and _HEX.fullmatch(run):
            raw = bytes.fromhex(run)
        else:
            data = run.rstrip("=").replace("-", "+").replace("_", "/")
            raw = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    printable = sum(c.isprintable() or c in "\n\t" for c in text)
    return text if text and printable >= 0.95 * len(text) else None


def _detect_plain(text: str) -> Iterator[tuple[str, int, int, int]]:
    shared = Text(text)
    if not TRIGGER.search(shared.lowered):
        return
    for rank, detector in enumerate(DETECTORS):
        for kind, start, end in detector(shared):
            yield kind, start, end, rank


def _merge(hits: list[tuple[str, int, int, int]]) -> Iterator[tuple[str, int, int]]:
    """Overlapping hits (sorted by start) become one span, their union, named by the hit of
    the most specific detector (lowest rank: secrets before personal data)."""
    kind, start, end, rank = "", -1, -1, 0
    for hit_kind, hit_start, hit_end, hit_rank in hits:
        if hit_start < end:
            end = max(end, hit_end)
            if hit_rank < rank:
                kind, rank = hit_kind, hit_rank
            continue
        if kind:
            yield kind, start, end
        kind, start, end, rank = hit_kind, hit_start, hit_end, hit_rank
    if kind:
        yield kind, start, end


def _secret_field(name: str) -> bool:
    folded = _fold(name).text
    return bool(_SECRET_FIELD.fullmatch(folded)) and not _NOT_SECRET_FIELD.search(folded)


def _child(path: str, key: str) -> str:
    if len(key) > 64:
        key = key[:63] + "…"
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def _unique(result: dict[object, object], key: object) -> object:
    # Two keys redacted to the same marker must not overwrite each other.
    if key not in result:
        return key
    n = 2
    while f"{key}~{n}" in result:
        n += 1
    return f"{key}~{n}"


class _Folding(dict[int, str]):
    """`str.translate` table folding one character; filled on first sight, bounded."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if is_invisible(char) or unicodedata.category(char) in _STRIP_CATEGORIES:
            folded = ""
        else:
            folded = skeleton(unicodedata.normalize("NFKC", char))
        if len(self) < 65_536:
            self[code] = folded
        return folded


class _Irregular(dict[int, str]):
    """Translates to "" each character that folds to exactly one character."""

    def __missing__(self, code: int) -> str:
        kept = "" if len(_FOLD[code]) == 1 else chr(code)
        if len(self) < 65_536:
            self[code] = kept
        return kept


_FOLD = _Folding()
_IRREGULAR = _Irregular()


@dataclass(frozen=True, slots=True)
class _Folded:
    """Folded text and the map back: segment i starts at `norm[i]` in `text`, at `orig[i]`
    in the original; `span[i]` is -1 where characters map one to one, else the length of
    the original run that the whole segment came from."""

    text: str
    norm: tuple[int, ...] = ()
    orig: tuple[int, ...] = ()
    span: tuple[int, ...] = ()

    def original(self, start: int, end: int) -> tuple[int, int]:
        if not self.norm:
            return start, end
        return self._at(start)[0], self._at(end - 1)[1]

    def _at(self, index: int) -> tuple[int, int]:
        """The original span of folded character `index`."""
        lo, hi = 0, len(self.norm) - 1
        while lo < hi:  # last segment starting at or before `index`
            mid = (lo + hi + 1) // 2
            if self.norm[mid] <= index:
                lo = mid
            else:
                hi = mid - 1
        if self.span[lo] < 0:
            at = self.orig[lo] + index - self.norm[lo]
            return at, at + 1
        return self.orig[lo], self.orig[lo] + self.span[lo]


def _fold(raw: str) -> _Folded:
    if raw.isascii() and "%" not in raw and "&" not in raw and "\\" not in raw:
        return _Folded(raw)
    pieces: list[str] = []
    norm: list[int] = []
    orig: list[int] = []
    span: list[int] = []
    size = 0

    def add(text: str, at: int, length: int) -> None:
        nonlocal size
        if not text:
            return
        linear = length == -1 or (length == 1 and len(text) == 1)
        joins = (linear and span and span[-1] == -1
                 and orig[-1] + size - norm[-1] == at)
        if not joins:
            norm.append(size)
            orig.append(at)
            span.append(-1 if linear else length)
        pieces.append(text)
        size += len(text)

    done = 0
    for match in _SPECIAL.finditer(raw):
        add(raw[done:match.start()], done, -1)
        token, at = match.group(), match.start()
        if not token.isascii():
            if not token.translate(_IRREGULAR):
                add(token.translate(_FOLD), at, -1)
            else:
                for i, char in enumerate(token):
                    add(_FOLD[ord(char)], at + i, 1)
        elif token[0] == "%":
            _add_percent(token, at, add)
        else:
            add(_unescape(token), at, len(token))
        done = match.end()
    add(raw[done:], done, -1)
    return _Folded("".join(pieces), tuple(norm), tuple(orig), tuple(span))


def _add_percent(token: str, at: int, add: _Adder) -> None:
    raw = bytes.fromhex(token.replace("%", ""))
    if raw.isascii():
        for i, byte in enumerate(raw):
            add(chr(byte), at + 3 * i, 3)
        return
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        add(token, at, -1)
        return
    add(decoded.translate(_FOLD), at, len(token))


def _unescape(token: str) -> str:
    if token[0] == "\\":
        code = int(token[2:], 16)
    elif token[1] == "#":
        code = int(token[3:-1], 16) if token[2] in "xX" else int(token[2:-1])
    else:
        return html.entities.html5.get(token[1:], token).translate(_FOLD)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return token
    return chr(code).translate(_FOLD) if code > 0x7F else chr(code)

