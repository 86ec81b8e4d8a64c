"""Pattern tables for the poisoning rules: what hidden instructions and secrets look like.

Patterns are matched case-insensitively against a view's `scan` text (NFKC,
invisible characters removed, look-alike letters mapped to Latin). Each is
written to be linear-time (bounded gaps, no nested quantifiers) because the
text is attacker-controlled.

False positives quarantine real tools, so generic words that legitimate tools
use ("password", "token", "API key") are not findings on their own: they only
count as the *object* of an instruction to send them to a remote address.
"""

from __future__ import annotations

import re

from ._findings import Severity

_I = re.IGNORECASE | re.MULTILINE


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, _I)


#: (label, severity, pattern) of instructions aimed at the model rather than describing the tool.
HIDDEN_INSTRUCTIONS: tuple[tuple[str, Severity, re.Pattern[str]], ...] = (
    ("override of previous instructions", Severity.CRITICAL, _p(
        r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+)?(?:of\s+)?"
        r"(?:the\s+|your\s+|my\s+)?(?:previous|prior|above|earlier|preceding|former|original"
        r"|system)\s+(?:instructions?|prompts?|rules|directions|directives|guidelines"
        r"|messages|context)")),
    ("concealment from the user", Severity.CRITICAL, _p(
        r"\b(?:do\s+not|don'?t|never|must\s+not)\s+(?:tell|inform|notify|alert|warn)\s+"
        r"(?:the\s+)?users?\b"
        r"|\b(?:do\s+not|don'?t|never|must\s+not)\s+(?:mention|reveal|disclose|say|show)\s+"
        r"(?:(?:this|that|it|anything|these)\b|(?:[\w'-]+\s+){0,4}?to\s+the\s+user\b)"
        r"|\bwithout\s+(?:telling|informing|notifying|alerting)\s+the\s+user\b"
        r"|\b(?:hide|conceal)\b.{0,30}?\bfrom\s+the\s+user\b"
        r"|\bthe\s+user\s+(?:must|should|will)\s+not\s+(?:know|see|be\s+told|notice)\b")),
    ("instruction tag", Severity.HIGH, _p(
        r"<\s*/?\s*(?:important|system|instructions?|secret|hidden|admin|override)\s*>")),
    ("role marker", Severity.HIGH, _p(
        r"<\|(?:im_start|im_end|system|assistant|user|endoftext)\|>|\[/?INST\]"
        r"|<<\s*/?SYS\s*>>|^[ \t]*#{0,3}[ \t]*(?:system|assistant)[ \t]*:")),
    ("pre-use instruction", Severity.HIGH, _p(
        r"\bbefore\s+(?:using|calling|invoking|running|executing)\s+(?:this|the|any)\s+tool"
        r"\s*[,:]?\s*(?:you\s+)?(?:must\s+|should\s+|need\s+to\s+|have\s+to\s+|always\s+)?"
        r"(?:first\s+)?(?:read|send|call|pass|provide|fetch|open|access|include|upload|cat"
        r"|load)\b")),
    ("urgency marker", Severity.HIGH, _p(
        r"\bthis\s+is\s+(?:(?:very|extremely|really|super|critically|absolutely|vitally)"
        r"[\s,]+){1,8}important\b")),
    ("confirmation bypass", Severity.HIGH, _p(
        r"\b(?:do\s+not|don'?t|never)\s+ask\s+(?:the\s+user\s+)?(?:for\s+)?"
        r"(?:confirmation|permission|approval)")),
    ("system prompt access", Severity.HIGH, _p(
        r"\b(?:reveal|print|output|repeat|leak|ignore|override|disregard)\s+(?:your|the)\s+"
        r"system\s+prompt\b")),
    ("identity override", Severity.HIGH, _p(
        r"\byou\s+are\s+now\s+(?:a|an|in)\b|\bnew\s+instructions?\s*:"
        r"|\bfrom\s+now\s+on,?\s+you\s+(?:must|will|should)\b")),
)

#: (label, pattern) of files and names that hold secrets: a tool description has no reason
#: to name them.
SECRET_REFERENCES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ssh directory", _p(r"(?<![\w-])\.ssh\b")),
    ("ssh private key", _p(r"\bid_(?:rsa|dsa|ecdsa|ed25519)\b")),
    ("MCP client configuration", _p(
        r"\bmcp\.json\b|(?<![\w-])\.cursor[/\\]|~[/\\]\.cursor\b|claude_desktop_config")),
    ("dotenv file", _p(
        r"(?<![\w.$-])\.env(?!\.(?:example|sample|template|dist)\b)(?:\.[a-z]+)?\b(?![-(])")),
    ("AWS credentials", _p(
        r"(?<![\w-])\.aws[/\\]|~[/\\]\.aws\b"
        r"|\baws_(?:secret_access_key|access_key_id|session_token)\b")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("credential file", _p(
        r"(?<![\w-])\.(?:netrc|npmrc|pypirc|git-credentials|pgpass|gnupg|docker[/\\]config"
        r"\.json|kube[/\\]config)\b|/etc/shadow\b|\.config[/\\]gcloud\b")),
    ("private key block", _p(r"-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----")),
    ("shell history", _p(r"(?<![\w-])\.(?:bash|zsh)_history\b")),
)

#: What only the model holds (its context): sent anywhere, even to a parameter, it leaks.
CONTEXT_DATA = _p(
    r"\b(?:conversation(?:\s+history)?|chat\s+history|(?:previous|prior|earlier)\s+messages"
    r"|system\s+prompt|environment\s+variables|env\s+vars?)\b"
)
#: Credentials and bulk user data. Legitimate tools ask for "the API key as `api_key`" or
#: "all emails in the `body`", so these count only when sent to a remote address (URL,
#: e-mail, another server's tool).
REMOTE_SENSITIVE = _p(
    r"\b(?:api[\s_-]?keys?|secrets?|passwords?|passphrases?|credentials?|(?:access|auth|"
    r"bearer|session|refresh)[\s_-]?tokens?|private[\s_-]?keys?|ssh[\s_-]?keys?|cookies?"
    r"|all\s+(?:the\s+|of\s+the\s+)?(?:emails?|messages|files|data|documents|contacts))\b"
)
#: Verbs that move data somewhere.
EXFIL_VERB = _p(
    r"\b(?:send|sends|sending|forward|post|upload|transmit|exfiltrate|leak|e-?mail|pass"
    r"|include|attach|append|copy|provide|submit|put|embed|bcc|cc|add)\b"
)
#: Where data would go: a URL, an e-mail address, a named parameter or field.
SINK = _p(
    r"\b(?:https?|ftp|wss?)://|[\w.+-]{1,64}@[\w-]{1,63}\.[\w.-]{2,}"
    r"|\b(?:as|in|into|to|via|inside|within)\s+(?:the\s+)?(?:[`'\"][\w.-]{1,64}[`'\"]"
    r"|[\w-]{1,64}\s+(?:parameter|argument|param|field))"
)
#: A network destination (for "always forward/bcc ... to X" without a named object).
REMOTE_SINK = _p(r"\b(?:https?|ftp|wss?)://|[\w.+-]{1,64}@[\w-]{1,63}\.[\w.-]{2,}")
COVERT_SEND = _p(
    r"\b(?:always|also|secretly|silently|quietly|additionally|automatically)\b.{0,60}?"
    r"\b(?:send|forward|cc|bcc|copy|post|upload|report)\b"
)
#: Words that turn a mention of another tool into an instruction about it.
DIRECTIVE = _p(
    r"\b(?:must|should|shall|always|never|instead|do\s+not|don'?t|whenever|every\s+time"
    r"|side\s+effect|redirect|override|replace|required|has\s+to|have\s+to|needs?\s+to)\b"
)
#: Sentence boundaries: end punctuation before whitespace, or a blank line.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n[ \t]*\n")
