"""W.W.H.D. backend on AWS: one program for every stack.

Reads and validates the stack configuration once, then composes the components in the order
of the architecture: key, network, roles, data, database, platform, services, monitoring.
What each component is given comes from ``workloads.py``; no component reads configuration.
"""

import pulumi
import pulumi_aws as aws

import workloads
from components.container_host import WwhdContainerHost
from components.data import WwhdDataVolume
from components.database import WwhdDatabase
from components.kms import WwhdStackKey, WwhdStackKeyArgs
from components.monitoring import WwhdMonitoring
from components.network import WwhdNetwork
from components.platform import WwhdPlatform
from components.service import Encryption, WwhdService
from stack_config import read_stack_config

# Raises ConfigError (a RunError: one readable message, no traceback) before anything exists.
cfg = read_stack_config()
stack = pulumi.get_stack()
names = workloads.physical_names(cfg, stack)

# One explicit provider: its default tags reach every taggable resource of every component.
provider = aws.Provider(
    "aws", region=cfg.region, default_tags=aws.ProviderDefaultTagsArgs(tags=cfg.stack_tags)
)
with_provider = pulumi.ResourceOptions(providers={"aws": provider})

key = WwhdStackKey("wwhd", WwhdStackKeyArgs(region=cfg.region, protect=cfg.storage.protect), with_provider)
encryption = Encryption(key.key_arn, f"alias/wwhd-{stack}")
# Every role the program creates carries the bootstrap's boundary (docs/bootstrap.md): the deploy
# role may create roles only with it, so nothing it deploys can exceed it.
boundary = workloads.boundary_arn(provider)

network = WwhdNetwork("wwhd", workloads.network_args(cfg, key.key_arn, boundary), with_provider)
base = workloads.Foundation(cfg, names, encryption, boundary, network)
data = WwhdDataVolume("wwhd", workloads.data_args(base), with_provider) if cfg.uses_efs else None
database = WwhdDatabase("wwhd", workloads.database_args(base), with_provider) if cfg.postgres else None
platform = WwhdPlatform("wwhd", workloads.platform_args(base), with_provider)

host = (
    WwhdContainerHost("wwhd-qdrant-host", workloads.qdrant_host_args(base), with_provider)
    if cfg.qdrant.placement == "instance"
    else None
)
# Qdrant first: the API's tasks start once the service they search exists.
qdrant_storage = workloads.qdrant_storage(cfg, host, data)
qdrant = (
    WwhdService("wwhd-qdrant", workloads.qdrant(base, platform, qdrant_storage), with_provider)
    if qdrant_storage is not None
    else None
)
start_after = [r for r in (data, qdrant) if r is not None]
api = WwhdService("wwhd-api", workloads.api(base, platform, data, database, start_after), with_provider)
extras = {
    s.name: WwhdService(f"wwhd-svc-{s.name}", workloads.extra(base, s, platform, data), with_provider)
    for s in cfg.services
}
if data is not None:
    # The file system policy names the writers' task roles, so it comes after the services.
    data.admit(workloads.writers(cfg, data, api, qdrant, extras))

monitoring = WwhdMonitoring(
    "wwhd",
    workloads.monitoring_args(cfg, key.key_arn, platform, api, qdrant, extras, host, data, database),
    with_provider,
)

pulumi.export("serviceUrl", platform.load_balancer.url)
pulumi.export("albDnsName", platform.load_balancer.dns_name)
pulumi.export("ecrRepositoryUrl", platform.repository_url)
pulumi.export("clusterName", platform.cluster_name)
pulumi.export("apiServiceName", api.service_name)
pulumi.export("qdrantServiceName", qdrant.service_name if qdrant else None)
pulumi.export("qdrantUrl", workloads.qdrant_url(cfg, names))
pulumi.export("apiLogGroupName", api.log_group_name)
pulumi.export("performanceLogGroupName", api.extra_log_group_names["performance"])
pulumi.export(
    "qdrantLogGroupName", qdrant.log_group_name if qdrant else api.extra_log_group_names.get("qdrant")
)
pulumi.export("documentsBucketName", platform.documents_bucket_name)
pulumi.export("openaiApiKeyParameter", platform.secret_references["OPENAI_API_KEY"])
pulumi.export("vpcId", network.vpc_id)
pulumi.export("publicSubnetIds", network.public_subnet_ids)
pulumi.export("privateSubnetIds", network.private_subnet_ids)
# A shell that must reach what the API reaches (the database, for the one-time user setup).
pulumi.export("apiSecurityGroupId", network.api_security_group_id)
pulumi.export("stackKeyArn", key.key_arn)
pulumi.export("fileSystemId", data.file_system_id if data else None)
pulumi.export("backupVaultName", data.backups.vault_name if data else None)
pulumi.export("backupRoleArn", data.backups.role_arn if data else None)
pulumi.export("qdrantHostGroupName", host.instances.group_name if host else None)
pulumi.export("qdrantVolumeId", host.volume.id if host else None)
pulumi.export("qdrantHostBackupRoleArn", host.backups.role_arn if host else None)
pulumi.export("databaseAddress", database.address if database else None)
pulumi.export("databaseSecretArn", database.secret_arn if database else None)
pulumi.export("databaseAppUser", cfg.database.app_user if database else None)
pulumi.export("alarmTopicArn", monitoring.topic_arn)
pulumi.export("dashboardUrl", monitoring.dashboard_url)
