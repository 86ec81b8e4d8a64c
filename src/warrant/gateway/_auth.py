"""Who is calling, over stdio: the credential, warrant and agent key given at launch.

Tokens come from the environment, never the command line (where `ps` shows
them): `WARRANT_CREDENTIAL_FILE` / `WARRANT_CREDENTIAL`, `WARRANT_WARRANT_FILE` /
`WARRANT_WARRANT`, and `WARRANT_AGENT_KEY_FILE` (a PEM private key, encrypted
when `$WARRANT_KEY_PASSPHRASE` is set). A file wins over a value.

The gateway opens a `GuardSession` with them: possession of the agent key is
proved when it opens, and every call is then decided by the pipeline. Token
files are followed (`_refresh.SessionSource`): a renewed credential or warrant
written to them opens a new session for the same agent, without a restart.
When anything is missing or wrong, there is no session: the gateway still
speaks MCP, lists no tools and answers every call "credential rejected" (fail
closed, no oracle; the specific cause goes to the audit log).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warrant import identity, warrants
from warrant.enforce import Guard, GuardSession
from warrant.errors import InvalidCredential, InvalidWarrant, WarrantError

log = logging.getLogger("warrant.gateway")

CREDENTIAL_ENV, CREDENTIAL_FILE_ENV = "WARRANT_CREDENTIAL", "WARRANT_CREDENTIAL_FILE"
WARRANT_ENV, WARRANT_FILE_ENV = "WARRANT_WARRANT", "WARRANT_WARRANT_FILE"
AGENT_KEY_FILE_ENV = "WARRANT_AGENT_KEY_FILE"
#: What a caller without a valid session is told, whatever the cause.
REJECTED = InvalidCredential.PUBLIC_MESSAGE


def _token(env: Mapping[str, str], value_key: str, file_key: str) -> str | None:
    path = env.get(file_key)
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidCredential(f"cannot read ${file_key} `{path}`: {exc}") from exc
    value = env.get(value_key, "").strip()
    return value or None


def _launch_material(env: Mapping[str, str]) -> tuple[str, str, Ed25519PrivateKey]:
    credential, warrant = _launch_tokens(env)
    return credential, warrant, _agent_key(env)


def _launch_tokens(env: Mapping[str, str]) -> tuple[str, str]:
    """The credential and warrant (read from their files now), or `InvalidCredential`."""
    credential = _token(env, CREDENTIAL_ENV, CREDENTIAL_FILE_ENV)
    warrant = _token(env, WARRANT_ENV, WARRANT_FILE_ENV)
    key_file = env.get(AGENT_KEY_FILE_ENV, "")
    if not credential or not warrant or not key_file:
        missing = [name for name, value in ((CREDENTIAL_FILE_ENV, credential),
                                            (WARRANT_FILE_ENV, warrant),
                                            (AGENT_KEY_FILE_ENV, key_file)) if not value]
        raise InvalidCredential(f"gateway launched without {', '.join(missing)}")
    return credential, warrant


def _agent_key(env: Mapping[str, str]) -> Ed25519PrivateKey:
    """The agent key from `$WARRANT_AGENT_KEY_FILE` (read now), or `InvalidCredential`."""
    key_file = env.get(AGENT_KEY_FILE_ENV, "")
    if not key_file:
        raise InvalidCredential(f"gateway launched without {AGENT_KEY_FILE_ENV}")
    try:
        return identity.read_private_key(Path(key_file))
    except (OSError, ValueError, WarrantError) as exc:
        raise InvalidCredential(f"agent key `{key_file}` unusable: {exc}") from exc


def open_session(guard: Guard, env: Mapping[str, str] | None = None) -> GuardSession | None:
    """An authenticated session from the launch environment, or None (audited) if refused."""
    env = os.environ if env is None else env
    try:
        credential, warrant, key = _launch_material(env)
    except InvalidCredential as exc:
        guard.domain.record_admin("session.rejected", {"detail": exc.detail, "pep": "gateway"})
        log.warning("gateway session refused: %s", exc.detail)
        return None
    try:
        session = GuardSession(guard, credential=credential, warrant=warrant, agent_key=key)
    except InvalidCredential as exc:  # GuardSession has audited the cause
        log.warning("gateway session refused: %s", exc.detail)
        return None
    _warn_if_unusable(guard, session)
    return session


def _warn_if_unusable(guard: Guard, session: GuardSession) -> None:
    """Tell the operator now if the launch warrant cannot be used (each call is denied
    and audited anyway; without this the only sign is an empty tool list)."""
    domain = guard.domain
    try:
        token = warrants.verify_warrant(session.warrant, domain.public_key,
                                        domain=domain.domain, now=dt.datetime.now(dt.UTC))
    except InvalidWarrant as exc:
        log.warning("gateway warrant refused: %s (every call is denied until a valid "
                    "warrant file is written)", exc.detail or exc.message)
        return
    if token.holder != session.credential.agent_id:
        log.warning("gateway warrant refused: it is held by %s, not by %s, the agent of the "
                    "credential (every call is denied)", token.holder,
                    session.credential.agent_id)
