"""Task warrants: signed, offline-verifiable, attenuable capabilities for one task.

A warrant is a Biscuit token signed by the trust domain's root key. It names
the task, the principal chain, the tools allowed with argument constraints and
budgets, an expiry and a delegation depth. Holders may narrow it for a
sub-agent (`attenuate_warrant`), never widen it.

    token = mint_warrant(root_key, domain=..., task_id=..., agent=..., tools=[...], ...)
    warrant = verify_warrant(token, root_key.public_key(), domain=..., now=...)
    reasons = warrant.check(call)   # () means the warrant permits the call
"""

from warrant.warrants._constraints import Constraint, Equals, InRange, Matches, OneOf, Prefix
from warrant.warrants._describe import describe_warrant
from warrant.warrants._model import WARRANT_VERSION, Hop, ToolGrant, Warrant, WarrantLayer
from warrant.warrants._regex import validate_regex
from warrant.warrants._spec import parse_tool_spec
from warrant.warrants._token import (
    MAX_DEPTH,
    attenuate_warrant,
    mint_warrant,
    verify_warrant,
)

__all__ = [
    "MAX_DEPTH",
    "WARRANT_VERSION",
    "Constraint",
    "Equals",
    "Hop",
    "InRange",
    "Matches",
    "OneOf",
    "Prefix",
    "ToolGrant",
    "Warrant",
    "WarrantLayer",
    "attenuate_warrant",
    "describe_warrant",
    "mint_warrant",
    "parse_tool_spec",
    "validate_regex",
    "verify_warrant",
]
