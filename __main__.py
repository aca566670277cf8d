"""W.W.H.D. backend on AWS: one program for every stack.

Reads and validates the stack configuration once, then composes the components in the
order of the architecture: key, network, data, database, platform, services, monitoring.
"""

import pulumi
import pulumi_aws as aws

import workloads
from components.container_host import WwhdContainerHost, WwhdContainerHostArgs
from components.data import WwhdDataVolume, WwhdDataVolumeArgs
from components.database import WwhdDatabase, WwhdDatabaseArgs
from components.kms import WwhdStackKey, WwhdStackKeyArgs
from components.monitoring import WatchedHost, WatchedService, WwhdMonitoring, WwhdMonitoringArgs
from components.network import WwhdNetwork, WwhdNetworkArgs
from components.platform import (
    PlatformNetwork,
    PlatformSecrets,
    PullThroughCache,
    WwhdPlatform,
    WwhdPlatformArgs,
)
from components.service import Encryption, WwhdService
from stack_config import read_stack_config

# Raises ConfigError (a RunError: one readable message, no traceback) before anything exists.
cfg = read_stack_config()
stack = pulumi.get_stack()
names = workloads.physical_names(cfg, stack)
postgres, placement = cfg.database.engine == "postgres", cfg.qdrant.placement
efs_services = [s.name for s in cfg.services if s.efs]
sqlite = not postgres
# A stack moving Qdrant off EFS keeps the file system (and Qdrant's directory) until it is done.
qdrant_on_efs = placement in ("sidecar", "service") or cfg.storage.retain_file_system
has_efs = sqlite or qdrant_on_efs or bool(efs_services)
on_host = placement == "instance"

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

network = WwhdNetwork(
    "wwhd",
    WwhdNetworkArgs(
        config=cfg.network,
        region=cfg.region,
        key_arn=key.key_arn,
        container_port=cfg.service.container_port,
        https=cfg.load_balancer.https,
        efs=has_efs,
        api_efs=sqlite or placement == "sidecar",
        qdrant_service=placement in ("service", "instance"),
        qdrant_efs=placement == "service",
        qdrant_host=on_host,
        postgres=postgres,
        flow_log_retention_days=cfg.monitoring.log_retention_days,
        services=workloads.service_ports(cfg),
        permissions_boundary=boundary,
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
            efs_security_group_id=network.efs_security_group_id,  # type: ignore[arg-type] - set with efs
            region=cfg.region,
            sqlite=sqlite,
            qdrant_on_efs=qdrant_on_efs,
            service_directories=efs_services,
            tags=cfg.stack_tags,
            permissions_boundary=boundary,
        ),
        with_provider,
    )
    if has_efs
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
            permissions_boundary=boundary,
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
        pull_through_cache=PullThroughCache(cfg.images.docker_hub_credential_arn)
        if cfg.images.pull_through_cache and cfg.images.docker_hub_credential_arn
        else None,
        protect=cfg.storage.protect,
        discovery_namespace=names.namespace if placement in ("service", "instance") else None,
        legacy=workloads.PLATFORM_LEGACY,
    ),
    with_provider,
)

# Qdrant on one container instance with its storage on an EBS volume (Qdrant does not support
# network file systems); the host is the volume's, in the AZ of its subnet.
host = (
    WwhdContainerHost(
        "wwhd-qdrant-host",
        WwhdContainerHostArgs(
            cluster_name=names.cluster,
            region=cfg.region,
            subnet_id=network.private_subnet_ids.apply(lambda ids: ids[cfg.qdrant.subnet_index]),
            availability_zone=network.private_subnet_azs.apply(lambda azs: azs[cfg.qdrant.subnet_index]),
            security_group_ids=[network.qdrant_host_security_group_id],  # type: ignore[list-item] - set on_host
            key_arn=key.key_arn,
            key_alias=encryption.key_alias,
            permissions_boundary=boundary,
            backup_retention_days=cfg.storage.backup_retention_days,
            instance_type=cfg.qdrant.instance_type,
            architecture=cfg.qdrant.host_architecture,
            image_id=cfg.qdrant.ami_id,
            volume_gb=cfg.qdrant.volume_gb,
            backup_copy_region=cfg.storage.backup_copy_region,
            protect=cfg.storage.protect,
            tags=cfg.stack_tags,
        ),
        with_provider,
    )
    if on_host
    else None
)
# Qdrant first: the API's tasks start once the service they search exists.
qdrant_storage = host if host is not None else data if placement == "service" else None
qdrant = (
    WwhdService(
        "wwhd-qdrant",
        workloads.qdrant(cfg, names, platform, network, qdrant_storage, encryption, boundary),
        with_provider,
    )
    if qdrant_storage is not None
    else None
)
storage = [data] if data is not None else []
api = WwhdService(
    "wwhd-api",
    workloads.api(
        cfg,
        names,
        platform,
        network,
        data,
        database,
        [*storage, *([qdrant] if qdrant else [])],
        encryption,
        boundary,
    ),
    with_provider,
)
extras = {
    s.name: WwhdService(
        f"wwhd-svc-{s.name}",
        workloads.extra(s, cfg, platform, network, data, encryption, boundary),
        with_provider,
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
            # Qdrant mounts EFS as a sidecar (the API's role) or as a Fargate service (its own).
            api.task_role_arn
            if placement == "sidecar"
            else qdrant.task_role_arn
            if qdrant and placement == "service"
            else None,
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
        host=WatchedHost(
            host.asg_name, host.free_space_metric.namespace, dict(host.free_space_metric.dimensions)
        )
        if host is not None
        else None,
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
pulumi.export("openaiApiKeyParameter", platform.secret_references["OPENAI_API_KEY"])
pulumi.export("vpcId", network.vpc_id)
pulumi.export("publicSubnetIds", network.public_subnet_ids)
pulumi.export("privateSubnetIds", network.private_subnet_ids)
# A shell that must reach what the API reaches (the database, for the one-time user setup).
pulumi.export("apiSecurityGroupId", network.api_security_group_id)
pulumi.export("stackKeyArn", key.key_arn)
pulumi.export("fileSystemId", data.file_system_id if data else None)
pulumi.export("backupVaultName", data.backup_vault_name if data else None)
pulumi.export("backupRoleArn", data.backup_role_arn if data else None)
pulumi.export("qdrantHostGroupName", host.asg_name if host else None)
pulumi.export("qdrantVolumeId", host.volume_id if host else None)
pulumi.export("qdrantHostBackupRoleArn", host.backup_role_arn if host else None)
pulumi.export("databaseAddress", database.address if database else None)
pulumi.export("databaseSecretArn", database.secret_arn if database else None)
pulumi.export("databaseAppUser", cfg.database.app_user if database else None)
pulumi.export("alarmTopicArn", monitoring.topic_arn)
pulumi.export("dashboardUrl", monitoring.dashboard_url)
