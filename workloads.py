"""The stack's workloads as WwhdService arguments, from the validated configuration.

``__main__.py`` composes the components; this module says what runs on the platform: the API
(with Qdrant beside it as a sidecar, and the tracing daemon), the Qdrant singleton, and the
extra services of ``wwhd:services``. Components never read configuration: the functions here
turn the frozen ``StackConfig`` and the outputs of other components into typed args.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import containers as c
from components import service_iam as iam
from components.data import Writer, WwhdDataVolume
from components.database import WwhdDatabase
from components.legacy import Legacy
from components.network import ServicePorts, WwhdNetwork
from components.platform import WwhdPlatform
from components.service import (
    Deployment,
    Discovery,
    EfsVolume,
    LogGroupSpec,
    Logs,
    Route,
    Scaling,
    ServiceNetwork,
    TaskSpec,
    WwhdServiceArgs,
)
from stack_config import PERFORMANCE_LOG_SUFFIX, ExtraServiceConfig, StackConfig

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
        repository=f"wwhd-{stack}-backend",
        namespace=f"{stack}.wwhd.local",
    )


def service_ports(cfg: StackConfig) -> list[ServicePorts]:
    """What the network opens for the extra services."""
    return [ServicePorts(s.name, s.port, s.efs) for s in cfg.services]


def qdrant_url(cfg: StackConfig, names: PhysicalNames) -> str:
    """QDRANT_URL as the API sees it."""
    placement = cfg.qdrant.placement
    if placement == "service":
        return f"http://{DISCOVERY_NAME}.{names.namespace}:{c.QDRANT_PORT}"
    if placement == "sidecar":
        return f"http://localhost:{c.QDRANT_PORT}"
    return cfg.qdrant.url or ""


# --- the API --------------------------------------------------------------------------------------


def api(
    cfg: StackConfig,
    names: PhysicalNames,
    platform: WwhdPlatform,
    network: WwhdNetwork,
    data: WwhdDataVolume | None,
    database: WwhdDatabase | None,
    start_after: Sequence[pulumi.Resource],
    key_arn: pulumi.Input[str],
) -> WwhdServiceArgs:
    """The API service: the FastAPI container, Qdrant beside it when it is a sidecar, the
    X-Ray daemon when tracing is on; its permissions, routing and autoscaling."""
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
    }
    secrets: dict[str, pulumi.Input[str]] = dict(platform.secret_arns)
    if database is not None:
        # No credentials in the URL: the app reads DB_USER/DB_PASSWORD (injected from the
        # RDS-managed secret) and composes the connection.
        environment["DATABASE_URL"] = pulumi.Output.concat(
            "postgresql://", database.address, ":", database.port.apply(lambda p: str(int(p))), "/",
            database.database_name, "?sslmode=require",
        )  # fmt: skip
        secrets["DB_USER"] = pulumi.Output.concat(database.secret_arn, ":username::")
        secrets["DB_PASSWORD"] = pulumi.Output.concat(database.secret_arn, ":password::")
    else:
        environment["DATABASE_URL"] = c.SQLITE_URL
    if tracing:
        environment["AWS_XRAY_DAEMON_ADDRESS"] = f"localhost:{c.XRAY_PORT}"

    shares = c.split_task(svc.cpu, svc.memory, qdrant_sidecar=sidecar, tracing=tracing)
    api_log = c.LogTarget(names.api_log_group, region)
    containers: list[dict[str, Any]] = [
        c.api_container(
            image=platform.repository_url.apply(lambda url: c.api_image(url, cfg.images.api_tag)),
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
                image=cfg.images.qdrant,
                share=shares[c.QDRANT_CONTAINER],
                log=c.LogTarget(names.qdrant_log_group, region),
                loopback_only=True,
            )
        )
    if tracing:
        containers.append(c.xray_container(log=api_log))

    efs_volumes: list[EfsVolume] = []
    access_points: list[tuple[str, pulumi.Output[str]]] = []
    if data is not None and sqlite and data.api_access_point_id is not None:
        assert data.api_access_point_arn is not None
        efs_volumes.append(EfsVolume(c.DATA_VOLUME, data.file_system_id, data.api_access_point_id))
        access_points.append(("SqliteAccessPoint", data.api_access_point_arn))
    if data is not None and sidecar and data.qdrant_access_point_id is not None:
        assert data.qdrant_access_point_arn is not None
        efs_volumes.append(EfsVolume(c.QDRANT_VOLUME, data.file_system_id, data.qdrant_access_point_id))
        access_points.append(("QdrantAccessPoint", data.qdrant_access_point_arn))

    account = aws.get_caller_identity_output().account_id
    permissions = pulumi.Output.all(
        fs=data.file_system_arn if data is not None else None,
        aps=pulumi.Output.all(*[arn for _, arn in access_points]),
        bucket=platform.documents_bucket_arn,
        key=key_arn,
        account=account,
    ).apply(
        lambda v: iam.api_task_policy(
            file_system_arn=v["fs"],
            access_point_arns=list(zip([sid for sid, _ in access_points], v["aps"], strict=True)),
            bucket_arn=v["bucket"],
            key_arn=v["key"],
            performance_log_group_arn=f"arn:aws:logs:{region}:{v['account']}:log-group:{names.performance_log_group}",
            tracing=tracing,
            ecs_exec=svc.ecs_exec,
        )["Statement"]
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
        key_arn=key_arn,
        permissions=permissions,
        routing=Route(
            container=c.API_CONTAINER,
            port=svc.container_port,
            load_balancer_arn_suffix=lb.arn_suffix,
            listeners=lb.listeners,
            target_group=platform.default_target_group,
        ),
        deployment=Deployment(minimum_healthy, maximum, svc.health_check_grace_seconds),
        legacy=API_LEGACY,
    )


# --- Qdrant as its own service ----------------------------------------------------------------


def qdrant(
    cfg: StackConfig,
    names: PhysicalNames,
    platform: WwhdPlatform,
    network: WwhdNetwork,
    data: WwhdDataVolume,
    key_arn: pulumi.Input[str],
) -> WwhdServiceArgs:
    """Qdrant alone, one task at a time, found by the API as ``qdrant.<namespace>``."""
    q = cfg.qdrant
    assert data.qdrant_access_point_id is not None and network.qdrant_security_group_id is not None
    assert platform.namespace_id is not None
    container = c.qdrant_container(
        image=cfg.images.qdrant,
        share=c.Share(q.cpu, q.memory),
        log=c.LogTarget(names.qdrant_log_group, cfg.region),
        loopback_only=False,
    )
    return WwhdServiceArgs(
        cluster=platform.cluster,
        task=TaskSpec(
            family=f"wwhd-{pulumi.get_stack()}-qdrant",
            containers=[container],
            cpu=q.cpu,
            memory=q.memory,
            architecture=cfg.service.cpu_architecture,
            efs_volumes=[EfsVolume(c.QDRANT_VOLUME, data.file_system_id, data.qdrant_access_point_id)],
            start_after=[data],
        ),
        network=ServiceNetwork(network.private_subnet_ids, [network.qdrant_security_group_id]),
        # The only vector store: a Spot interruption is a search outage until ECS replaces it,
        # so it runs on Spot only in an all-Spot stack (dev), never by a share's chance.
        scaling=Scaling(
            desired=1, minimum=1, maximum=1, spot_percent=100 if cfg.service.spot_percent == 100 else 0
        ),
        logs=Logs(LogGroupSpec(names.qdrant_log_group, cfg.monitoring.log_retention_days)),
        key_arn=key_arn,
        permissions=pulumi.Output.all(data.file_system_arn, data.qdrant_access_point_arn).apply(
            lambda v: iam.qdrant_task_policy(v[0], v[1])["Statement"]
        ),
        discovery=Discovery(platform.namespace_id, DISCOVERY_NAME),
        # One writer on its storage: stop the old task before the new one starts.
        deployment=Deployment(minimum_healthy_percent=0, maximum_percent=100),
        legacy=QDRANT_LEGACY,
    )


# --- extra services ---------------------------------------------------------------------------


def extra(
    spec: ExtraServiceConfig,
    cfg: StackConfig,
    platform: WwhdPlatform,
    network: WwhdNetwork,
    data: WwhdDataVolume | None,
    key_arn: pulumi.Input[str],
) -> WwhdServiceArgs:
    """One entry of ``wwhd:services``."""
    stack = pulumi.get_stack()
    efs_volumes: list[EfsVolume] = []
    permissions: pulumi.Input[Sequence[dict[str, Any]]] | None = None
    if spec.efs:
        assert data is not None
        ap_id, ap_arn = data.service_access_points[spec.name]
        efs_volumes.append(EfsVolume(c.DATA_VOLUME, data.file_system_id, ap_id))
        permissions = pulumi.Output.all(data.file_system_arn, ap_arn).apply(
            lambda v: [iam.efs_statement("ServiceDirectory", v[0], v[1])]
        )
    container = c.service_container(
        name=spec.name,
        image=spec.image,
        port=spec.port,
        share=c.Share(spec.cpu, spec.memory),
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
        key_arn=key_arn,
        permissions=permissions,
        routing=route,
        deployment=Deployment(health_check_grace_seconds=cfg.service.health_check_grace_seconds),
    )


def writers(
    cfg: StackConfig,
    data: WwhdDataVolume,
    api_role_arn: pulumi.Input[str],
    qdrant_role_arn: pulumi.Input[str] | None,
    extras: Sequence[tuple[str, pulumi.Input[str]]],
) -> list[Writer]:
    """Who may mount what on the data volume: each writer's role through its access point."""
    found: list[Writer] = []
    if data.api_access_point_arn is not None:
        found.append(Writer("ApiMountsData", api_role_arn, data.api_access_point_arn))
    if data.qdrant_access_point_arn is not None:
        found.append(
            Writer("QdrantMountsQdrant", qdrant_role_arn or api_role_arn, data.qdrant_access_point_arn)
        )
    for name, role_arn in extras:
        _, ap_arn = data.service_access_points[name]
        found.append(Writer(f"Service{name.title().replace('-', '')}MountsItsDirectory", role_arn, ap_arn))
    return found
