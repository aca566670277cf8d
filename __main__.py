"""W.W.H.D. backend on AWS: one program for every stack.

Reads and validates the stack configuration once, then composes the components in the
order of the architecture: key, network, roles, data, database, service, monitoring.
"""

import pulumi
import pulumi_aws as aws

from components.data import WwhdDataVolume, WwhdDataVolumeArgs
from components.database import WwhdDatabase, WwhdDatabaseArgs
from components.kms import WwhdStackKey, WwhdStackKeyArgs
from components.monitoring import WwhdMonitoring, WwhdMonitoringArgs
from components.network import WwhdNetwork, WwhdNetworkArgs
from components.roles import WwhdRoles, WwhdRolesArgs
from components.service import WwhdService, WwhdServiceArgs
from stack_config import read_stack_config

# Raises ConfigError (a RunError: one readable message, no traceback) before anything exists.
cfg = read_stack_config()
openai_api_key = pulumi.Config("wwhd").get_secret("openaiApiKey")

postgres = cfg.database.engine == "postgres"
sqlite = not postgres
qdrant_service = cfg.qdrant.placement == "service"
qdrant_on_efs = cfg.qdrant.placement != "external"

# One explicit provider: its default tags reach every taggable resource of every component.
provider = aws.Provider(
    "aws",
    region=cfg.region,
    default_tags=aws.ProviderDefaultTagsArgs(tags=cfg.stack_tags),
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
        qdrant_service=qdrant_service,
        postgres=postgres,
        flow_log_retention_days=cfg.monitoring.log_retention_days,
    ),
    with_provider,
)

# Roles come before the data volume: its file system policy names them.
roles = WwhdRoles("wwhd", WwhdRolesArgs(region=cfg.region, qdrant_service=qdrant_service), with_provider)

subnet_count = (
    len(cfg.network.existing_vpc.private_subnet_ids)
    if cfg.network.existing_vpc is not None
    else cfg.network.availability_zones
)
# A stack with PostgreSQL and an external Qdrant keeps nothing on EFS.
data = (
    WwhdDataVolume(
        "wwhd",
        WwhdDataVolumeArgs(
            storage=cfg.storage,
            key_arn=key.key_arn,
            private_subnet_ids=network.private_subnet_ids,
            subnet_count=subnet_count,
            efs_security_group_id=network.efs_security_group_id,
            api_task_role_arn=roles.api_task_role_arn,
            region=cfg.region,
            sqlite=sqlite,
            qdrant_on_efs=qdrant_on_efs,
            qdrant_task_role_arn=roles.qdrant_task_role_arn,
            tags=cfg.stack_tags,
        ),
        with_provider,
    )
    if sqlite or qdrant_on_efs
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

service = WwhdService(
    "wwhd",
    WwhdServiceArgs(
        environment=cfg.environment,
        region=cfg.region,
        service=cfg.service,
        images=cfg.images,
        qdrant=cfg.qdrant,
        load_balancer=cfg.load_balancer,
        monitoring=cfg.monitoring,
        database_engine=cfg.database.engine,
        deployment_percents=cfg.deployment_percents,
        key_arn=key.key_arn,
        vpc_id=network.vpc_id,
        public_subnet_ids=network.public_subnet_ids,
        private_subnet_ids=network.private_subnet_ids,
        lb_security_group_id=network.lb_security_group_id,
        api_security_group_id=network.api_security_group_id,
        qdrant_security_group_id=network.qdrant_security_group_id,
        roles=roles.task_roles(),
        file_system_id=data.file_system_id if data else None,
        file_system_arn=data.file_system_arn if data else None,
        api_access_point_id=data.api_access_point_id if data else None,
        api_access_point_arn=data.api_access_point_arn if data else None,
        qdrant_access_point_id=data.qdrant_access_point_id if data else None,
        qdrant_access_point_arn=data.qdrant_access_point_arn if data else None,
        database_address=database.address if database else None,
        database_port=database.port if database else None,
        database_name=database.database_name if database else None,
        database_secret_arn=database.secret_arn if database else None,
        protect=cfg.storage.protect,
        openai_api_key=openai_api_key,
        # Tasks must not try to mount before the mount targets exist on the first deploy.
        storage_ready=[data] if data else [],
    ),
    with_provider,
)

monitoring = WwhdMonitoring(
    "wwhd",
    WwhdMonitoringArgs(
        config=cfg.monitoring,
        environment=cfg.environment,
        region=cfg.region,
        key_arn=key.key_arn,
        cluster_name=service.cluster_name,
        api_service_name=service.api_service_name,
        alb_arn_suffix=service.alb_arn_suffix,
        target_group_arn_suffix=service.target_group_arn_suffix,
        api_log_group_name=service.api_log_group_name,
        performance_log_group_name=service.performance_log_group_name,
        qdrant_service_name=service.qdrant_service_name,
        file_system_id=data.file_system_id if data else None,
        throughput_mode=cfg.storage.throughput_mode,
        db_instance_identifier=database.identifier if database else None,
        db_allocated_storage_gb=cfg.database.allocated_storage_gb if postgres else None,
        db_instance_class=cfg.database.instance_class if postgres else None,
        api_desired_count=cfg.service.desired_count,
        api_min_count=cfg.service.min_count,
    ),
    with_provider,
)

pulumi.export("serviceUrl", service.service_url)
pulumi.export("albDnsName", service.alb_dns_name)
pulumi.export("ecrRepositoryUrl", service.ecr_repository_url)
pulumi.export("clusterName", service.cluster_name)
pulumi.export("apiServiceName", service.api_service_name)
pulumi.export("qdrantServiceName", service.qdrant_service_name)
pulumi.export("qdrantUrl", service.qdrant_url)
pulumi.export("apiLogGroupName", service.api_log_group_name)
pulumi.export("performanceLogGroupName", service.performance_log_group_name)
pulumi.export("qdrantLogGroupName", service.qdrant_log_group_name)
pulumi.export("documentsBucketName", service.documents_bucket_name)
pulumi.export("openaiApiKeySecretArn", service.openai_api_key_secret_arn)
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
