"""WwhdService: the W.W.H.D. API (and Qdrant) on ECS Fargate behind the HTTPS load balancer."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components import containers as c
from components import service_iam as iam
from components.bucket import abort_incomplete_uploads, private_bucket
from components.load_balancer import WwhdLoadBalancer, WwhdLoadBalancerArgs
from components.roles import TaskRoles
from stack_config import (
    PERFORMANCE_LOG_SUFFIX,
    Environment,
    ImagesConfig,
    LoadBalancerConfig,
    MonitoringConfig,
    QdrantConfig,
    ServiceConfig,
)

TOKEN = "wwhd:index:WwhdService"

ECR_KEEP_IMAGES = 20
ECR_UNTAGGED_DAYS = 30
SECRET_RECOVERY_DAYS = 7
JWT_SECRET_LENGTH = 64
DOCUMENTS_NONCURRENT_DAYS = 90
# Container Insights "enabled" (cluster- and service-level metrics), not "enhanced": the alarms
# and autoscaling here read service averages, and enhanced observability bills every task- and
# container-level metric on top, a cost without a consumer in this stack.
CONTAINER_INSIGHTS = "enabled"
SCALE_IN_COOLDOWN = 300
SCALE_OUT_COOLDOWN = 60


@dataclass(frozen=True)
class WwhdServiceArgs:
    """What the service is built from: configuration sections, and the outputs of the network,
    roles, data volume and database components."""

    environment: Environment
    """``dev``, ``staging`` or ``prod``: APP_ENV and resource names."""
    region: str
    """AWS region: log driver, trust scopes, ELB log delivery."""
    service: ServiceConfig
    """``wwhd:service``: task size, counts, Spot share, architecture, app settings, and the names
    of the cluster and API log group (``physical_names``)."""
    images: ImagesConfig
    """``wwhd:images``: the API tag (or digest) in this stack's ECR repository, and the Qdrant image."""
    qdrant: QdrantConfig
    """``wwhd:qdrant``: sidecar, singleton service, or external URL."""
    load_balancer: LoadBalancerConfig
    """``wwhd:loadBalancer``: TLS, timeouts, stickiness, logs, deletion protection."""
    monitoring: MonitoringConfig
    """``wwhd:monitoring``: log retention and X-Ray tracing."""
    database_engine: Literal["sqlite", "postgres"]
    """``wwhd:database.engine``: SQLite on the API's access point, or RDS PostgreSQL."""
    deployment_percents: tuple[int, int]
    """(minimum healthy, maximum) percent of API tasks during a deploy
    (``StackConfig.deployment_percents``: 0/100 for a single writer, else 100/200)."""
    key_arn: pulumi.Input[str]
    """The stack key: ECR, logs, secrets and the documents bucket are encrypted with it."""
    vpc_id: pulumi.Input[str]
    """VPC of the target group and the Cloud Map namespace."""
    public_subnet_ids: pulumi.Input[Sequence[str]]
    """Subnets of the ALB."""
    private_subnet_ids: pulumi.Input[Sequence[str]]
    """Subnets of the tasks (no public IPs)."""
    lb_security_group_id: pulumi.Input[str]
    """The load balancer's group."""
    api_security_group_id: pulumi.Input[str]
    """The API tasks' group."""
    roles: TaskRoles
    """The roles made by ``WwhdRoles`` (``roles.task_roles()``); permissions are attached here."""
    file_system_id: pulumi.Input[str] | None = None
    """The data volume's EFS file system. Default None: only a stack with PostgreSQL and an
    external Qdrant keeps nothing on EFS."""
    file_system_arn: pulumi.Input[str] | None = None
    """Its ARN (the task roles' EFS statements). Default None, as ``file_system_id``."""
    qdrant_security_group_id: pulumi.Input[str] | None = None
    """The Qdrant service's group (``service`` placement only). Default None."""
    api_access_point_id: pulumi.Input[str] | None = None
    """The API's access point, mounted at /data (``sqlite`` only). Default None."""
    api_access_point_arn: pulumi.Input[str] | None = None
    """Its ARN (``sqlite`` only). Default None."""
    qdrant_access_point_id: pulumi.Input[str] | None = None
    """Qdrant's access point, mounted at /qdrant/storage (not ``external``). Default None."""
    qdrant_access_point_arn: pulumi.Input[str] | None = None
    """Its ARN (not ``external``). Default None."""
    database_address: pulumi.Input[str] | None = None
    """RDS endpoint address (``postgres`` only). Default None."""
    database_port: pulumi.Input[int] | None = None
    """RDS port (``postgres`` only). Default None."""
    database_name: pulumi.Input[str] | None = None
    """Database created in the instance (``postgres`` only). Default None."""
    database_secret_arn: pulumi.Input[str] | None = None
    """The RDS-managed master secret (JSON with username and password; ``postgres`` only).
    Default None."""
    protect: bool = False
    """Protect the documents bucket from deletion (pass ``storage.protect``; on in prod).
    Default False."""
    openai_api_key: pulumi.Input[str] | None = None
    """The OpenAI key (an encrypted stack config value). Default None: the secret is created
    empty and the operator sets its value (``aws secretsmanager put-secret-value``); tasks
    cannot start until then."""
    jwt_secret: pulumi.Input[str] | None = None
    """The JWT signing secret. Default None: 64 random characters generated at deploy time
    (kept, encrypted, in the Pulumi state)."""
    storage_ready: Sequence[pulumi.Resource] = ()
    """What must exist before a task mounts EFS (the data volume component, whose mount
    targets and file system policy are its children). Default: nothing."""

    def __post_init__(self) -> None:
        problems = []
        placement = self.qdrant.placement
        if self.database_engine == "sqlite" and (
            self.api_access_point_id is None or self.api_access_point_arn is None
        ):
            problems.append("api_access_point_id/arn: required when database_engine is sqlite")
        if self.database_engine == "postgres" and None in (
            self.database_address,
            self.database_port,
            self.database_name,
            self.database_secret_arn,
        ):
            problems.append(
                "database_address/port/name/secret_arn: required when database_engine is postgres"
            )
        if placement != "external" and (
            self.qdrant_access_point_id is None or self.qdrant_access_point_arn is None
        ):
            problems.append(f"qdrant_access_point_id/arn: required when qdrant.placement is {placement}")
        if placement == "service":
            if self.qdrant_security_group_id is None:
                problems.append("qdrant_security_group_id: required when qdrant.placement is service")
            if self.roles.qdrant_task_role_name is None or self.roles.qdrant_execution_role_name is None:
                problems.append("roles.qdrant_*: WwhdRoles must be built with qdrant_service=True")
        uses_efs = self.database_engine == "sqlite" or placement != "external"
        if uses_efs and (self.file_system_id is None or self.file_system_arn is None):
            problems.append("file_system_id/arn: required when SQLite or Qdrant keeps data on EFS")
        if placement == "external" and self.qdrant.url is None:
            problems.append("qdrant.url: required when qdrant.placement is external")
        if problems:
            raise ValueError("invalid WwhdServiceArgs: " + "; ".join(problems))


class WwhdService(pulumi.ComponentResource):
    """The API on Fargate behind the ALB, Qdrant beside it, as its own singleton service or
    outside AWS, and everything they need: image repository, cluster, secrets, documents
    bucket, log groups, task permissions and autoscaling.

    Credentials reach containers only through ``secrets`` (Secrets Manager ``valueFrom``),
    never as plain environment. Every role permission names the exact ARNs created here or
    handed in; only X-Ray and the ECS Exec channel, which AWS does not scope, use ``*``.
    """

    service_url: pulumi.Output[str]
    """Where clients reach the API (https://<domain>, https://<alb dns> or, dev, http://<alb dns>)."""
    alb_dns_name: pulumi.Output[str]
    """The ALB's DNS name."""
    alb_arn_suffix: pulumi.Output[str]
    """LoadBalancer dimension of the ALB metrics."""
    target_group_arn_suffix: pulumi.Output[str]
    """TargetGroup dimension of the target group metrics."""
    ecr_repository_url: pulumi.Output[str]
    """Push the API image here, tagged as ``images.apiTag``."""
    cluster_name: pulumi.Output[str]
    """The ECS cluster (ClusterName dimension)."""
    api_service_name: pulumi.Output[str]
    """The API's ECS service (ServiceName dimension)."""
    qdrant_service_name: pulumi.Output[str] | None
    """The Qdrant ECS service (``service`` placement only, else None)."""
    qdrant_url: pulumi.Output[str]
    """QDRANT_URL as the API sees it."""
    api_log_group_name: pulumi.Output[str]
    """Log group of the API task's containers."""
    performance_log_group_name: pulumi.Output[str]
    """Log group of the API's performance records (seed 000)."""
    qdrant_log_group_name: pulumi.Output[str] | None
    """Log group of Qdrant (None when external)."""
    documents_bucket_name: pulumi.Output[str]
    """The documents bucket (seed 003)."""
    openai_api_key_secret_arn: pulumi.Output[str]
    """The secret holding OPENAI_API_KEY (the operator fills it when no config value is given)."""
    task_definition_arn: pulumi.Output[str]
    """The API task definition revision the service runs."""

    def __init__(self, name: str, args: WwhdServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TOKEN, name, None, opts)
        self._name = name
        self._args = args
        stack = pulumi.get_stack()
        svc, placement = args.service, args.qdrant.placement
        child = pulumi.ResourceOptions(parent=self)

        names = physical_names(svc, stack)
        repository = self._repository(name, stack)
        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=names.cluster,
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value=CONTAINER_INSIGHTS)],
            opts=child,
        )
        strategy = [
            aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                capacity_provider=s.capacity_provider, weight=s.weight, base=s.base
            )
            for s in capacity_provider_strategy(svc.spot_percent, svc.on_demand_base)
        ]
        providers = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity",
            cluster_name=cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategies=strategy,
            opts=child,
        )

        api_logs = self._log_group(
            f"{name}-api-logs", names.api_log_group, args.monitoring.log_retention_days
        )
        perf_logs = self._log_group(
            f"{name}-performance-logs",
            names.performance_log_group,
            args.monitoring.performance_log_retention_days,
        )
        qdrant_logs = (
            None
            if placement == "external"
            else self._log_group(
                f"{name}-qdrant-logs", f"/ecs/wwhd-qdrant-{stack}", args.monitoring.log_retention_days
            )
        )

        secrets = self._secrets(name, stack)
        bucket = self._documents_bucket(name)

        lb = WwhdLoadBalancer(
            f"{name}-lb",
            WwhdLoadBalancerArgs(
                config=args.load_balancer,
                region=args.region,
                vpc_id=args.vpc_id,
                public_subnet_ids=args.public_subnet_ids,
                security_group_id=args.lb_security_group_id,
                container_port=svc.container_port,
            ),
            opts=child,
        )

        qdrant_service = None
        if placement == "service":
            namespace_name = f"{stack}.wwhd.local"
            qdrant_url: pulumi.Output[str] = pulumi.Output.from_input(
                f"http://{c.QDRANT_CONTAINER}.{namespace_name}:{c.QDRANT_PORT}"
            )
            assert qdrant_logs is not None
            qdrant_service = self._qdrant_service(
                name, stack, namespace_name, cluster, providers, qdrant_logs
            )
        elif placement == "sidecar":
            qdrant_url = pulumi.Output.from_input(f"http://localhost:{c.QDRANT_PORT}")
        else:
            qdrant_url = pulumi.Output.from_input(args.qdrant.url or "")

        # --- permissions, attached to the roles WwhdRoles made --------------------------------
        managed = aws.iam.RolePolicyAttachment(
            f"{name}-execution-managed",
            role=args.roles.execution_role_name,
            policy_arn=iam.EXECUTION_MANAGED_POLICY,
            opts=child,
        )
        secret_arns: list[pulumi.Input[str]] = list(secrets.values())
        if args.database_engine == "postgres" and args.database_secret_arn is not None:
            # Injected as DB_USER/DB_PASSWORD by JSON key (see _api_containers).
            secret_arns.append(args.database_secret_arn)
        execution_policy = aws.iam.RolePolicy(
            f"{name}-execution",
            role=args.roles.execution_role_name,
            policy=pulumi.Output.all(args.key_arn, *secret_arns).apply(
                lambda v: json.dumps(iam.execution_policy(v[1:], v[0]))
            ),
            opts=child,
        )
        access_points: list[tuple[str, pulumi.Input[str]]] = []
        if args.database_engine == "sqlite" and args.api_access_point_arn is not None:
            access_points.append(("SqliteAccessPoint", args.api_access_point_arn))
        if placement == "sidecar" and args.qdrant_access_point_arn is not None:
            access_points.append(("QdrantAccessPoint", args.qdrant_access_point_arn))
        task_policy = aws.iam.RolePolicy(
            f"{name}-api-task",
            role=args.roles.api_task_role_name,
            policy=pulumi.Output.all(
                fs=args.file_system_arn,
                aps=pulumi.Output.all(*[arn for _, arn in access_points]),
                bucket=bucket.arn,
                key=args.key_arn,
                perf=perf_logs.arn,
            ).apply(
                lambda v: json.dumps(
                    iam.api_task_policy(
                        file_system_arn=v["fs"],
                        access_point_arns=list(zip([sid for sid, _ in access_points], v["aps"], strict=True)),
                        bucket_arn=v["bucket"],
                        key_arn=v["key"],
                        performance_log_group_arn=v["perf"],
                        tracing=args.monitoring.tracing,
                        ecs_exec=svc.ecs_exec,
                    )
                )
            ),
            opts=child,
        )

        # --- the API task and service ---------------------------------------------------------
        task_definition = aws.ecs.TaskDefinition(
            f"{name}-api",
            family=f"wwhd-{stack}-backend",
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(svc.cpu),
            memory=str(svc.memory),
            runtime_platform=runtime_platform(svc.cpu_architecture),
            execution_role_arn=args.roles.execution_role_arn,
            task_role_arn=args.roles.api_task_role_arn,
            container_definitions=self._api_containers(
                repository.repository_url, api_logs.name, qdrant_logs, qdrant_url, secrets, bucket.bucket
            ),
            volumes=self._api_volumes(),
            opts=child,
        )

        autoscaling = svc.max_count > svc.min_count
        min_healthy, maximum = args.deployment_percents
        depends: list[pulumi.Resource] = [
            *lb.listeners,
            providers,
            managed,
            execution_policy,
            task_policy,
            *args.storage_ready,
        ]
        if qdrant_service is not None:
            depends.append(qdrant_service)
        api_service = aws.ecs.Service(
            f"{name}-api",
            cluster=cluster.arn,
            task_definition=task_definition.arn,
            desired_count=svc.desired_count,
            capacity_provider_strategies=service_strategy(svc.spot_percent, svc.on_demand_base),
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.private_subnet_ids,
                security_groups=[args.api_security_group_id],
                assign_public_ip=False,
            ),
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=lb.target_group_arn,
                    container_name=c.API_CONTAINER,
                    container_port=svc.container_port,
                )
            ],
            health_check_grace_period_seconds=svc.health_check_grace_seconds,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                enable=True, rollback=True
            ),
            deployment_minimum_healthy_percent=min_healthy,
            deployment_maximum_percent=maximum,
            enable_execute_command=svc.ecs_exec,
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            wait_for_steady_state=False,
            # The target group must belong to an ALB (its listeners) before ECS attaches it;
            # the roles must hold their permissions before the first task fetches secrets.
            # Autoscaling owns the running count once it exists.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=depends,
                ignore_changes=["desired_count"] if autoscaling else None,
            ),
        )
        if autoscaling:
            self._autoscaling(name, cluster, api_service, lb)

        self.service_url = lb.url
        self.alb_dns_name = lb.dns_name
        self.alb_arn_suffix = lb.arn_suffix
        self.target_group_arn_suffix = lb.target_group_arn_suffix
        self.ecr_repository_url = repository.repository_url
        self.cluster_name = cluster.name
        self.api_service_name = api_service.name
        self.qdrant_service_name = qdrant_service.name if qdrant_service is not None else None
        self.qdrant_url = qdrant_url
        self.api_log_group_name = api_logs.name
        self.performance_log_group_name = perf_logs.name
        self.qdrant_log_group_name = qdrant_logs.name if qdrant_logs is not None else None
        self.documents_bucket_name = bucket.bucket
        self.openai_api_key_secret_arn = pulumi.Output.from_input(secrets["OPENAI_API_KEY"])
        self.task_definition_arn = task_definition.arn
        self.register_outputs(
            {
                "service_url": self.service_url,
                "alb_dns_name": self.alb_dns_name,
                "alb_arn_suffix": self.alb_arn_suffix,
                "target_group_arn_suffix": self.target_group_arn_suffix,
                "ecr_repository_url": self.ecr_repository_url,
                "cluster_name": self.cluster_name,
                "api_service_name": self.api_service_name,
                "qdrant_service_name": self.qdrant_service_name,
                "qdrant_url": self.qdrant_url,
                "api_log_group_name": self.api_log_group_name,
                "performance_log_group_name": self.performance_log_group_name,
                "qdrant_log_group_name": self.qdrant_log_group_name,
                "documents_bucket_name": self.documents_bucket_name,
                "openai_api_key_secret_arn": self.openai_api_key_secret_arn,
                "task_definition_arn": self.task_definition_arn,
            }
        )

    # --- images -------------------------------------------------------------------------------

    def _repository(self, name: str, stack: str) -> aws.ecr.Repository:
        repository = aws.ecr.Repository(
            f"{name}-api",
            name=f"wwhd-{stack}-backend",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS", kms_key=self._args.key_arn
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-api",
            repository=repository.name,
            policy=json.dumps(ecr_lifecycle_policy()),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return repository

    # --- logs, secrets, bucket -----------------------------------------------------------------

    def _log_group(self, resource: str, group: str, days: int) -> aws.cloudwatch.LogGroup:
        return aws.cloudwatch.LogGroup(
            resource,
            name=group,
            retention_in_days=days,
            kms_key_id=self._args.key_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _secrets(self, name: str, stack: str) -> dict[str, pulumi.Output[str]]:
        """Environment variable -> secret ARN, for every secret the API task injects whole (the
        RDS master secret is referenced by JSON key in the container definition instead)."""
        args = self._args
        child = pulumi.ResourceOptions(parent=self)

        def secret(key: str, description: str) -> aws.secretsmanager.Secret:
            return aws.secretsmanager.Secret(
                f"{name}-{key}",
                name=f"wwhd/{stack}/{key}",
                description=description,
                kms_key_id=args.key_arn,
                # A 7-day window to undo a deletion; 0 would delete at once. The name stays
                # reserved during the window.
                recovery_window_in_days=SECRET_RECOVERY_DAYS,
                opts=child,
            )

        openai = secret("openai-api-key", "OPENAI_API_KEY of the W.W.H.D. API (set by the operator)")
        if args.openai_api_key is not None:
            aws.secretsmanager.SecretVersion(
                f"{name}-openai-api-key",
                secret_id=openai.id,
                secret_string=pulumi.Output.secret(args.openai_api_key),
                opts=child,
            )
        jwt = secret("jwt-secret", "JWT_SECRET of the W.W.H.D. API (signs user tokens)")
        value = args.jwt_secret
        if value is None:
            value = random.RandomPassword(
                f"{name}-jwt-secret", length=JWT_SECRET_LENGTH, special=False, opts=child
            ).result
        aws.secretsmanager.SecretVersion(
            f"{name}-jwt-secret", secret_id=jwt.id, secret_string=pulumi.Output.secret(value), opts=child
        )
        found: dict[str, pulumi.Output[str]] = {"OPENAI_API_KEY": openai.arn, "JWT_SECRET": jwt.arn}

        if args.qdrant.placement == "external":
            if args.qdrant.api_key_secret_arn is not None:
                found["QDRANT_API_KEY"] = pulumi.Output.from_input(args.qdrant.api_key_secret_arn)
            else:
                found["QDRANT_API_KEY"] = secret(
                    "qdrant-api-key", "QDRANT_API_KEY of the external Qdrant (set by the operator)"
                ).arn
        return found

    def _documents_bucket(self, name: str) -> aws.s3.Bucket:
        """Private, versioned, encrypted with the stack key, TLS only (seed 003's documents)."""
        bucket, _ = private_bucket(
            f"{name}-documents",
            self,
            kms_key_arn=self._args.key_arn,
            versioned=True,
            protect=self._args.protect,
            policy=lambda arn: arn.apply(lambda a: json.dumps(iam.documents_bucket_policy(a))),
            lifecycle=aws.s3.BucketLifecycleConfigurationRuleArgs(
                # Versioning keeps overwritten documents recoverable for a while, not forever.
                id="expire-old-versions",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=DOCUMENTS_NONCURRENT_DAYS
                ),
                abort_incomplete_multipart_upload=abort_incomplete_uploads(),
            ),
        )
        return bucket

    # --- task definitions ---------------------------------------------------------------------

    def _api_volumes(self) -> list[aws.ecs.TaskDefinitionVolumeArgs]:
        args = self._args
        # A volume without a source is Fargate task storage: the writable /tmp beside a
        # read-only root file system.
        volumes = [aws.ecs.TaskDefinitionVolumeArgs(name=c.TMP_VOLUME)]
        if args.database_engine == "sqlite" and args.api_access_point_id is not None:
            volumes.append(self._efs_volume(c.DATA_VOLUME, args.api_access_point_id))
        if args.qdrant.placement == "sidecar" and args.qdrant_access_point_id is not None:
            volumes.append(self._efs_volume(c.QDRANT_VOLUME, args.qdrant_access_point_id))
        return volumes

    def _efs_volume(
        self, volume: str, access_point_id: pulumi.Input[str]
    ) -> aws.ecs.TaskDefinitionVolumeArgs:
        """TLS to EFS and IAM authorization: the task role must be allowed to mount through
        this access point, and the file system policy must admit the role."""
        assert self._args.file_system_id is not None  # WwhdServiceArgs checks it with access points
        return aws.ecs.TaskDefinitionVolumeArgs(
            name=volume,
            efs_volume_configuration=aws.ecs.TaskDefinitionVolumeEfsVolumeConfigurationArgs(
                file_system_id=self._args.file_system_id,
                # With an access point the root must be "/": the access point sets the directory.
                root_directory="/",
                transit_encryption="ENABLED",
                authorization_config=aws.ecs.TaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfigArgs(
                    access_point_id=access_point_id, iam="ENABLED"
                ),
            ),
        )

    def _api_containers(
        self,
        repository_url: pulumi.Output[str],
        api_log_group: pulumi.Output[str],
        qdrant_logs: aws.cloudwatch.LogGroup | None,
        qdrant_url: pulumi.Output[str],
        secrets: dict[str, pulumi.Output[str]],
        bucket_name: pulumi.Output[str],
    ) -> pulumi.Output[str]:
        args, svc = self._args, self._args.service
        sidecar = args.qdrant.placement == "sidecar"
        tracing = args.monitoring.tracing
        inputs: dict[str, Any] = {
            "repo": repository_url,
            "api_logs": api_log_group,
            "qdrant_logs": qdrant_logs.name if qdrant_logs is not None else None,
            "qdrant_url": qdrant_url,
            "bucket": bucket_name,
            "secrets": pulumi.Output.all(**secrets),
        }
        if args.database_engine == "postgres":
            inputs["db"] = pulumi.Output.all(
                args.database_address, args.database_port, args.database_name, args.database_secret_arn
            )

        def render(v: dict[str, Any]) -> str:
            environment = {
                "APP_ENV": c.app_env(args.environment),
                "LOG_LEVEL": svc.log_level,
                "MODEL_CHAT": svc.model_chat,
                "MODEL_EMBED": svc.model_embed,
                "QDRANT_URL": v["qdrant_url"],
                "JWT_ISSUER": svc.jwt_issuer,
                "JWT_AUDIENCE": svc.jwt_audience,
                "ALLOW_ORIGINS": ",".join(svc.allow_origins),
                "DOCUMENTS_BUCKET": v["bucket"],
            }
            secret_refs = dict(v["secrets"])
            if args.database_engine == "postgres":
                address, port, db, db_secret = v["db"]
                # No credentials in the URL: the app reads DB_USER/DB_PASSWORD (injected from
                # the RDS-managed secret, which RDS rotates) and composes the connection.
                environment["DATABASE_URL"] = f"postgresql://{address}:{int(port)}/{db}?sslmode=require"
                secret_refs["DB_USER"] = f"{db_secret}:username::"
                secret_refs["DB_PASSWORD"] = f"{db_secret}:password::"
            else:
                environment["DATABASE_URL"] = c.SQLITE_URL
            if tracing:
                environment["AWS_XRAY_DAEMON_ADDRESS"] = f"localhost:{c.XRAY_PORT}"

            shares = c.split_task(svc.cpu, svc.memory, qdrant_sidecar=sidecar, tracing=tracing)
            api_log = c.LogTarget(v["api_logs"], args.region)
            definitions = [
                c.api_container(
                    image=c.api_image(v["repo"], args.images.api_tag),
                    port=svc.container_port,
                    share=shares[c.API_CONTAINER],
                    environment=environment,
                    secrets=secret_refs,
                    log=api_log,
                    data_volume=args.database_engine == "sqlite",
                    wait_for_qdrant=sidecar,
                    ecs_exec=svc.ecs_exec,
                )
            ]
            if sidecar:
                definitions.append(
                    c.qdrant_container(
                        image=args.images.qdrant,
                        share=shares[c.QDRANT_CONTAINER],
                        log=c.LogTarget(v["qdrant_logs"], args.region),
                        loopback_only=True,
                    )
                )
            if tracing:
                definitions.append(c.xray_container(log=api_log))
            return json.dumps(definitions)

        return pulumi.Output.all(**inputs).apply(render)

    def _qdrant_service(
        self,
        name: str,
        stack: str,
        namespace_name: str,
        cluster: aws.ecs.Cluster,
        providers: aws.ecs.ClusterCapacityProviders,
        logs: aws.cloudwatch.LogGroup,
    ) -> aws.ecs.Service:
        """Qdrant alone, one task at a time, found by the API as qdrant.<stack>.wwhd.local."""
        args, q = self._args, self._args.qdrant
        roles = args.roles
        assert roles.qdrant_task_role_name is not None and roles.qdrant_execution_role_name is not None
        assert args.qdrant_access_point_id is not None and args.qdrant_access_point_arn is not None
        child = pulumi.ResourceOptions(parent=self)

        namespace = aws.servicediscovery.PrivateDnsNamespace(
            f"{name}-namespace",
            name=namespace_name,
            vpc=args.vpc_id,
            description="W.W.H.D. internal service discovery",
            opts=child,
        )
        registry = aws.servicediscovery.Service(
            f"{name}-qdrant",
            name=c.QDRANT_CONTAINER,
            dns_config=aws.servicediscovery.ServiceDnsConfigArgs(
                namespace_id=namespace.id,
                dns_records=[aws.servicediscovery.ServiceDnsConfigDnsRecordArgs(type="A", ttl=10)],
                routing_policy="MULTIVALUE",
            ),
            opts=child,
        )
        managed = aws.iam.RolePolicyAttachment(
            f"{name}-qdrant-execution-managed",
            role=roles.qdrant_execution_role_name,
            policy_arn=iam.EXECUTION_MANAGED_POLICY,
            opts=child,
        )
        task_policy = aws.iam.RolePolicy(
            f"{name}-qdrant-task",
            role=roles.qdrant_task_role_name,
            policy=pulumi.Output.all(args.file_system_arn, args.qdrant_access_point_arn).apply(
                lambda v: json.dumps(iam.qdrant_task_policy(v[0], v[1]))
            ),
            opts=child,
        )
        task_definition = aws.ecs.TaskDefinition(
            f"{name}-qdrant",
            family=f"wwhd-{stack}-qdrant",
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(q.cpu),
            memory=str(q.memory),
            runtime_platform=runtime_platform(args.service.cpu_architecture),
            execution_role_arn=roles.qdrant_execution_role_arn,
            task_role_arn=roles.qdrant_task_role_arn,
            container_definitions=logs.name.apply(
                lambda group: json.dumps(
                    [
                        c.qdrant_container(
                            image=args.images.qdrant,
                            share=c.Share(q.cpu, q.memory),
                            log=c.LogTarget(group, args.region),
                            loopback_only=False,
                        )
                    ]
                )
            ),
            volumes=[self._efs_volume(c.QDRANT_VOLUME, args.qdrant_access_point_id)],
            opts=child,
        )
        assert args.qdrant_security_group_id is not None
        return aws.ecs.Service(
            f"{name}-qdrant",
            cluster=cluster.arn,
            task_definition=task_definition.arn,
            desired_count=1,
            # The only vector store: a Spot interruption is a search outage until ECS replaces
            # it, so it runs on Spot only in an all-Spot stack (dev), never by a share's chance.
            capacity_provider_strategies=service_strategy(100 if args.service.spot_percent == 100 else 0, 0),
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.private_subnet_ids,
                security_groups=[args.qdrant_security_group_id],
                assign_public_ip=False,
            ),
            service_registries=aws.ecs.ServiceServiceRegistriesArgs(registry_arn=registry.arn),
            # One writer on its storage: stop the old task before the new one starts.
            deployment_minimum_healthy_percent=0,
            deployment_maximum_percent=100,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                enable=True, rollback=True
            ),
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            wait_for_steady_state=False,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[providers, managed, task_policy, *self._args.storage_ready]
            ),
        )

    # --- autoscaling --------------------------------------------------------------------------

    def _autoscaling(
        self, name: str, cluster: aws.ecs.Cluster, service: aws.ecs.Service, lb: WwhdLoadBalancer
    ) -> None:
        """Target tracking on CPU, memory and requests per task (seed 000)."""
        svc = self._args.service
        child = pulumi.ResourceOptions(parent=self)
        target = aws.appautoscaling.Target(
            f"{name}-api",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", cluster.name, "/", service.name),
            min_capacity=svc.min_count,
            max_capacity=svc.max_count,
            opts=child,
        )

        def track(
            suffix: str, metric: str, value: int, label: pulumi.Input[str] | None = None
        ) -> aws.appautoscaling.Policy:
            return aws.appautoscaling.Policy(
                f"{name}-api-{suffix}",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                    target_value=value,
                    scale_in_cooldown=SCALE_IN_COOLDOWN,
                    scale_out_cooldown=SCALE_OUT_COOLDOWN,
                    predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type=metric, resource_label=label
                    ),
                ),
                opts=child,
            )

        track("cpu", "ECSServiceAverageCPUUtilization", svc.cpu_target_percent)
        track("memory", "ECSServiceAverageMemoryUtilization", svc.memory_target_percent)
        track(
            "requests",
            "ALBRequestCountPerTarget",
            svc.requests_per_target,
            pulumi.Output.concat(lb.arn_suffix, "/", lb.target_group_arn_suffix),
        )


# --- pure helpers (tested without mocks) -------------------------------------------------------


@dataclass(frozen=True)
class PhysicalNames:
    """The AWS names of the service's resources that cannot be renamed in place."""

    cluster: str
    """The ECS cluster."""
    api_log_group: str
    """The API task's log group."""
    performance_log_group: str
    """The performance records' log group, below the API's."""


def physical_names(service: ServiceConfig, stack: str) -> PhysicalNames:
    """Names from ``wwhd:service.clusterName`` and ``.logGroupName``, or the stack's defaults.

    Pinned rather than auto-named so that ``pulumi import`` can adopt existing resources: a
    cluster or log group whose name differs from the adopted one is replaced on the next update."""
    api_logs = service.log_group_name or f"/ecs/wwhd-backend-{stack}"
    return PhysicalNames(
        cluster=service.cluster_name or f"wwhd-{stack}",
        api_log_group=api_logs,
        performance_log_group=api_logs + PERFORMANCE_LOG_SUFFIX,
    )


@dataclass(frozen=True)
class ProviderShare:
    """One entry of an ECS capacity provider strategy."""

    capacity_provider: Literal["FARGATE", "FARGATE_SPOT"]
    weight: int
    base: int | None = None

    def api(self) -> dict[str, Any]:
        """The entry as the ECS API spells it (``capacityProvider``, ``weight``, ``base``)."""
        out: dict[str, Any] = {"capacityProvider": self.capacity_provider, "weight": self.weight}
        return out | ({"base": self.base} if self.base is not None else {})


def capacity_provider_strategy(spot_percent: int, on_demand_base: int) -> list[ProviderShare]:
    """The capacity provider strategy for a Spot share above an on-demand base.

    ECS rules: only one provider may carry a base; weights are 0-1000 and at least one is
    above 0. ``base`` tasks run on FARGATE first; the rest splits by weight."""
    if not 0 <= spot_percent <= 100 or on_demand_base < 0:
        raise ValueError(
            f"spot_percent must be 0-100 and on_demand_base >= 0, got {spot_percent}, {on_demand_base}"
        )
    base = on_demand_base or None
    if spot_percent == 0:
        return [ProviderShare("FARGATE", 1, base)]
    if spot_percent == 100:
        # A base on FARGATE with weight 0: those tasks stay on-demand, every other goes to Spot.
        return ([ProviderShare("FARGATE", 0, base)] if base else []) + [ProviderShare("FARGATE_SPOT", 1)]
    divisor = math.gcd(spot_percent, 100 - spot_percent)
    return [
        ProviderShare("FARGATE", (100 - spot_percent) // divisor, base),
        ProviderShare("FARGATE_SPOT", spot_percent // divisor),
    ]


def service_strategy(
    spot_percent: int, on_demand_base: int
) -> list[aws.ecs.ServiceCapacityProviderStrategyArgs]:
    return [
        aws.ecs.ServiceCapacityProviderStrategyArgs(
            capacity_provider=s.capacity_provider, weight=s.weight, base=s.base
        )
        for s in capacity_provider_strategy(spot_percent, on_demand_base)
    ]


def runtime_platform(architecture: str) -> aws.ecs.TaskDefinitionRuntimePlatformArgs:
    """Fargate's platform: the images must exist for this architecture (qdrant/qdrant and the
    X-Ray daemon publish amd64 and arm64)."""
    return aws.ecs.TaskDefinitionRuntimePlatformArgs(
        cpu_architecture={"x86_64": "X86_64", "arm64": "ARM64"}[architecture],
        operating_system_family="LINUX",
    )


def ecr_lifecycle_policy() -> dict[str, Any]:
    """Untagged images go after 30 days; of the rest, the newest 20 stay (seed 000).

    ECR evaluates rules by priority and a ``tagStatus: any`` rule must come last."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Expire untagged images after {ECR_UNTAGGED_DAYS} days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": ECR_UNTAGGED_DAYS,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep the last {ECR_KEEP_IMAGES} images",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": ECR_KEEP_IMAGES,
                },
                "action": {"type": "expire"},
            },
        ]
    }
