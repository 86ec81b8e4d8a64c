"""Mint, verify and attenuate warrants as Biscuit tokens.

The authority block is signed with the trust domain's Ed25519 root key. Each
attenuation is appended offline with Biscuit's per-block ephemeral key, so any
holder can narrow the warrant it holds without the domain key. A delegation
(an attenuation that names a new holder) is appended as a Biscuit third-party
block signed with the delegating agent's own key: the signature is bound to the
token it extends, so it cannot be lifted onto another warrant, and the
enforcement pipeline checks it against the delegator's registered key.

INVARIANT: `verify_warrant` raises `InvalidWarrant` for every problem with the
token (malformed, tampered, wrong key or domain, expired, non-canonical block,
widening, unknown version) and nothing else escapes for any input string.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import biscuit_auth as ba
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from warrant.errors import InvalidWarrant, WarrantError, WarrantSpecError
from warrant.types import SpiffeId
from warrant.warrants._datalog import DERIVED_CACHES, Header, parse_block, render_block
from warrant.warrants._model import ToolGrant, Warrant, WarrantLayer, build_warrant
from warrant.warrants._names import MAX_TEXT, TASK_ID, check_int, check_name, check_text

MAX_DEPTH = 8
MAX_TOKEN_CHARS = 64 * 1024


@lru_cache(maxsize=16)
def _biscuit_public(raw: bytes) -> ba.PublicKey:
    # The bundled stub predates 0.4.0, whose from_bytes takes the algorithm.
    return ba.PublicKey.from_bytes(raw, ba.Algorithm.Ed25519)  # type: ignore[call-arg, attr-defined]


def _aware(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise WarrantSpecError(f"{name} must be a timezone-aware datetime, got `{value!r}`")
    return value


def _whole_seconds(value: datetime) -> datetime:
    """Biscuit dates have second precision; expiry is rounded down, never up."""
    return datetime.fromtimestamp(math.floor(value.timestamp()), UTC)


#: The usual shape of a principal, `spiffe://DOMAIN/SEGMENT/...` with no segment
#: starting with a dot: a strict subset of what `SpiffeId.parse` and `check_text`
#: accept, checked in one match. Anything else takes the full check.
_PLAIN_SPIFFE = re.compile(r"spiffe://([a-z0-9](?:[a-z0-9.\-]{0,253}[a-z0-9])?)"
                           r"(?:/[A-Za-z0-9_\-][A-Za-z0-9._\-]{0,127})+")


def _principal(kind: str, value: str, domain: str) -> str:
    if type(value) is str and len(value) <= MAX_TEXT:
        plain = _PLAIN_SPIFFE.fullmatch(value)
        if plain is not None and plain.group(1) == domain:
            return value
    try:
        spiffe = SpiffeId.parse(check_text(kind, value))
    except ValueError as exc:
        raise WarrantSpecError(f"{kind} `{value}` is not a SPIFFE ID: {exc}") from None
    if spiffe.domain != domain:
        raise WarrantSpecError(f"{kind} `{value}` is not in trust domain `{domain}`")
    return str(spiffe)


def _check_domain(domain: object) -> None:
    try:
        SpiffeId(domain=domain, path="agent")  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise WarrantSpecError(f"invalid trust domain name `{domain}`") from None


def _check_tools(tools: Sequence[ToolGrant]) -> tuple[ToolGrant, ...]:
    grants = tuple(tools)
    if not grants or not all(isinstance(t, ToolGrant) for t in grants):
        raise WarrantSpecError("a warrant must grant at least one tool")
    if len({t.name for t in grants}) != len(grants):
        raise WarrantSpecError("a tool may be granted only once per warrant layer")
    return tuple(sorted(grants, key=lambda t: t.name))


def mint_warrant(
    root_private_key: Ed25519PrivateKey,
    *,
    domain: str,
    task_id: str,
    agent: str,
    tools: Sequence[ToolGrant],
    on_behalf_of: str | None,
    total_budget: int | None,
    expires_at: datetime,
    max_depth: int = 0,
    now: datetime,
) -> str:
    """Sign a new warrant for one task with the trust domain's root key."""
    _check_domain(domain)
    check_name("task id", task_id, TASK_ID)
    if on_behalf_of is not None:
        check_text("on_behalf_of", on_behalf_of, allow_empty=False)
    if total_budget is not None:
        check_int("the total budget", total_budget, minimum=0)
    check_int("max_depth", max_depth, minimum=0)
    if max_depth > MAX_DEPTH:
        raise WarrantSpecError(f"max_depth `{max_depth}` is above the limit of {MAX_DEPTH}")
    expiry = _whole_seconds(_aware("expires_at", expires_at))
    if expiry <= _aware("now", now):
        raise WarrantSpecError(f"expires_at `{expires_at.isoformat()}` is not in the future")
    layer = WarrantLayer(
        tools=_check_tools(tools),
        expires_at=expiry,
        max_depth=max_depth,
        total_budget=total_budget,
        holder=_principal("agent", agent, domain),
    )
    source = render_block(layer, Header(task_id, domain, on_behalf_of))
    raw = root_private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    # The bundled stub predates 0.4.0, whose from_bytes takes the algorithm.
    key = ba.PrivateKey.from_bytes(raw, ba.Algorithm.Ed25519)  # type: ignore[call-arg, attr-defined]
    token: str = ba.BiscuitBuilder(source).build(key).to_base64()
    _self_check(token, root_private_key.public_key(), domain, now)
    return token


def _self_check(token: str, public: Ed25519PublicKey, domain: str, now: datetime) -> None:
    # A token we cannot read back is a bug, never something to hand out.
    try:
        verify_warrant(token, public, domain=domain, now=now)
    except InvalidWarrant as exc:  # pragma: no cover - guards against printer drift
        raise WarrantSpecError(f"the warrant could not be read back: {exc.detail}") from None


def _decode(token: object) -> bytes:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise InvalidWarrant("token is empty, too long or not text")
    try:
        data = token.encode("ascii")
        return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise InvalidWarrant("token is not base64url") from None


def _verify(
    token: str, root_public_key: Ed25519PublicKey, domain: str, now: datetime
) -> tuple[Warrant, ba.Biscuit]:
    raw_key = root_public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    # Only a plain str is looked up: the cache hashes and compares its key.
    read = _read_cached if type(token) is str else _read
    warrant, biscuit = read(token, raw_key)
    _check_header(Header(warrant.task_id, warrant.domain, warrant.on_behalf_of),
                  warrant.layers[0], domain)
    if math.floor(now.timestamp()) > math.floor(warrant.expires_at.timestamp()):
        raise InvalidWarrant(f"warrant expired at {warrant.expires_at.isoformat()}")
    return warrant, biscuit


def _read(token: str, raw_key: bytes) -> tuple[Warrant, ba.Biscuit]:
    """Everything about a token that depends on nothing but its text and the root key:
    every signature, every block's canonical form, every layer narrowing the last."""
    data = _decode(token)
    public = _biscuit_public(raw_key)
    try:
        biscuit = ba.Biscuit.from_bytes(data, public)
    except Exception as exc:  # biscuit raises several unrelated types for bad input
        raise InvalidWarrant(f"token signature or format invalid: {exc}") from None
    count = biscuit.block_count()
    if count > MAX_DEPTH + 1:
        raise InvalidWarrant(f"token has {count} blocks, more than any warrant allows")
    layers: list[WarrantLayer] = []
    header: Header | None = None
    bounds: _Bounds | None = None
    for index in range(count):
        signer = _external_key(biscuit, index)
        try:
            layer, block_header = parse_block(biscuit.block_source(index), authority=index == 0)
        except (ValueError, WarrantError) as exc:
            raise InvalidWarrant(f"block {index}: {exc}") from None
        if signer is not None:
            # Built directly: `dataclasses.replace` costs as much as parsing a small block.
            layer = WarrantLayer(tools=layer.tools, expires_at=layer.expires_at,
                                 max_depth=layer.max_depth, total_budget=layer.total_budget,
                                 holder=layer.holder, signed_by=signer)
        if bounds is None:
            header, bounds = block_header, _Bounds.of(layer)
        else:
            _check_narrows(index, bounds, layer)
            bounds.narrow(layer)
        layers.append(layer)
    assert header is not None  # block 0 is parsed as the authority block
    revocation_ids = tuple(biscuit.revocation_ids)
    warrant = build_warrant(
        task_id=header.task_id,
        domain=header.domain,
        agent=str(layers[0].holder),
        on_behalf_of=header.on_behalf_of,
        layers=tuple(layers),
        revocation_ids=revocation_ids,
        # From the signatures, not the bytes: the protobuf envelope is malleable
        # (unknown fields, defaulted enums) without changing what was signed.
        token_id=hashlib.sha256(":".join(revocation_ids).encode()).hexdigest(),
    )
    return warrant, biscuit


#: Verified tokens by exact text and root key. `_read` is a pure function of the
#: two, so a token verified once (say by `receive`, then by the pipeline on the
#: recipient's first call, or by `seal` and then `attenuate_warrant`) is not
#: verified again; the domain and the expiry are checked on every call. Nothing
#: about agents (keys, retirement, revocation) is decided here, so nothing stale
#: can be served: the pipeline looks those up on every call. A token that fails
#: raises and is not cached. Bounded: at most 256 tokens of at most 64 KiB.
_read_cached = lru_cache(maxsize=256)(_read)
DERIVED_CACHES.append(_read_cached.cache_clear)


def _external_key(biscuit: ba.Biscuit, index: int) -> str | None:
    """The hex Ed25519 key that signed block `index` as a third-party block, if any."""
    external = biscuit.block_external_key(index)
    if external is None:
        return None
    if index == 0:
        raise InvalidWarrant("the authority block is a third-party block")
    algorithm, _, hex_key = str(external).partition("/")
    if algorithm != "ed25519" or len(hex_key) != 64:
        raise InvalidWarrant(f"block {index} is signed with an unsupported key `{algorithm}`")
    return hex_key.lower()


def _check_header(header: Header, authority: WarrantLayer, domain: str) -> None:
    if header.domain != domain:
        raise InvalidWarrant(f"warrant is for domain `{header.domain}`, not `{domain}`")
    try:
        check_name("task id", header.task_id, TASK_ID)
        _principal("agent", str(authority.holder), domain)
    except WarrantSpecError as exc:
        raise InvalidWarrant(f"authority block: {exc.message}") from None
    if authority.max_depth > MAX_DEPTH:
        raise InvalidWarrant("authority block: max_depth above the limit")


@dataclass(slots=True)
class _Bounds:
    """What the layers read so far allow together, kept up to date layer by layer
    so that checking block n costs the size of block n, not of every block above it."""

    tools: set[str]
    expires_at: datetime
    max_depth: int
    total_budgets: list[int]
    tool_budgets: dict[str, list[int]]
    domain: str

    @classmethod
    def of(cls, authority: WarrantLayer) -> _Bounds:
        bounds = cls({t.name for t in authority.tools}, authority.expires_at,
                     authority.max_depth, [], {},
                     str(authority.holder).removeprefix("spiffe://").split("/")[0])
        bounds._add_budgets(authority)
        return bounds

    def narrow(self, layer: WarrantLayer) -> None:
        self.tools.intersection_update(t.name for t in layer.tools)
        self.expires_at = min(self.expires_at, layer.expires_at)
        self.max_depth = layer.max_depth
        self._add_budgets(layer)

    def _add_budgets(self, layer: WarrantLayer) -> None:
        if layer.total_budget is not None:
            self.total_budgets.append(layer.total_budget)
        firsts: dict[str, int | None] = {}
        for grant in layer.tools:  # a layer's budget for a tool is its first grant's (`tool()`)
            firsts.setdefault(grant.name, grant.budget)
        for name, budget in firsts.items():
            if budget is not None:
                self.tool_budgets.setdefault(name, []).append(budget)


def _check_narrows(index: int, bounds: _Bounds, layer: WarrantLayer) -> None:
    """Refuse an attenuation block that claims more than the layers before it."""
    problems = [
        f"tool `{t.name}` is not granted above" for t in layer.tools if t.name not in bounds.tools
    ]
    if layer.max_depth >= bounds.max_depth:
        problems.append(f"depth {layer.max_depth} does not decrease from {bounds.max_depth}")
    if layer.expires_at > bounds.expires_at:
        problems.append("expiry is later than the warrant's")
    if not _within(layer.total_budget, bounds.total_budgets):
        problems.append("total budget is larger than the warrant's")
    for grant in layer.tools:
        if not _within(grant.budget, bounds.tool_budgets.get(grant.name, [])):
            problems.append(f"budget of `{grant.name}` is larger than the warrant's")
    if layer.holder is not None:
        try:
            _principal("holder", layer.holder, bounds.domain)
        except WarrantSpecError as exc:
            problems.append(exc.message)
    if problems:
        raise InvalidWarrant(f"block {index} widens the warrant: {'; '.join(problems)}")


def _within(budget: int | None, limits: list[int]) -> bool:
    return not limits or (budget is not None and budget <= min(limits))


def verify_warrant(
    token: str, root_public_key: Ed25519PublicKey, *, domain: str, now: datetime
) -> Warrant:
    """Verify a warrant offline and return it as a frozen `Warrant`; raises `InvalidWarrant`."""
    return _verify(token, root_public_key, domain, _aware("now", now))[0]


def attenuate_warrant(
    token: str,
    root_public_key: Ed25519PublicKey,
    *,
    domain: str,
    now: datetime,
    tools: Sequence[ToolGrant] | None = None,
    expires_at: datetime | None = None,
    holder: str | None = None,
    total_budget: int | None = None,
    signer: Ed25519PrivateKey | None = None,
) -> str:
    """Append a block that narrows the warrant (and names the sub-agent `holder`).

    Unset options keep the current effective value. Anything that would widen
    — a tool not currently granted, a larger budget, a later expiry, delegating
    at depth 0 — raises `WarrantSpecError`; nothing is clamped silently.

    `signer` is the current holder's own key: the block is then a third-party
    block signed by it, which is what makes a delegation verifiable (the
    pipeline refuses a hop to a new holder that its delegator did not sign).
    """
    warrant, biscuit = _verify(token, root_public_key, domain, _aware("now", now))
    if warrant.depth_remaining < 1:
        raise WarrantSpecError(f"the warrant for task `{warrant.task_id}` cannot be delegated")
    expiry = warrant.expires_at if expires_at is None else _aware("expires_at", expires_at)
    expiry = _whole_seconds(expiry)
    if expiry > warrant.expires_at:
        raise WarrantSpecError(f"expires_at `{expiry.isoformat()}` is later than the warrant's")
    if expiry <= now:
        raise WarrantSpecError(f"expires_at `{expiry.isoformat()}` is not in the future")
    current_total = warrant.total_budget
    if total_budget is not None:
        check_int("the total budget", total_budget, minimum=0)
        if current_total is not None and total_budget > current_total:
            raise WarrantSpecError(f"total budget `{total_budget}` is above `{current_total}`")
    if tools is None:
        tools = [ToolGrant(name, (), warrant.tool_budget(name)) for name in warrant.tools]
    layer = WarrantLayer(
        tools=tuple(_narrow_grant(warrant, grant) for grant in _check_tools(tools)),
        expires_at=expiry,
        max_depth=warrant.depth_remaining - 1,
        total_budget=current_total if total_budget is None else total_budget,
        holder=None if holder is None else _principal("holder", holder, domain),
    )
    block = ba.BlockBuilder(render_block(layer, None))
    if signer is None:
        attenuated: str = biscuit.append(block).to_base64()
        return attenuated
    raw = signer.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    key = ba.PrivateKey.from_bytes(raw, ba.Algorithm.Ed25519)  # type: ignore[call-arg, attr-defined]
    signed = biscuit.third_party_request().create_block(key, block)
    public = _biscuit_public(signer.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    delegated: str = biscuit.append_third_party(public, signed).to_base64()
    return delegated


def _narrow_grant(warrant: Warrant, grant: ToolGrant) -> ToolGrant:
    if grant.name not in warrant.tools:
        raise WarrantSpecError(
            f"tool `{grant.name}` is not granted by the warrant, so it cannot be delegated"
        )
    current = warrant.tool_budget(grant.name)
    if grant.budget is None:
        return ToolGrant(grant.name, grant.constraints, current)
    if current is not None and grant.budget > current:
        raise WarrantSpecError(f"budget `{grant.budget}` for `{grant.name}` is above `{current}`")
    return grant
