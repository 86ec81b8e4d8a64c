"""The tamper-evident audit log: Merkle-hashed records with signed checkpoints.

Every decision and outcome is appended as a versioned `AuditRecord`; appends
return only once durable, and fail closed with `AuditWriteError`. Signed
`Checkpoint`s plus RFC 9162 inclusion and consistency proofs let anyone holding
the domain's public key check that nothing was altered, removed or reordered.
Each record is also sealed (a MAC under a key derived from the domain signing
key, bound to its seq), and a checkpoint is signed only over sealed records,
so a row written into the database directly is never signed.
"""

from ._backend import AuditBackend
from ._checkpoint import Checkpoint, key_id, sign_checkpoint, verify_checkpoint
from ._log import AuditLog, ConsistencyProof, Entry, InclusionProof
from ._merkle import EMPTY_ROOT, leaf_hash, node_hash, root_from_leaf_hashes
from ._record import SCHEMA, AuditRecord, utc_now
from ._verify import VerifyReport

__all__ = [  # noqa: RUF022 - plain sorted() order, which the public-surface test pins
    "AuditBackend",
    "AuditLog",
    "AuditRecord",
    "Checkpoint",
    "ConsistencyProof",
    "EMPTY_ROOT",
    "Entry",
    "InclusionProof",
    "SCHEMA",
    "VerifyReport",
    "key_id",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "sign_checkpoint",
    "utc_now",
    "verify_checkpoint",
]
