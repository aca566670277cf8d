"""W.W.H.D. backend on AWS: one program for every stack.

Reads and validates the stack configuration once, then composes the components in the
order of the architecture: key, network, data, database, platform, services, monitoring.
"""

import pulumi
import pulumi_aws as aws

import workloads
from components.data import WwhdDataVolume, WwhdDataVolumeArgs
from components.database import WwhdDatabase, WwhdDatabaseArgs
from components.kms import WwhdStackKey, WwhdStackKeyArgs
from components.monitoring import WatchedService, WwhdMonitoring, WwhdMonitoringArgs
from components.network import WwhdNetwork, WwhdNetworkArgs
from components.platform import PlatformNetwork, PlatformSecrets, WwhdPlatform, WwhdPlatformArgs
from components.service import WwhdService
from stack_config import read_stack_config

# Raises ConfigError (a RunError: one readable message, no traceback) before anything exists.
cfg = read_stack_config()
stack = pulumi.get_stack()
names = workloads.physical_names(cfg, stack)
postgres, placement = cfg.database.engine == "postgres", cfg.qdrant.placement
efs_services = [s.name for s in cfg.services if s.efs]

# One explicit provider: its default tags reach every taggable resource of every component.
provider = aws.Provider(
    "aws", region=cfg.region, default_tags=aws.ProviderDefaultTagsArgs(tags=cfg.stack_tags)
)
with_provider = pulumi.ResourceOptions(providers={"aws": provider})

key = WwhdStackKey("wwhd", WwhdStackKeyArgs(region=cfg.region, protect=cfg.storage.protect), with_provider)

network = WwhdNetwork(
    "wwhd",
    WwhdNetworkArgs(
        config=cfg.network,
        region=cfg.region,
        key_arn=key.key_arn,
        container_port=cfg.service.container_port,
        qdrant_service=placement == "service",
        postgres=postgres,
        flow_log_retention_days=cfg.monitoring.log_retention_days,
        services=workloads.service_ports(cfg),
    ),
    with_provider,
)

# SQLite, Qdrant (sidecar or service) and services with a directory keep their files on EFS.
data = (
    WwhdDataVolume(
        "wwhd",
        WwhdDataVolumeArgs(
            storage=cfg.storage,
            key_arn=key.key_arn,
            private_subnet_ids=network.private_subnet_ids,
            subnet_count=network.private_subnet_count,
            efs_security_group_id=network.efs_security_group_id,
            region=cfg.region,
            sqlite=not postgres,
            qdrant_on_efs=placement != "external",
            service_directories=efs_services,
            tags=cfg.stack_tags,
        ),
        with_provider,
    )
    if not postgres or placement != "external" or efs_services
    else None
)

database = (
    WwhdDatabase(
        "wwhd",
        WwhdDatabaseArgs(
            config=cfg.database,
            key_arn=key.key_arn,
            private_subnet_ids=network.private_subnet_ids,
            db_security_group_id=network.db_security_group_id,  # type: ignore[arg-type] - set with postgres
            log_retention_days=cfg.monitoring.log_retention_days,
        ),
        with_provider,
    )
    if postgres
    else None
)

platform = WwhdPlatform(
    "wwhd",
    WwhdPlatformArgs(
        region=cfg.region,
        key_arn=key.key_arn,
        cluster_name=names.cluster,
        repository_name=names.repository,
        network=PlatformNetwork(network.vpc_id, network.public_subnet_ids, network.lb_security_group_id),
        load_balancer=cfg.load_balancer,
        default_port=cfg.service.container_port,
        spot_percent=cfg.service.spot_percent,
        on_demand_base=cfg.service.on_demand_base,
        secrets=PlatformSecrets(
            openai_api_key=pulumi.Config("wwhd").get_secret("openaiApiKey"),
            qdrant_api_key=placement == "external",
            qdrant_api_key_arn=cfg.qdrant.api_key_secret_arn,
        ),
        protect=cfg.storage.protect,
        discovery_namespace=names.namespace if placement == "service" else None,
        legacy=workloads.PLATFORM_LEGACY,
    ),
    with_provider,
)

# Qdrant first: the API's tasks start once the service they search exists.
qdrant = (
    WwhdService(
        "wwhd-qdrant", workloads.qdrant(cfg, names, platform, network, data, key.key_arn), with_provider
    )
    if placement == "service" and data is not None
    else None
)
storage = [data] if data is not None else []
api = WwhdService(
    "wwhd-api",
    workloads.api(
        cfg, names, platform, network, data, database, [*storage, *([qdrant] if qdrant else [])], key.key_arn
    ),
    with_provider,
)
extras = {
    s.name: WwhdService(
        f"wwhd-svc-{s.name}", workloads.extra(s, cfg, platform, network, data, key.key_arn), with_provider
    )
    for s in cfg.services
}
if data is not None:
    # The file system policy names the writers' task roles, so it comes after the services.
    data.admit(
        workloads.writers(
            cfg,
            data,
            api.task_role_arn,
            qdrant.task_role_arn if qdrant else None,
            [(n, extras[n].task_role_arn) for n in efs_services],
        )
    )

monitoring = WwhdMonitoring(
    "wwhd",
    WwhdMonitoringArgs(
        config=cfg.monitoring,
        environment=cfg.environment,
        region=cfg.region,
        key_arn=key.key_arn,
        cluster_name=platform.cluster_name,
        alb_arn_suffix=platform.load_balancer.arn_suffix,
        services=[
            WatchedService(
                "api",
                "API",
                api.service_name,
                target_group_arn_suffix=platform.default_target_group.arn_suffix,
                default_route=True,
                parked=cfg.service.desired_count == 0 and cfg.service.min_count == 0,
            ),
            *(
                [
                    WatchedService(
                        "qdrant", "Qdrant", qdrant.service_name, singleton=True, impact="retrieval fails"
                    )
                ]
                if qdrant
                else []
            ),
            *[
                WatchedService(n, n, svc.service_name, target_group_arn_suffix=svc.target_group_arn_suffix)
                for n, svc in extras.items()
            ],
        ],
        api_log_group_name=api.log_group_name,
        performance_log_group_name=api.extra_log_group_names["performance"],
        file_system_id=data.file_system_id if data else None,
        throughput_mode=cfg.storage.throughput_mode,
        db_instance_identifier=database.identifier if database else None,
        db_allocated_storage_gb=cfg.database.allocated_storage_gb if postgres else None,
        db_instance_class=cfg.database.instance_class if postgres else None,
    ),
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
    "qdrantLogGroupName",
    qdrant.log_group_name if qdrant else api.extra_log_group_names.get("qdrant"),
)
pulumi.export("documentsBucketName", platform.documents_bucket_name)
pulumi.export("openaiApiKeySecretArn", platform.secret_arns["OPENAI_API_KEY"])
pulumi.export("vpcId", network.vpc_id)
pulumi.export("publicSubnetIds", network.public_subnet_ids)
pulumi.export("privateSubnetIds", network.private_subnet_ids)
pulumi.export("stackKeyArn", key.key_arn)
pulumi.export("fileSystemId", data.file_system_id if data else None)
pulumi.export("backupVaultName", data.backup_vault_name if data else None)
pulumi.export("backupRoleArn", data.backup_role_arn if data else None)
pulumi.export("databaseAddress", database.address if database else None)
pulumi.export("databaseSecretArn", database.secret_arn if database else None)
pulumi.export("alarmTopicArn", monitoring.topic_arn)
pulumi.export("dashboardUrl", monitoring.dashboard_url)
