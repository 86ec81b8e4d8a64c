"""State store (SQLite): agents, credentials, revocations, budgets, nonces, the tool
catalogue and the audit log's tables.

Everything persistent sits behind this package; PostgreSQL will implement the
same methods for multi-node deployments.
"""

from ._approvals import Approval
from ._audit import SqliteAuditBackend
from ._incidents import Incident, SqliteIncidents
from ._interface import ApprovalStore, StateStore
from ._pins import SqlitePins, ToolPin
from ._sqlite import TOTAL, SqliteStore

__all__ = [
    "TOTAL",
    "Approval",
    "ApprovalStore",
    "Incident",
    "SqliteAuditBackend",
    "SqliteIncidents",
    "SqlitePins",
    "SqliteStore",
    "StateStore",
    "ToolPin",
]
