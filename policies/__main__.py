"""Entry point the Pulumi engine runs (`python -m pulumi.policy <engine> .`): build the pack, nothing else.

Constructing PolicyPack starts the analyzer gRPC server, prints its port and blocks."""

from pulumi_policy import EnforcementLevel, PolicyPack
from wwhd_policies import ALL_POLICIES, PACK_NAME

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=ALL_POLICIES,
    description="W.W.H.D. stack guardrails: encryption, private networking, data safety, reliability, "
    "least privilege and a monthly cost ceiling.",
)
