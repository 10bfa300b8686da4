"""Pure checks on (request, response, calibration result) -> Verdict.

Never imports ``guard``. A policy is an object with ``name`` and ``check(ctx) -> Verdict`` or a
plain function ``f(ctx) -> Verdict``; the built-ins are created from config with
:func:`build_policy` / :func:`build_policies` and listed in :data:`POLICY_TYPES`.
"""

# Importing the built-in modules registers them in POLICY_TYPES.
from policies import (  # noqa: F401
    denylist,
    json_schema,
    low_confidence,
    max_length,
    order_instability,
    pii,
    prior_skew,
    refusal,
    regex,
    secrets,
)
from policies.base import (
    Action,
    Context,
    Policy,
    Verdict,
    apply_redactions,
    decide,
    run_policies,
)
from policies.registry import (
    POLICY_TYPES,
    PolicyConfigError,
    build_policies,
    build_policy,
)

__all__ = [
    "POLICY_TYPES",
    "Action",
    "Context",
    "Policy",
    "PolicyConfigError",
    "Verdict",
    "apply_redactions",
    "build_policies",
    "build_policy",
    "decide",
    "run_policies",
]
