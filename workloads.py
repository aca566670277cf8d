"""The stack's components as typed arguments, from the validated configuration.

``__main__.py`` composes the components; this module says what each is given: the network,
data volume, database and platform beneath the services; what runs on the platform (the API
with Qdrant beside it as a sidecar and the tracing daemon, the Qdrant singleton on Fargate or
its own host, the extra services of ``wwhd:services``); what the monitoring watches and what
the stack exports. Components never read configuration: the functions here turn the frozen
``StackConfig`` and the outputs of other components into typed args.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pulumi
import pulumi_aws as aws

from components import containers as c
from components import service_iam as iam
from components.backup import BackupPolicy
from components.container_host import WwhdContainerHost, WwhdContainerHostArgs
from components.data import Writer, WwhdDataVolume, WwhdDataVolumeArgs
from components.database import POSTGRES_PORT, WwhdDatabase, WwhdDatabaseArgs
from components.legacy import Legacy
from components.monitoring import WatchedHost, WatchedService, WwhdMonitoringArgs
from components.network import ServicePorts, WwhdNetwork, WwhdNetworkArgs
from components.platform import (
    PlatformNetwork,
    PlatformSecrets,
    PullThroughCache,
    WwhdPlatform,
    WwhdPlatformArgs,
)
from components.service import (
    Deployment,
    Discovery,
    Ec2Placement,
    EfsVolume,
    Encryption,
    LogGroupSpec,
    Logs,
    Permissions,
    Route,
    Scaling,
    ServiceNetwork,
    TaskSpec,
    WwhdService,
    WwhdServiceArgs,
)
from stack_config import PERFORMANCE_LOG_SUFFIX, ExtraServiceConfig, StackConfig, read_secret

# Before the split (issue 16) the API, Qdrant and everything they share were children of one
# WwhdService "wwhd", and their roles of WwhdRoles "wwhd": every child of the new components is
# aliased under both, and the few whose names changed say so.
OLD_PARENTS = ("wwhd:index:WwhdService::wwhd", "wwhd:index:WwhdRoles::wwhd")
PLATFORM_LEGACY = Legacy(parents=OLD_PARENTS[:1])
API_LEGACY = Legacy(
    parents=OLD_PARENTS,
    names={
        "wwhd-api-execution": "wwhd-execution",
        "wwhd-api-execution-managed": "wwhd-execution-managed",
        "wwhd-api-performance-logs": "wwhd-performance-logs",
        "wwhd-api-qdrant-logs": "wwhd-qdrant-logs",
    },
)
QDRANT_LEGACY = Legacy(parents=OLD_PARENTS)

DISCOVERY_NAME = "qdrant"
KEEP_ALIVE_MARGIN_SECONDS = 5


@dataclass(frozen=True)
class PhysicalNames:
    """The AWS names of the stack's resources that cannot be renamed in place."""

    cluster: str
    """The ECS cluster."""
    api_log_group: str
    """The API task's log group."""
    performance_log_group: str
    """The performance records' log group, below the API's."""
    qdrant_log_group: str
    """Qdrant's log group."""
    repository: str
    """The API image repository."""
    namespace: str
    """The Cloud Map namespace."""


def physical_names(cfg: StackConfig, stack: str) -> PhysicalNames:
    """Names from ``wwhd:service.clusterName`` and ``.logGroupName``, or the stack's defaults.

    Pinned rather than auto-named so that ``pulumi import`` can adopt existing resources: a
    cluster or log group whose name differs from the adopted one is replaced on the next update."""
    svc = cfg.service
    api_logs = svc.log_group_name or f"/ecs/wwhd-backend-{stack}"
    return PhysicalNames(
        cluster=svc.cluster_name or f"wwhd-{stack}",
        api_log_group=api_logs,
        performance_log_group=api_logs + PERFORMANCE_LOG_SUFFIX,
        qdrant_log_group=f"/ecs/wwhd-qdrant-{stack}",
        repository=cfg.images.repository_name or f"wwhd/{stack}/api",
        namespace=f"{stack}.wwhd.local",
    )


BOUNDARY_POLICY = "wwhd-workload-boundary"
"""The permissions boundary the bootstrap project creates (bootstrap/wwhd_bootstrap/boundary.py)."""


def boundary_arn(provider: pulumi.ProviderResource) -> pulumi.Output[str]:
    """The boundary's ARN, formed from its name, the partition and the account."""
    invoke = pulumi.InvokeOptions(provider=provider)
    partition = aws.get_partition_output(opts=invoke).partition
    account = aws.get_caller_identity_output(opts=invoke).account_id
    return pulumi.Output.all(partition, account).apply(
        lambda v: f"arn:{v[0]}:iam::{v[1]}:policy/{BOUNDARY_POLICY}"
    )


@dataclass(frozen=True)
class Foundation:
    """What the components above the network are built on: the validated configuration, the
    pinned names, the stack key, the roles' boundary and the network."""

    cfg: StackConfig
    names: PhysicalNames
    encryption: Encryption
    """The stack key, by ARN and alias."""
    boundary: pulumi.Input[str]
    """ARN of the permissions boundary every role carries (``boundary_arn``)."""
    network: WwhdNetwork

    @cached_property
    def backups(self) -> BackupPolicy:
        """The backup policy of ``wwhd:storage``, shared by the data volume and the Qdrant host."""
        cfg, storage = self.cfg, self.cfg.storage
        return BackupPolicy(
            region=cfg.region,
            key_arn=self.encryption.key_arn,
            retention_days=storage.backup_retention_days,
            copy_region=storage.backup_copy_region,
            protect=storage.protect,
            permissions_boundary=self.boundary,
            tags=cfg.stack_tags,
        )


# --- beneath the services -------------------------------------------------------------------


def network_args(
    cfg: StackConfig, key_arn: pulumi.Input[str], boundary: pulumi.Input[str]
) -> WwhdNetworkArgs:
    """The VPC and a security group for each thing that listens or mounts: what the
    configuration places where decides which groups exist and what they admit."""
    placement = cfg.qdrant.placement
    return WwhdNetworkArgs(
        config=cfg.network,
        region=cfg.region,
        key_arn=key_arn,
        container_port=cfg.service.container_port,
        https=cfg.load_balancer.https,
        efs=cfg.uses_efs,
        api_efs=not cfg.postgres or placement == "sidecar",
        qdrant_service=placement in ("service", "instance"),
        qdrant_efs=placement == "service",
        qdrant_host=placement == "instance",
        postgres=cfg.postgres,
        flow_log_retention_days=cfg.monitoring.log_retention_days,
        services=[ServicePorts(s.name, s.port, s.efs) for s in cfg.services],
        permissions_boundary=boundary,
    )


def data_args(base: Foundation) -> WwhdDataVolumeArgs:
    """The file system of SQLite, Qdrant (sidecar or service) and the services with a directory."""
    cfg, network = base.cfg, base.network
    assert network.efs_security_group_id is not None, "the network makes the group when cfg.uses_efs"
    return WwhdDataVolumeArgs(
        storage=cfg.storage,
        key_arn=base.encryption.key_arn,
        private_subnet_ids=network.private_subnet_ids,
        subnet_count=network.private_subnet_count,
        efs_security_group_id=network.efs_security_group_id,
        backups=base.backups,
        sqlite=not cfg.postgres,
        qdrant_on_efs=cfg.qdrant_on_efs,
        service_directories=cfg.efs_services,
    )


def database_args(base: Foundation) -> WwhdDatabaseArgs:
    """The RDS PostgreSQL instance of ``wwhd:database``."""
    cfg, network = base.cfg, base.network
    assert network.db_security_group_id is not None, "the network makes the group when cfg.postgres"
    return WwhdDatabaseArgs(
        config=cfg.database,
        key_arn=base.encryption.key_arn,
        private_subnet_ids=network.private_subnet_ids,
        db_security_group_id=network.db_security_group_id,
        log_retention_days=cfg.monitoring.log_retention_days,
        permissions_boundary=base.boundary,
    )


def platform_args(base: Foundation) -> WwhdPlatformArgs:
    """The cluster, load balancer, registry, shared secrets and discovery namespace."""
    cfg, names, network = base.cfg, base.names, base.network
    placement, images = cfg.qdrant.placement, cfg.images
    return WwhdPlatformArgs(
        region=cfg.region,
        key_arn=base.encryption.key_arn,
        cluster_name=names.cluster,
        repository_name=names.repository,
        network=PlatformNetwork(network.vpc_id, network.public_subnet_ids, network.lb_security_group_id),
        load_balancer=cfg.load_balancer,
        default_port=cfg.service.container_port,
        spot_percent=cfg.service.spot_percent,
        on_demand_base=cfg.service.on_demand_base,
        secrets=PlatformSecrets(
            openai_api_key=read_secret("openaiApiKey"),
            qdrant_api_key=placement == "external",
            qdrant_api_key_arn=cfg.qdrant.api_key_secret_arn,
        ),
        pull_through_cache=PullThroughCache(images.docker_hub_credential_arn)
        if images.pull_through_cache and images.docker_hub_credential_arn
        else None,
        protect=cfg.storage.protect,
        discovery_namespace=names.namespace if placement in ("service", "instance") else None,
        legacy=PLATFORM_LEGACY,
    )


def qdrant_host_args(base: Foundation) -> WwhdContainerHostArgs:
    """Qdrant's container instance (``placement: instance``): its storage on an EBS volume, as
    Qdrant does not support network file systems; the host is the volume's, in the AZ of its
    subnet."""
    cfg, network, encryption = base.cfg, base.network, base.encryption
    q = cfg.qdrant
    assert network.qdrant_host_security_group_id is not None, "the network makes it for placement instance"
    return WwhdContainerHostArgs(
        cluster_name=base.names.cluster,
        subnet_id=network.private_subnet_ids.apply(lambda ids: ids[q.subnet_index]),
        availability_zone=network.private_subnet_azs.apply(lambda azs: azs[q.subnet_index]),
        security_group_ids=[network.qdrant_host_security_group_id],
        key_arn=encryption.key_arn,
        key_alias=encryption.key_alias,
        permissions_boundary=base.boundary,
        backups=base.backups,
        instance_type=q.instance_type,
        architecture=q.host_architecture,
        image_id=q.ami_id,
        volume_gb=q.volume_gb,
        tags=cfg.stack_tags,
    )


def qdrant_url(cfg: StackConfig, names: PhysicalNames) -> str:
    """QDRANT_URL as the API sees it."""
    placement = cfg.qdrant.placement
    if placement in ("service", "instance"):
        return f"http://{DISCOVERY_NAME}.{names.namespace}:{c.QDRANT_PORT}"
    if placement == "sidecar":
        return f"http://localhost:{c.QDRANT_PORT}"
    return cfg.qdrant.url or ""


# --- images ---------------------------------------------------------------------------------------

DOCKER_HUB_HOSTS = ("docker.io", "registry-1.docker.io", "index.docker.io")


def cached_reference(reference: str, registry: str, prefixes: dict[str, str]) -> str:
    """The reference through the stack's pull-through cache when its registry has one:
    ``qdrant/qdrant:v1.16.2`` -> ``<registry>/<prefix>/qdrant/qdrant:v1.16.2`` (Docker Hub's
    official images live under ``library/``); anything else is returned as it is."""
    first, slash, rest = reference.partition("/")
    host_given = bool(slash) and ("." in first or ":" in first or first == "localhost")
    host, path = (first, rest) if host_given else ("docker.io", reference)
    if host in DOCKER_HUB_HOSTS:
        host, path = "docker.io", path if "/" in path.split(":", 1)[0].split("@", 1)[0] else f"library/{path}"
    prefix = prefixes.get(host)
    return f"{registry}/{prefix}/{path}" if prefix else reference


def image(platform: WwhdPlatform, reference: str) -> pulumi.Output[str]:
    """A third-party image as tasks pull it: through the cache, or as given."""
    return platform.registry.apply(
        lambda registry: cached_reference(reference, registry, platform.cache_prefixes)
    )


# --- the API --------------------------------------------------------------------------------------


def keep_alive_seconds(idle_timeout: int) -> int:
    """How long the API keeps an idle connection open: longer than the load balancer does, so
    the load balancer always closes first. If the server closed first, the load balancer could
    send the next request into a socket that is closing and answer it with a 502."""
    return idle_timeout + KEEP_ALIVE_MARGIN_SECONDS


def api(
    base: Foundation,
    platform: WwhdPlatform,
    data: WwhdDataVolume | None,
    database: WwhdDatabase | None,
    start_after: Sequence[pulumi.Resource],
) -> WwhdServiceArgs:
    """The API service: the FastAPI container, Qdrant beside it when it is a sidecar, the
    OpenTelemetry collector when tracing is on; its permissions, routing and autoscaling."""
    cfg, names, network, encryption = base.cfg, base.names, base.network, base.encryption
    svc, region = cfg.service, cfg.region
    sidecar = cfg.qdrant.placement == "sidecar"
    tracing = cfg.monitoring.tracing
    sqlite = cfg.database.engine == "sqlite"

    environment: dict[str, pulumi.Input[str]] = {
        "APP_ENV": c.app_env(cfg.environment),
        "LOG_LEVEL": svc.log_level,
        "MODEL_CHAT": svc.model_chat,
        "MODEL_EMBED": svc.model_embed,
        "QDRANT_URL": qdrant_url(cfg, names),
        "JWT_ISSUER": svc.jwt_issuer,
        "JWT_AUDIENCE": svc.jwt_audience,
        "ALLOW_ORIGINS": ",".join(svc.allow_origins),
        "DOCUMENTS_BUCKET": platform.documents_bucket_name,
        # uvicorn reads its CLI options from UVICORN_* variables (--timeout-keep-alive).
        "UVICORN_TIMEOUT_KEEP_ALIVE": str(keep_alive_seconds(cfg.load_balancer.idle_timeout)),
    }
    secrets: dict[str, pulumi.Input[str]] = dict(platform.secret_references)
    if database is not None:
        # IAM database authentication as the app's own user: the app signs a token for each new
        # connection with its task role, so no password is injected and none rotates under a
        # running task. The host comes through a parameter, named before the instance exists.
        secrets["DB_HOST"] = database.host_parameter_name
        environment |= {
            "DB_PORT": str(POSTGRES_PORT),
            "DB_NAME": cfg.database.name,
            "DB_USER": cfg.database.app_user,
            "DB_AUTH": "iam",
            "DB_SSLMODE": "require",
            "AWS_REGION": region,
        }
    else:
        environment["DATABASE_URL"] = c.SQLITE_URL
    if tracing:
        environment["AWS_XRAY_DAEMON_ADDRESS"] = f"localhost:{c.XRAY_PORT}"
        environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://localhost:{c.OTLP_HTTP_PORT}"
        environment["AWS_XRAY_TRACING_NAME"] = environment["OTEL_SERVICE_NAME"] = c.TRACE_SERVICE_NAME

    shares = c.split_task(svc.cpu, svc.memory, qdrant_sidecar=sidecar, tracing=tracing)
    api_log = c.LogTarget(names.api_log_group, region)
    repository = names.repository
    containers: list[dict[str, Any]] = [
        c.api_container(
            image=platform.registry.apply(
                lambda registry: c.api_image(f"{registry}/{repository}", cfg.images.api_tag)
            ),
            port=svc.container_port,
            share=shares[c.API_CONTAINER],
            environment=environment,
            secrets=secrets,
            log=api_log,
            data_volume=sqlite,
            wait_for_qdrant=sidecar,
            ecs_exec=svc.ecs_exec,
        )
    ]
    if sidecar:
        containers.append(
            c.qdrant_container(
                image=image(platform, cfg.images.qdrant),
                share=shares[c.QDRANT_CONTAINER],
                log=c.LogTarget(names.qdrant_log_group, region),
                loopback_only=True,
            )
        )
    if tracing:
        containers.append(c.collector_container(image=image(platform, cfg.images.collector), log=api_log))

    efs_volumes: list[EfsVolume] = []
    if data is not None and sqlite and data.api_access_point_id is not None:
        efs_volumes.append(EfsVolume(c.DATA_VOLUME, data.file_system_id, data.api_access_point_id))
    if data is not None and sidecar and data.qdrant_access_point_id is not None:
        efs_volumes.append(EfsVolume(c.QDRANT_VOLUME, data.file_system_id, data.qdrant_access_point_id))

    scope = aws.get_caller_identity_output().account_id.apply(
        lambda a: iam.Scope(region, a, encryption.key_alias)
    )
    statements = pulumi.Output.all(scope, platform.documents_bucket_name).apply(
        lambda v: iam.api_task_statements(
            v[0],
            bucket=v[1],
            performance_log_group=names.performance_log_group,
            tracing=tracing,
            ecs_exec=svc.ecs_exec,
            database_user=cfg.database.app_user if database is not None else None,
        )
    )

    extra_logs = {
        "performance": LogGroupSpec(
            names.performance_log_group, cfg.monitoring.performance_log_retention_days
        )
    }
    if sidecar:
        extra_logs["qdrant"] = LogGroupSpec(names.qdrant_log_group, cfg.monitoring.log_retention_days)
    minimum_healthy, maximum = cfg.deployment_percents
    lb = platform.load_balancer
    return WwhdServiceArgs(
        cluster=platform.cluster,
        task=TaskSpec(
            family=f"wwhd-{pulumi.get_stack()}-backend",
            containers=containers,
            cpu=svc.cpu,
            memory=svc.memory,
            architecture=svc.cpu_architecture,
            efs_volumes=efs_volumes,
            # Fargate task storage: the writable /tmp beside a read-only root file system.
            scratch_volumes=[c.TMP_VOLUME],
            start_after=start_after,
            ecs_exec=svc.ecs_exec,
        ),
        network=ServiceNetwork(network.private_subnet_ids, [network.api_security_group_id]),
        scaling=Scaling(
            desired=svc.desired_count,
            minimum=svc.min_count,
            maximum=svc.max_count,
            spot_percent=svc.spot_percent,
            on_demand_base=svc.on_demand_base,
            cpu_target_percent=svc.cpu_target_percent,
            memory_target_percent=svc.memory_target_percent,
            requests_per_target=svc.requests_per_target,
        ),
        logs=Logs(LogGroupSpec(names.api_log_group, cfg.monitoring.log_retention_days), extra_logs),
        encryption=encryption,
        permissions=Permissions(
            task=statements,
            boundary_arn=base.boundary,
            cache_prefixes=tuple(platform.cache_prefixes.values()),
        ),
        routing=Route(
            container=c.API_CONTAINER,
            port=svc.container_port,
            load_balancer_arn_suffix=lb.arn_suffix,
            listeners=lb.listeners,
            target_group=lb.target_group,
        ),
        deployment=Deployment(minimum_healthy, maximum, svc.health_check_grace_seconds),
        legacy=API_LEGACY,
    )


# --- Qdrant as its own service ----------------------------------------------------------------


def qdrant(
    base: Foundation, platform: WwhdPlatform, storage: WwhdDataVolume | WwhdContainerHost
) -> WwhdServiceArgs:
    """Qdrant alone, one task at a time, found by the API as ``qdrant.<namespace>``: on its
    container host with its storage on the host's EBS volume (``instance``), or on Fargate with
    its storage on its EFS access point (``service``). Its task role holds nothing: Qdrant calls
    no AWS API, and the file system policy admits the role through its own access point."""
    cfg, names, network = base.cfg, base.names, base.network
    q = cfg.qdrant
    assert network.qdrant_security_group_id is not None and platform.namespace_id is not None
    on_host = isinstance(storage, WwhdContainerHost)
    container = c.qdrant_container(
        image=image(platform, cfg.images.qdrant),
        share=c.Share(q.cpu, q.memory, int(q.memory * c.QDRANT_RESERVATION_SHARE)),
        log=c.LogTarget(names.qdrant_log_group, cfg.region),
        loopback_only=False,
        snapshots=on_host,
    )
    if isinstance(storage, WwhdContainerHost):
        volume = storage.volume
        placement = {
            "efs_volumes": [],
            "ec2": Ec2Placement(
                storage.placement_constraint,
                {c.QDRANT_VOLUME: volume.storage_path, c.QDRANT_SNAPSHOTS_VOLUME: volume.snapshots_path},
            ),
        }
    else:
        assert storage.qdrant_access_point_id is not None
        placement = {
            "efs_volumes": [
                EfsVolume(c.QDRANT_VOLUME, storage.file_system_id, storage.qdrant_access_point_id)
            ]
        }
    return WwhdServiceArgs(
        cluster=platform.cluster,
        task=TaskSpec(
            family=f"wwhd-{pulumi.get_stack()}-qdrant",
            containers=[container],
            cpu=q.cpu,
            memory=q.memory,
            architecture=q.host_architecture if on_host else cfg.service.cpu_architecture,
            start_after=[storage],
            **placement,  # type: ignore[arg-type]
        ),
        network=ServiceNetwork(
            # The host's subnet: the task's network interface lives in the instance's AZ.
            network.private_subnet_ids.apply(lambda ids: [ids[q.subnet_index]])
            if on_host
            else network.private_subnet_ids,
            [network.qdrant_security_group_id],
        ),
        # The only vector store: a Spot interruption is a search outage until ECS replaces it,
        # so on Fargate it runs on Spot only in an all-Spot stack (dev), never by a share's chance.
        scaling=Scaling(
            desired=1,
            minimum=1,
            maximum=1,
            spot_percent=100 if cfg.service.spot_percent == 100 and not on_host else 0,
        ),
        logs=Logs(LogGroupSpec(names.qdrant_log_group, cfg.monitoring.log_retention_days)),
        encryption=base.encryption,
        permissions=Permissions(
            boundary_arn=base.boundary, cache_prefixes=tuple(platform.cache_prefixes.values())
        ),
        discovery=Discovery(platform.namespace_id, DISCOVERY_NAME),
        # One writer on its storage: stop the old task before the new one starts.
        deployment=Deployment(minimum_healthy_percent=0, maximum_percent=100),
        legacy=QDRANT_LEGACY,
    )


# --- extra services ---------------------------------------------------------------------------


def extra(
    base: Foundation, spec: ExtraServiceConfig, platform: WwhdPlatform, data: WwhdDataVolume | None
) -> WwhdServiceArgs:
    """One entry of ``wwhd:services``."""
    cfg, network = base.cfg, base.network
    stack = pulumi.get_stack()
    efs_volumes: list[EfsVolume] = []
    if spec.efs:
        assert data is not None
        ap_id, _ = data.service_access_points[spec.name]
        efs_volumes.append(EfsVolume(c.DATA_VOLUME, data.file_system_id, ap_id))
    container = c.service_container(
        name=spec.name,
        image=image(platform, spec.image),
        port=spec.port,
        share=c.Share(spec.cpu, spec.memory, int(spec.memory * c.API_RESERVATION_SHARE)),
        environment=spec.environment,
        secrets=spec.secrets,
        log=c.LogTarget(f"/ecs/wwhd-{stack}-{spec.name}", cfg.region),
        data_volume=spec.efs,
    )
    lb = platform.load_balancer
    route = None
    if spec.port is not None:
        route = Route(
            container=spec.name,
            port=spec.port,
            load_balancer_arn_suffix=lb.arn_suffix,
            listeners=lb.listeners,
            listener_arn=platform.rules_listener_arn,
            vpc_id=network.vpc_id,
            paths=spec.paths,
            host=spec.host,
            priority=spec.priority,
            health_check_path=spec.health_check_path,
            deregistration_delay=cfg.load_balancer.deregistration_delay,
            stickiness=cfg.load_balancer.stickiness,
        )
    return WwhdServiceArgs(
        cluster=platform.cluster,
        task=TaskSpec(
            family=f"wwhd-{stack}-{spec.name}",
            containers=[container],
            cpu=spec.cpu,
            memory=spec.memory,
            architecture=spec.architecture,
            efs_volumes=efs_volumes,
            scratch_volumes=[c.TMP_VOLUME],
            start_after=[data] if spec.efs and data is not None else [],
        ),
        network=ServiceNetwork(network.private_subnet_ids, [network.service_security_group_ids[spec.name]]),
        scaling=Scaling(
            desired=spec.desired_count,
            minimum=spec.min_count,
            maximum=spec.max_count,
            spot_percent=spec.spot_percent,
            on_demand_base=spec.on_demand_base,
            requests_per_target=cfg.service.requests_per_target if route is not None else None,
        ),
        logs=Logs(LogGroupSpec(f"/ecs/wwhd-{stack}-{spec.name}", cfg.monitoring.log_retention_days)),
        encryption=base.encryption,
        permissions=Permissions(
            boundary_arn=base.boundary, cache_prefixes=tuple(platform.cache_prefixes.values())
        ),
        routing=route,
        deployment=Deployment(health_check_grace_seconds=cfg.service.health_check_grace_seconds),
    )


def qdrant_storage(
    cfg: StackConfig, host: WwhdContainerHost | None, data: WwhdDataVolume | None
) -> WwhdContainerHost | WwhdDataVolume | None:
    """Where the Qdrant service keeps its storage: its host's volume (``instance``) or its EFS
    access point (``service``); None when there is no Qdrant service (sidecar, external)."""
    if host is not None:
        return host
    return data if cfg.qdrant.placement == "service" else None


def writers(
    cfg: StackConfig,
    data: WwhdDataVolume,
    api: WwhdService,
    qdrant: WwhdService | None,
    extras: Mapping[str, WwhdService],
) -> list[Writer]:
    """Who may mount what on the data volume: each writer's role through its access point.
    Qdrant's directory is mounted by the API's role (sidecar) or its own service's (a retained
    file system keeps the directory with no writer)."""
    placement = cfg.qdrant.placement
    qdrant_role = api if placement == "sidecar" else qdrant if placement == "service" else None
    found: list[Writer] = []
    if data.api_access_point_arn is not None:
        found.append(Writer("ApiMountsData", api.task_role.arn, data.api_access_point_arn))
    if data.qdrant_access_point_arn is not None and qdrant_role is not None:
        found.append(Writer("QdrantMountsQdrant", qdrant_role.task_role.arn, data.qdrant_access_point_arn))
    for name in cfg.efs_services:
        _, ap_arn = data.service_access_points[name]
        found.append(
            Writer(
                f"Service{name.title().replace('-', '')}MountsItsDirectory",
                extras[name].task_role.arn,
                ap_arn,
            )
        )
    return found


# --- what is watched and exported -----------------------------------------------------------


def monitoring_args(
    cfg: StackConfig,
    key_arn: pulumi.Input[str],
    platform: WwhdPlatform,
    api: WwhdService,
    qdrant: WwhdService | None,
    extras: Mapping[str, WwhdService],
    host: WwhdContainerHost | None,
    data: WwhdDataVolume | None,
    database: WwhdDatabase | None,
) -> WwhdMonitoringArgs:
    """The alarms and dashboard of every service, the host, the file system and the database."""
    watched = [
        WatchedService(
            "api",
            "API",
            api.service_name,
            target_group_arn_suffix=platform.load_balancer.target_group.arn_suffix,
            default_route=True,
            parked=cfg.service.desired_count == 0 and cfg.service.min_count == 0,
        )
    ]
    if qdrant is not None:
        watched.append(
            WatchedService("qdrant", "Qdrant", qdrant.service_name, singleton=True, impact="retrieval fails")
        )
    watched += [
        WatchedService(n, n, svc.service_name, target_group_arn_suffix=svc.target_group_arn_suffix)
        for n, svc in extras.items()
    ]
    return WwhdMonitoringArgs(
        config=cfg.monitoring,
        environment=cfg.environment,
        region=cfg.region,
        key_arn=key_arn,
        cluster_name=platform.cluster_name,
        alb_arn_suffix=platform.load_balancer.arn_suffix,
        services=watched,
        host=WatchedHost(
            host.instances.group_name,
            host.volume.free_space.namespace,
            dict(host.volume.free_space.dimensions),
        )
        if host is not None
        else None,
        api_log_group_name=api.log_group_name,
        performance_log_group_name=api.extra_log_group_names["performance"],
        file_system_id=data.file_system_id if data else None,
        throughput_mode=cfg.storage.throughput_mode,
        db_instance_identifier=database.identifier if database else None,
        db_allocated_storage_gb=cfg.database.allocated_storage_gb if database else None,
        db_instance_class=cfg.database.instance_class if database else None,
    )
