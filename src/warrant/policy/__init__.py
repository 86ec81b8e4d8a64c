"""Organisation policy in Cedar: load once, evaluate many.

`load_policy_set` parses and validates Cedar policies against Warrant's schema
(`pack/schema.cedarschema`) and freezes them into a `CompiledPolicy`;
`CompiledPolicy.evaluate` answers a `PolicyRequest` with a `PolicyResult`.
Deny by default, forbid wins, any evaluation error denies; a permit marked
`@effect("needs-approval")` allows only with a human's approval.

Policies see call arguments as entity tags:
`context.args.getTag("to")` (every argument as a String) and
`context.num_args.getTag("amount")` (numeric arguments as a Long), each
guarded by `hasTag`, e.g.
`context.num_args.hasTag("amount") && context.num_args.getTag("amount") > 100`.
"""

from warrant.policy._check import check_policies
from warrant.policy._compile import PolicyFinding
from warrant.policy._policy_set import CompiledPolicy, load_policy_set
from warrant.policy._request import PolicyRequest, PolicyResult
from warrant.policy._source import default_pack_sources, default_schema_text
from warrant.policy._testing import (
    PolicyTestCase,
    PolicyTestResult,
    default_pack_tests,
    load_policy_tests,
    run_policy_tests,
)

__all__ = [
    "CompiledPolicy",
    "PolicyFinding",
    "PolicyRequest",
    "PolicyResult",
    "PolicyTestCase",
    "PolicyTestResult",
    "check_policies",
    "default_pack_sources",
    "default_pack_tests",
    "default_schema_text",
    "load_policy_set",
    "load_policy_tests",
    "run_policy_tests",
]
