"""Identity: domain keys and CA, agents, short-lived credentials, proof of possession,
signed envelopes for messages between agents."""

from ._agents import RISK_TIERS, agent_id_for, is_person, new_agent
from ._bundles import manifest_path, sign_bundle, verify_bundle
from ._ca import (
    certificate_pem,
    issue_agent_certificate,
    load_certificate,
    verify_agent_certificate,
)
from ._credential import (
    CLOCK_SKEW_SECONDS,
    DEFAULT_TTL_SECONDS,
    MAX_TTL_SECONDS,
    Credential,
    IssuedCredential,
    issue_credential,
    token_digest,
    verify_credential,
)
from ._domain_keys import DomainKeys, create_domain_keys, load_domain_keys
from ._envelope import (
    ENVELOPE_TYPE,
    MAX_ENVELOPE_TTL_SECONDS,
    SealClaims,
    open_envelope,
    seal_envelope,
)
from ._keys import (
    PASSPHRASE_ENV,
    generate_key,
    jwk_thumbprint,
    load_public_key_file,
    public_from_raw,
    raw_private,
    raw_public,
    read_private_key,
    write_private_key,
)
from ._proof import (
    PROOF_WINDOW_SECONDS,
    MemoryReplayGuard,
    ProofClaims,
    ReplayGuard,
    make_proof,
    verify_proof,
)

__all__ = [
    "CLOCK_SKEW_SECONDS",
    "DEFAULT_TTL_SECONDS",
    "ENVELOPE_TYPE",
    "MAX_ENVELOPE_TTL_SECONDS",
    "MAX_TTL_SECONDS",
    "PASSPHRASE_ENV",
    "PROOF_WINDOW_SECONDS",
    "RISK_TIERS",
    "Credential",
    "DomainKeys",
    "IssuedCredential",
    "MemoryReplayGuard",
    "ProofClaims",
    "ReplayGuard",
    "SealClaims",
    "agent_id_for",
    "certificate_pem",
    "create_domain_keys",
    "generate_key",
    "is_person",
    "issue_agent_certificate",
    "issue_credential",
    "jwk_thumbprint",
    "load_certificate",
    "load_domain_keys",
    "load_public_key_file",
    "make_proof",
    "manifest_path",
    "new_agent",
    "open_envelope",
    "public_from_raw",
    "raw_private",
    "raw_public",
    "read_private_key",
    "seal_envelope",
    "sign_bundle",
    "token_digest",
    "verify_agent_certificate",
    "verify_bundle",
    "verify_credential",
    "verify_proof",
    "write_private_key",
]
