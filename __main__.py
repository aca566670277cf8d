"""W.W.H.D. backend on AWS: one program for every stack.

Reads and validates the stack configuration once, then composes the components in the
order of the architecture: key, network, data, service, monitoring.
"""

import pulumi
import pulumi_aws as aws

from components.kms import WwhdStackKey, WwhdStackKeyArgs
from components.network import WwhdNetwork, WwhdNetworkArgs
from stack_config import read_stack_config

# Raises ConfigError (a RunError: one readable message, no traceback) before anything exists.
cfg = read_stack_config()

# One explicit provider: its default tags reach every taggable resource of every component.
provider = aws.Provider(
    "aws",
    region=cfg.region,
    default_tags=aws.ProviderDefaultTagsArgs(tags=cfg.stack_tags),
)
with_provider = pulumi.ResourceOptions(providers={"aws": provider})

key = WwhdStackKey(
    "wwhd",
    WwhdStackKeyArgs(region=cfg.region, protect=cfg.storage.protect),
    with_provider,
)

network = WwhdNetwork(
    "wwhd",
    WwhdNetworkArgs(
        config=cfg.network,
        region=cfg.region,
        key_arn=key.key_arn,
        container_port=cfg.service.container_port,
        qdrant_service=cfg.qdrant.placement == "service",
        postgres=cfg.database.engine == "postgres",
        flow_log_retention_days=cfg.monitoring.log_retention_days,
    ),
    with_provider,
)

pulumi.export("vpcId", network.vpc_id)
pulumi.export("publicSubnetIds", network.public_subnet_ids)
pulumi.export("privateSubnetIds", network.private_subnet_ids)
pulumi.export("stackKeyArn", key.key_arn)
