"""Normalising untrusted text before rules see it: Unicode, invisible characters, decodings.

A field of a tool definition becomes one or more `TextView`s. The first view is
the text as a model reads it (NFKC, invisible characters removed, Cyrillic and
Greek look-alikes mapped to Latin for matching). Further views hold text hidden
inside it: ASCII smuggled in Unicode tag characters, and long base64 or hex
runs, URL-encoding or HTML entities, decoded. Rules run over every view.

INVARIANT: `display` and `scan` of a view have the same length, so a match in
`scan` can be shown from `display` at the same offsets.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass

#: Zero-width characters, word joiners, the BOM, bidi controls and similar.
INVISIBLE = frozenset(
    [*range(0x200B, 0x2010), *range(0x2060, 0x2065), 0xFEFF, *range(0x202A, 0x202F),
     *range(0x2066, 0x206A), 0x00AD, 0x034F, 0x180E]
)
TAG_FIRST, TAG_LAST = 0xE0000, 0xE007F
_ZWJ = 0x200D
MAX_EVIDENCE = 120
#: Longest text a rule looks at; longer fields are reported as oversized anyway.
MAX_SCAN_CHARS = 100_000
MAX_DECODE_DEPTH = 2

# Look-alikes a reader takes for Latin letters (a subset of Unicode's confusables).
_CONFUSABLE = str.maketrans(
    # Cyrillic and Greek, escaped so this file holds no look-alikes itself.
    "\u0430\u0432\u0435\u0455\u0456\u0458\u043a\u043c"
    "\u043d\u043e\u0440\u0441\u0442\u0443\u0445\u0501"
    "\u04cf\u051b\u051d\u0261\u0410\u0412\u0415\u0405"
    "\u0406\u0408\u041a\u041c\u041d\u041e\u0420\u0421"
    "\u0422\u0423\u0425\u03b1\u03bf\u03c1\u03bd\u03b9"
    "\u03ba\u03c4\u03c5\u03c7\u0391\u0392\u0395\u0396"
    "\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4"
    "\u03a5\u03a7",
    "abesijkm"
    "hopctyxd"
    "lqwgABES"
    "IJKMHOPC"
    "TYXaopvi"
    "ktuxABEZ"
    "HIKMNOPT"
    "YX"
)
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{24,}={0,2}")
_HEX_RUN = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){16,}(?![0-9A-Fa-f])"
                      r"|(?:\\x[0-9A-Fa-f]{2}){8,}")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


@dataclass(frozen=True, slots=True)
class TextView:
    """One way of reading one field: what a model sees, or what was hidden in it."""

    #: Where the field is (`description`, `inputSchema.properties.path.description`).
    location: str
    #: `name`, `parameter-name`, `description` or `text` (any other string).
    kind: str
    #: The field exactly as the server sent it.
    raw: str
    #: NFKC, invisible characters removed: what a model reads.
    display: str
    #: `display` with look-alike letters mapped to Latin; what rules match against.
    scan: str
    #: How this view was decoded from its parent (`base64`, `unicode-tags`...); "" if plain.
    encoding: str = ""
    #: The parent view's `scan`, for decoded views (to tell what the decoding added).
    parent_scan: str = ""

    @property
    def where(self) -> str:
        return f"{self.location} [{self.encoding}]" if self.encoding else self.location


def is_invisible(char: str) -> bool:
    code = ord(char)
    return code in INVISIBLE or TAG_FIRST <= code <= TAG_LAST


def invisible_positions(text: str) -> list[int]:
    """Offsets of invisible characters, except a ZWJ joining two emoji (legitimate)."""
    found = []
    for i, char in enumerate(text):
        if not is_invisible(char):
            continue
        if ord(char) == _ZWJ and 0 < i < len(text) - 1 and _emoji(text[i - 1]) and _emoji(
            text[i + 1]
        ):
            continue
        found.append(i)
    return found


def _emoji(char: str) -> bool:
    return unicodedata.category(char) == "So" or 0xFE00 <= ord(char) <= 0xFE0F


def tag_payload(text: str) -> str:
    """The ASCII smuggled in Unicode tag characters (U+E0020..U+E007E map to ASCII)."""
    return "".join(chr(ord(c) - TAG_FIRST) for c in text if 0xE0020 <= ord(c) <= 0xE007E)


def escape(text: str, *, ascii_only: bool = False) -> str:
    """Printable, unambiguous form: invisible, control and look-alike characters escaped.

    `\\u200b` for a zero-width space, `\\u0430` for a Cyrillic `a` posing as Latin;
    with `ascii_only`, every non-ASCII character (for identifiers).
    """
    out = []
    for char in text:
        code = ord(char)
        if char == "\n":
            out.append("\\n")
        elif (is_invisible(char) or not char.isprintable() or code in _CONFUSABLE
              or (ascii_only and code > 0x7F)):
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def excerpt(text: str, start: int = 0, end: int | None = None, *, ascii_only: bool = False
            ) -> str:
    """A short printable excerpt of `text[start:end]` with a little context (<= 120 chars)."""
    end = len(text) if end is None else end
    lo = max(0, start - 20)
    # Bounded slice: escaping a 100,000-character field to show 120 characters is waste.
    hi = min(max(end, start + 1) + 20, lo + 8 * MAX_EVIDENCE)
    piece = " ".join(escape(text[lo:hi], ascii_only=ascii_only).split())
    if len(piece) > MAX_EVIDENCE:
        piece = piece[: MAX_EVIDENCE - 1] + "…"
    return piece


def skeleton(text: str) -> str:
    """Map Cyrillic and Greek look-alikes to the Latin letters they imitate."""
    return text.translate(_CONFUSABLE)


def _script(char: str) -> str:
    name = unicodedata.name(char, "")
    first = name.split(" ", 1)[0]
    if first in {"CJK", "HIRAGANA", "KATAKANA", "HANGUL"}:
        return "CJK"
    return first


def scripts(text: str) -> frozenset[str]:
    """The scripts of the letters in `text` (Han, kana and Hangul count as one)."""
    return frozenset(_script(c) for c in text if c.isalpha())


def normalise(text: str) -> str:
    """NFKC with invisible characters removed (what a model effectively reads)."""
    visible = "".join(c for c in text[:MAX_SCAN_CHARS] if not is_invisible(c))
    return unicodedata.normalize("NFKC", visible)


def _decode_base64(run: str) -> str | None:
    data = run.rstrip("=")
    data += "=" * (-len(data) % 4)
    try:
        raw = base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return _printable_text(raw)


def _decode_hex(run: str) -> str | None:
    try:
        raw = bytes.fromhex(run.replace("\\x", ""))
    except ValueError:
        return None
    return _printable_text(raw)


def _printable_text(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(c.isprintable() or c in "\n\t" for c in text)
    if not text or printable < 0.95 * len(text) or not any(c.isalpha() for c in text):
        return None
    return text


def decodings(text: str) -> list[tuple[str, str]]:
    """(encoding, decoded text) for each encoding visibly embedded in `text`."""
    found: list[tuple[str, str]] = []
    runs = [d for d in (_decode_base64(m.group()) for m in _BASE64_RUN.finditer(text)) if d]
    if runs:
        found.append(("base64", "\n".join(runs)))
    runs = [d for d in (_decode_hex(m.group()) for m in _HEX_RUN.finditer(text)) if d]
    if runs:
        found.append(("hex", "\n".join(runs)))
    if _PERCENT.search(text) and (unquoted := urllib.parse.unquote(text)) != text:
        found.append(("url", unquoted))
    if _ENTITY.search(text) and (unescaped := html.unescape(text)) != text:
        found.append(("html", unescaped))
    return found


def views(location: str, kind: str, raw: str) -> list[TextView]:
    """Every reading of one field: the visible text, tag-smuggled text, decoded text."""
    display = normalise(raw)
    first = TextView(location, kind, raw, display, skeleton(display))
    result = [first]
    if hidden := tag_payload(raw[:MAX_SCAN_CHARS]):
        shown = normalise(hidden)
        result.append(TextView(location, kind, raw, shown, skeleton(shown), "unicode-tags",
                               first.scan))
    pending = [(v, 1) for v in result]
    while pending:
        parent, depth = pending.pop(0)
        for encoding, decoded in decodings(parent.display):
            shown = normalise(decoded)
            name = f"{parent.encoding}+{encoding}" if parent.encoding else encoding
            child = TextView(location, kind, raw, shown, skeleton(shown), name, parent.scan)
            result.append(child)
            if depth < MAX_DECODE_DEPTH:
                pending.append((child, depth + 1))
    return result
