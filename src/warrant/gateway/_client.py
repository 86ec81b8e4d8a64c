"""What an MCP client sends to the HTTP gateway: `WarrantHttpAuth` for the SDK's client.

    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    import httpx2
    from warrant.gateway import WarrantHttpAuth

    auth = WarrantHttpAuth.from_files("bot.cred", "bot.warrant", "bot.key")
    async with httpx2.AsyncClient(auth=auth) as http, \\
            streamable_http_client("http://127.0.0.1:8765/mcp", http_client=http) as (r, w), \\
            ClientSession(r, w) as session:
        ...

Every request carries the credential and the warrant; each `tools/call`,
`resources/read` and `prompts/get` also carries a fresh proof of possession
signed with the agent's key over that exact call (`request_headers`). The key
never leaves the client.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import httpx2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warrant import identity

from ._http import request_headers


class WarrantHttpAuth(httpx2.Auth):
    """httpx2 authentication that adds Warrant's headers to each request it sends."""

    requires_request_body = True  # the proof is over the call in the body

    def __init__(self, *, credential: str, warrant: str, agent_key: Ed25519PrivateKey):
        self._credential = credential.strip()
        self._warrant = warrant.strip()
        self._key = agent_key

    @classmethod
    def from_files(cls, credential: Path | str, warrant: Path | str,
                   agent_key: Path | str) -> WarrantHttpAuth:
        """Read the token files and the agent's private key (as `warrant credential
        issue`, `warrant mint` and `warrant agent register` write them); the key's
        passphrase, if any, comes from `WARRANT_KEY_PASSPHRASE`."""
        return cls(credential=Path(credential).read_text(encoding="utf-8"),
                   warrant=Path(warrant).read_text(encoding="utf-8"),
                   agent_key=identity.read_private_key(Path(agent_key)))

    def auth_flow(self, request: httpx2.Request
                  ) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers.update(request_headers(
            request.content, credential=self._credential, warrant=self._warrant,
            agent_key=self._key))
        yield request
