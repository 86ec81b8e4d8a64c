"""Prompt-injection detection on untrusted content: tool results, fetched pages, files.

Three layers, in order, over each segment of the text:

1. normalisation and decoding (`_text.views`): what a model reads (NFKC,
   invisible characters removed, look-alike letters mapped to Latin for
   matching), plus text hidden in Unicode tag characters, base64, hex,
   URL-encoding and HTML entities, decoded up to `_text.MAX_DECODE_DEPTH` deep;
2. known-pattern rules (`_patterns.HIDDEN_INSTRUCTIONS` and the exfiltration
   rule of `_rules`), on every reading;
3. a learned classifier (`_classifier`: a MiniLM-embedding head mixed with
   hashed n-grams, `_lexical`), on the visible and the decoded text, when its
   optional dependencies are installed.

Segments are paragraphs, packs of short lines, or sentences of long lines, so
a long benign document with one injected paragraph yields that paragraph's
span. A scan does no I/O, never raises on any `str`, and looks at no more than
`MAX_INJECTION_SCAN_CHARS` characters (the verdict says when it stopped short).

INVARIANT: `spans` index the text exactly as the caller passed it.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from warrant.errors import WarrantError

from . import _patterns as pat
from ._findings import Severity
from ._rules import ScanContext, instruction_labels
from ._text import _BASE64_RUN, _HEX_RUN, TextView, scripts, tag_payload, views

if TYPE_CHECKING:
    from ._classifier import Classifier

_log = logging.getLogger(__name__)

#: Characters scanned; the rest of a longer text is not looked at (`truncated` says so).
MAX_INJECTION_SCAN_CHARS = 64_000
#: Segments are cut to at most this many characters (a run without spaces stays whole).
MAX_SEGMENT_CHARS = 800
DEFAULT_THRESHOLD = 0.5
_SEVERITY_SCORE = {Severity.CRITICAL: 0.99, Severity.HIGH: 0.9}
_TAG_SCORE = 0.9
_NO_CONTEXT = ScanContext(tool_name="", other_tools=frozenset())
_SECRET_LABELS = frozenset(label for label, _ in pat.SECRET_REFERENCES)
_SEVERITY = {label: severity for label, severity, _ in pat.HIDDEN_INSTRUCTIONS}
_BLOCK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_LINE = re.compile(r"\r\n|\r|\n")
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+")
_WORD = re.compile(r"[^\W\d_]{2,}")
_LETTER = re.compile(r"[^\W\d_]")
#: Fewer words and fewer letters than this is not language the classifier can judge
#: (ids, numbers, keys). Letters count too: "I\\h\\a\\v\\e b\\e\\e\\n" has no word.
_MIN_WORDS, _MIN_LETTERS = 3, 8


@dataclass(frozen=True, slots=True)
class InjectionVerdict:
    """What the detector concluded about one text, with its reasons."""

    #: True when some part of the text reads like instructions injected for the model.
    flagged: bool
    #: 0..1, the highest score of any segment, flagged or not (a classifier score
    #: under the threshold ranks the text but is no finding); `flagged` is
    #: `score >= threshold` (0.5 by default).
    score: float
    #: Human-readable reasons: `pattern: override of previous instructions`,
    #: `decoded base64 contains instructions: ...`, `classifier score 0.97`.
    findings: tuple[str, ...]
    #: [start, end) character ranges of the original text judged instruction-like.
    spans: tuple[tuple[int, int], ...]
    #: The text was longer than `MAX_INJECTION_SCAN_CHARS`; the rest was not scanned.
    truncated: bool = False


@dataclass(slots=True)
class _Judged:
    start: int
    end: int
    score: float
    findings: list[str]


class InjectionDetector:
    """Scans untrusted text for prompt injection. Compile once, scan many; no I/O in `scan`.

    `threshold` is the score (0..1) at which a verdict is flagged; the default
    0.5 is where the classifier's false-positive rate was 1% on validation data.
    `use_classifier=None` runs the learned layer when its dependencies are
    installed (`agent-warrant[detector]`), `True` requires it, `False` runs
    normalisation, decoding and patterns only. Installed but unreadable model
    files raise `WarrantError` either way (a damaged install is not an absent one).
    """

    def __init__(self, *, threshold: float | None = None,
                 use_classifier: bool | None = None) -> None:
        self.threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be within 0..1, not `{threshold}`")
        self._classifier: Classifier | None = None
        if use_classifier is not False:
            try:
                from ._classifier import load_classifier  # noqa: PLC0415 - optional extra

                self._classifier = load_classifier()
            except ImportError as error:
                if use_classifier:
                    raise ModuleNotFoundError(
                        "the injection classifier needs `pip install agent-warrant[detector]`"
                        f" ({error})") from error
                _log.info("injection classifier not installed, patterns only: %s", error)
            except Exception as error:  # any other failure to load: a damaged install
                # Installed but unreadable: a damaged install, not an absent extra. Running
                # on with patterns only would quietly lose most of the detection: refuse.
                raise WarrantError(
                    f"the injection classifier is installed but its model files cannot be "
                    f"read: {error}",
                    hint="reinstall agent-warrant (and its `detector` extra), or set "
                         "`flow_injection_detector = \"patterns\"` to run without the "
                         "classifier on purpose") from error

    @property
    def uses_classifier(self) -> bool:
        """Whether the learned layer runs (False: normalisation, decoding, patterns only)."""
        return self._classifier is not None

    def scan(self, text: str) -> InjectionVerdict:
        """Judge `text`. Never raises; an internal error flags the text (errors deny)."""
        if not isinstance(text, str):
            text = str(text)
        truncated = len(text) > MAX_INJECTION_SCAN_CHARS
        try:
            judged = self._judge(text[:MAX_INJECTION_SCAN_CHARS])
        except Exception as error:
            _log.warning("injection scan failed, treating the text as injected: %r", error)
            return InjectionVerdict(True, 1.0, (f"scan failed ({type(error).__name__}); "
                                                "treated as injected",), ((0, len(text)),),
                                    truncated)
        hits = [j for j in judged if j.score >= self.threshold]
        findings = list(dict.fromkeys(f for j in hits for f in j.findings))
        if truncated:
            findings.append(f"only the first {MAX_INJECTION_SCAN_CHARS} characters were "
                            f"scanned (of {len(text)})")
        return InjectionVerdict(
            flagged=bool(hits),
            # Rounded down: an unflagged verdict never shows a score at the threshold.
            score=math.floor(max((j.score for j in judged), default=0.0) * 1e4) / 1e4,
            findings=tuple(findings),
            spans=tuple((j.start, j.end) for j in hits),
            truncated=truncated,
        )

    def _judge(self, text: str) -> list[_Judged]:
        judged: list[_Judged] = []
        pending: list[tuple[_Judged, str, str]] = []  # (segment, text to classify, what it is)
        for start, end in segments(text):
            raw = text[start:end]
            readings = views("text", "text", raw)
            segment = _Judged(start, end, 0.0, [])
            _rule_findings(segment, readings, raw)
            judged.append(segment)
            if self._classifier is not None:
                pending += [(segment, words, r.encoding) for r in readings
                            if (words := _classifier_text(r))]
        if self._classifier is not None and pending:
            scores = self._classifier.scores([t for _, t, _ in pending])
            for (segment, _, encoding), raw_score in zip(pending, scores, strict=True):
                score = self._calibrate(raw_score)
                # A score under the threshold still ranks the text (the verdict's score),
                # but is not a finding.
                segment.score = max(segment.score, score)
                if score < self.threshold:
                    continue
                where = f"decoded {encoding} text: " if encoding else ""
                segment.findings.append(f"{where}classifier score {score:.2f}")
        return judged

    def _calibrate(self, raw: float) -> float:
        """Map the classifier's score so its 1%-FPR threshold lands on 0.5."""
        assert self._classifier is not None
        cut = min(max(self._classifier.threshold, 1e-6), 1 - 1e-6)
        if raw < cut:
            return 0.5 * raw / cut
        return 0.5 + 0.5 * (raw - cut) / (1 - cut)


def _rule_findings(segment: _Judged, readings: list[TextView], raw: str) -> None:
    """Patterns over every reading of one segment; findings and score into `segment`."""
    plain = readings[0]
    seen = _labels(plain.scan)
    for label in sorted(seen):
        segment.findings.append(f"pattern: {label}")
        segment.score = max(segment.score, _score(label))
    if (hidden := tag_payload(raw)) and any(c.isalnum() for c in hidden):
        segment.findings.append("hidden text in Unicode tag characters")
        segment.score = max(segment.score, _TAG_SCORE)
    for reading in readings[1:]:
        added = _labels(reading.scan) - _labels(reading.parent_scan)
        if added:
            segment.findings.append(f"decoded {reading.encoding} contains instructions: "
                                    f"{', '.join(sorted(added))}")
            segment.score = max(segment.score, *(_score(label) for label in added))


def _labels(text: str) -> set[str]:
    return instruction_labels(text, _NO_CONTEXT) - _SECRET_LABELS if text else set()


def _score(label: str) -> float:
    severity = _SEVERITY.get(label, Severity.CRITICAL)  # exfiltration labels are critical
    return _SEVERITY_SCORE.get(severity, 0.0)


def _classifier_text(reading: TextView) -> str:
    """The words of a reading for the classifier; "" when it has too few to judge.

    Long base64 and hex runs (ids, hashes, tokens) are left out: the classifier
    has only seen language, and what they encode is judged as its own reading.
    """
    # Mixed scripts are where look-alike letters hide: classify the Latin skeleton then.
    text = reading.scan if len(scripts(reading.display)) > 1 else reading.display
    text = _HEX_RUN.sub(" ", _BASE64_RUN.sub(" ", text))
    start = text[: 4 * MAX_SEGMENT_CHARS]
    if len(_WORD.findall(start)) < _MIN_WORDS and len(_LETTER.findall(start)) < _MIN_LETTERS:
        return ""
    # Lone surrogates cannot cross into the tokenizer; they carry no words anyway.
    return text.encode("utf-8", "replace").decode("utf-8")


def segments(text: str) -> list[tuple[int, int]]:
    """[start, end) of each paragraph, pack of short lines, or piece of a long line.

    Leading and trailing whitespace is not part of a segment; every segment is
    at most `MAX_SEGMENT_CHARS` long unless it is one run without spaces.
    """
    out: list[tuple[int, int]] = []
    for start, end in _split(text, 0, len(text), _BLOCK):
        if end - start <= MAX_SEGMENT_CHARS:
            out.append((start, end))
            continue
        lines = [piece for s, e in _split(text, start, end, _LINE)
                 for piece in _cut(text, s, e)]
        out.extend(_pack(lines))
    return [(s, e) for s, e in out if text[s:e].strip()]


def _split(text: str, start: int, end: int, sep: re.Pattern[str]) -> list[tuple[int, int]]:
    pieces = []
    at = start
    for match in sep.finditer(text, start, end):
        pieces.append(_strip(text, at, match.start()))
        at = match.end()
    pieces.append(_strip(text, at, end))
    return [(s, e) for s, e in pieces if s < e]


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cut(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A long line cut at sentence ends, then at spaces, into pieces of bounded length."""
    if end - start <= MAX_SEGMENT_CHARS:
        return [(start, end)]
    pieces: list[tuple[int, int]] = []
    for sentence in _split(text, start, end, _SENTENCE):
        s, e = sentence
        while e - s > MAX_SEGMENT_CHARS:
            space = text.rfind(" ", s + MAX_SEGMENT_CHARS // 2, s + MAX_SEGMENT_CHARS)
            cut = space if space > s else text.find(" ", s + MAX_SEGMENT_CHARS, e)
            if cut < 0:
                break
            pieces.append(_strip(text, s, cut))
            s, e = _strip(text, cut, e)
        pieces.append((s, e))
    return pieces


def _pack(pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join consecutive pieces into segments of up to `MAX_SEGMENT_CHARS`."""
    out: list[tuple[int, int]] = []
    for start, end in pieces:
        if out and end - out[-1][0] <= MAX_SEGMENT_CHARS:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


@functools.cache
def _default_detector() -> InjectionDetector:
    return InjectionDetector()


def detect_injection(text: str) -> InjectionVerdict:
    """Scan `text` with the default detector (built on first use, then shared)."""
    return _default_detector().scan(text)
