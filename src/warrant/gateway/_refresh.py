"""Credential refresh over stdio: the gateway follows its token files, as SPIFFE workloads
follow a rotated SVID.

Credentials live minutes to an hour; an MCP client keeps its gateway for hours.
When the launch material came from files (`$WARRANT_CREDENTIAL_FILE`,
`$WARRANT_WARRANT_FILE`, `$WARRANT_AGENT_KEY_FILE`), `SessionSource.current()`
looks at them again (a `stat` at most once per `CHECK_INTERVAL_S`; their
content too while the credential is near its end or there is no session) and,
when they hold something new, opens a new `GuardSession` from it: possession of
the key is proved again.

INVARIANT: the new material must be for the agent the source is pinned to (the
launch session's, or the first session's when launch had none), its credential
valid now and its warrant genuine, unexpired and held by that agent. Anything
else (another agent's credential, an unreadable file, garbage) is refused and
audited once per content (`session.refresh-refused`), and the current session
keeps serving until it expires: never an unauthenticated session.

Tokens passed as values (`$WARRANT_CREDENTIAL`, `$WARRANT_WARRANT`) cannot
change: nothing is watched, and `current()` is the launch session, as before.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warrant import identity, warrants
from warrant.enforce import Guard, GuardSession
from warrant.errors import InvalidCredential, InvalidWarrant

from ._auth import (
    AGENT_KEY_FILE_ENV,
    CREDENTIAL_FILE_ENV,
    WARRANT_FILE_ENV,
    _agent_key,
    _launch_tokens,
    open_session,
)

log = logging.getLogger("warrant.gateway")

#: At most one look at the files per this many seconds (calls in between cost a clock read).
CHECK_INTERVAL_S = 1.0
#: From this long before the credential's end (or half its lifetime, if shorter), the
#: files' content is compared too: a rewrite a `stat` cannot see is still found in time.
RENEW_MARGIN_S = 60.0

#: What a file looks like without reading it: a rewrite or a rename changes one of these.
_Stat = tuple[int, int, int, int] | None


class SessionSource:
    """The stdio caller's current session, re-opened from the launch files when they change."""

    def __init__(self, session: GuardSession | None, *, guard: Guard | None = None,
                 env: Mapping[str, str] | None = None,
                 check_interval_s: float = CHECK_INTERVAL_S) -> None:
        """Without `guard` and `env` (the launch environment), or when `env` names no token
        file, nothing is followed and `current()` is always `session`."""
        self._guard = guard
        self._session = session
        self._env = dict(env) if env is not None else {}
        self._paths = tuple(Path(self._env[key]) for key in (
            CREDENTIAL_FILE_ENV, WARRANT_FILE_ENV, AGENT_KEY_FILE_ENV) if self._env.get(key))
        # Only a key file: the tokens are fixed values and there is nothing to follow.
        self._watched = guard is not None and bool(
            self._env.get(CREDENTIAL_FILE_ENV) or self._env.get(WARRANT_FILE_ENV))
        self._interval = check_interval_s
        self._next_check = time.monotonic() + check_interval_s
        self._stats = self._stat_all()
        self._digest = _digest_of(session) if session is not None else None
        self._refused: str | None = None  # digest of the material refused last (audited once)
        # The key is parsed again only when its file changed (an encrypted one costs a KDF).
        self._key: tuple[_Stat, Ed25519PrivateKey] | None = None
        self._lock = threading.Lock()
        #: Called with each new session (`run_gateway` points the upstreams at its agent).
        self.on_open: Callable[[GuardSession], None] | None = None

    @classmethod
    def open(cls, guard: Guard, env: Mapping[str, str] | None = None) -> SessionSource:
        """The launch session (`open_session`, audited if refused), followed from `env`'s files."""
        env = os.environ if env is None else env
        return cls(open_session(guard, env), guard=guard, env=env)

    @property
    def agent(self) -> str | None:
        """The agent every session of this source is for (None until one opened)."""
        return self._session.credential.agent_id if self._session is not None else None

    def current(self) -> GuardSession | None:
        """The session to decide this call with; cheap unless a look at the files is due."""
        if not self._watched or time.monotonic() < self._next_check:
            return self._session
        with self._lock:
            if time.monotonic() >= self._next_check:  # another thread may just have looked
                try:
                    self._look()
                finally:
                    self._next_check = time.monotonic() + self._interval
        return self._session

    # -- the look at the files (at most once per interval) -----------------------------------

    def _look(self) -> None:
        assert self._guard is not None  # INVARIANT: only a source with a guard is watched
        stats = self._stat_all()
        if stats == self._stats and not self._due():
            return
        self._stats = stats
        try:
            credential, warrant = _launch_tokens(self._env)
            key = self._agent_key()
        except InvalidCredential as exc:  # unreadable or missing: refuse once per cause
            detail = exc.detail or exc.message
            self._refuse(hashlib.sha256(detail.encode()).hexdigest(), detail)
            return
        digest = _digest(credential, warrant, identity.raw_public(key.public_key()))
        if digest in (self._digest, self._refused):
            return  # nothing new, or already refused (and audited)
        try:
            self._check(credential, warrant)
            session = GuardSession(self._guard, credential=credential, warrant=warrant,
                                   agent_key=key)
        except (InvalidCredential, InvalidWarrant) as exc:
            self._refuse(digest, exc.detail or exc.message)
            return
        self._session, self._digest, self._refused = session, digest, None
        cred = session.credential
        self._guard.domain.record_admin("session.refreshed", {
            "agent": cred.agent_id, "credential_id": cred.credential_id,
            "expires_at": cred.expires_at, "pep": "gateway"})
        log.info("gateway session refreshed: credential %s until %s", cred.credential_id,
                 time.strftime("%H:%M:%SZ", time.gmtime(cred.expires_at)))
        if self.on_open is not None:
            self.on_open(session)

    def _agent_key(self) -> Ed25519PrivateKey:
        stat = _stat(Path(self._env.get(AGENT_KEY_FILE_ENV, "")))
        if self._key is None or self._key[0] != stat or stat is None:
            self._key = (stat, _agent_key(self._env))
        return self._key[1]

    def _check(self, credential: str, warrant: str) -> None:
        """Raise unless the material is for this source's agent and usable now."""
        assert self._guard is not None
        domain = self._guard.domain
        now = time.time()
        agent = identity.verify_credential(credential, domain.public_key, domain=domain.domain,
                                           now=now).agent_id
        pinned = self.agent
        if pinned is not None and agent != pinned:
            raise InvalidCredential(f"the new credential is for {agent}, not for {pinned}, "
                                    "the agent this gateway serves")
        token = warrants.verify_warrant(warrant, domain.public_key, domain=domain.domain,
                                        now=dt.datetime.fromtimestamp(now, dt.UTC))
        if token.holder != agent:
            raise InvalidWarrant(f"the new warrant is held by {token.holder}, not by {agent}")

    def _refuse(self, digest: str, detail: str) -> None:
        assert self._guard is not None
        if digest == self._refused:
            return
        self._refused = digest
        self._guard.domain.record_admin("session.refresh-refused", {
            "detail": detail, "agent": self.agent, "pep": "gateway",
            "kept": self._session.credential.credential_id if self._session else None})
        # Without a session there is nothing to keep: every call is denied until
        # usable material is written (saying "kept" would send the operator astray).
        kept = ("the current session is kept" if self._session is not None
                else "no session: every call is denied until valid files are written")
        log.warning("gateway session refresh refused (%s): %s", kept, detail)

    def _due(self) -> bool:
        """True while the content must be compared: no session, or its end is near."""
        if self._session is None:
            return True
        cred = self._session.credential
        margin = min(RENEW_MARGIN_S, (cred.expires_at - cred.issued_at) / 2)
        return time.time() >= cred.expires_at - margin

    def _stat_all(self) -> tuple[_Stat, ...]:
        return tuple(_stat(path) for path in self._paths)


def _stat(path: Path) -> _Stat:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _digest(credential: str, warrant: str, public_key: bytes) -> str:
    return hashlib.sha256(b"\0".join((credential.encode(), warrant.encode(),
                                      public_key))).hexdigest()


def _digest_of(session: GuardSession) -> str:
    return _digest(session.credential_token, session.warrant,
                   identity.raw_public(session.credential.confirmation_key))
