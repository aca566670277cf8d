"""Entry point the Pulumi engine runs (`python -m pulumi.policy <engine> .`): build the pack, nothing else.

Constructing PolicyPack starts the analyzer gRPC server, prints its port and blocks."""

import gc

from pulumi_policy import EnforcementLevel, PolicyPack
from wwhd_policies import ALL_POLICIES, PACK_NAME

# For each stack policy the SDK rebuilds every resource of the stack as nested dicts and proxies:
# millions of short-lived objects, nearly all freed by reference counting. With the default
# thresholds the cyclic collector keeps rescanning that heap, and AnalyzeStack grows faster than
# the stack (5,000 resources: 1.5 s instead of 1.0 s). Leaving the imported modules out of every
# scan (freeze) and collecting less often keeps it linear; the process lives for one operation.
gc.freeze()
gc.set_threshold(50_000, 20, 20)

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=ALL_POLICIES,
    description="W.W.H.D. stack guardrails: encryption, private networking, data safety, reliability, "
    "least privilege and a monthly cost ceiling.",
)
