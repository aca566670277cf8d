"""WwhdService: one ECS service on the platform's cluster, and everything that is its own."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components import service_iam as iam
from components.component import WwhdComponent
from components.legacy import NONE, Legacy
from components.load_balancer import HEALTH_CHECK_PATH, TargetGroupRef, ip_target_group
from components.roles import RoleRef
from iam_document import policy_document

TOKEN = "wwhd:index:WwhdService"

SCALE_IN_COOLDOWN = 300
SCALE_OUT_COOLDOWN = 60

Architecture = Literal["x86_64", "arm64"]


# --- args ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterRef:
    """The platform's cluster, as a service needs it."""

    name: pulumi.Input[str]
    """Cluster name (the autoscaling resource id and the alarms' ClusterName)."""
    arn: pulumi.Input[str]
    """Cluster ARN (the service's ``cluster``)."""
    region: str
    """Region of the cluster: trust scope, log driver, parameter ARNs."""
    ready: Sequence[pulumi.Resource] = ()
    """What must exist before a service starts (the cluster's capacity providers)."""


@dataclass(frozen=True)
class EfsVolume:
    """An EFS access point mounted into the task, over TLS with IAM authorization."""

    name: str
    """Volume name, as the containers' ``mountPoints`` name it."""
    file_system_id: pulumi.Input[str]
    access_point_id: pulumi.Input[str]


@dataclass(frozen=True)
class Ec2Placement:
    """Run on EC2 container instances instead of Fargate: the instances that carry a custom
    attribute (``placement_constraint``), with directories of the host bind-mounted."""

    placement_constraint: str
    """A ``memberOf`` expression (``attribute:wwhd.role == qdrant``)."""
    host_volumes: Mapping[str, str] = field(default_factory=dict)
    """Volume name -> directory on the host."""


@dataclass(frozen=True)
class TaskSpec:
    """What runs: the task definition."""

    family: str
    """Task definition family."""
    containers: Sequence[Mapping[str, Any]]
    """ECS container definitions (RegisterTaskDefinition shape); values may be Inputs. Their
    ``secrets`` decide what the execution role may read."""
    cpu: int
    """Task CPU units (1024 = 1 vCPU)."""
    memory: int
    """Task memory in MiB."""
    architecture: Architecture = "x86_64"
    """CPU architecture the images are built for. Default x86_64."""
    efs_volumes: Sequence[EfsVolume] = ()
    """EFS access points the containers mount. Default: none."""
    scratch_volumes: Sequence[str] = ()
    """Task-storage volumes (Fargate ephemeral storage), e.g. a writable /tmp beside a
    read-only root. Default: none."""
    start_after: Sequence[pulumi.Resource] = ()
    """What must exist before a task starts: the mount targets of its volumes, the services
    it calls. Default: nothing."""
    ecs_exec: bool = False
    """Allow ``aws ecs execute-command`` (the task role then needs the SSM channel). Default off."""
    ec2: Ec2Placement | None = None
    """Run on EC2 container instances. Default: Fargate."""


@dataclass(frozen=True)
class ServiceNetwork:
    """Where the tasks run: private subnets, no public IP."""

    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_ids: Sequence[pulumi.Input[str]]


@dataclass(frozen=True)
class Route:
    """How the load balancer reaches the service: attach to an existing target group
    (``target_group``), or a target group of its own behind a listener rule."""

    container: str
    """The container that receives requests."""
    port: int
    """Its port (targets are task IPs)."""
    load_balancer_arn_suffix: pulumi.Input[str]
    """``app/<name>/<id>``: for request-count scaling."""
    listeners: Sequence[pulumi.Resource]
    """The load balancer's listeners: a target group must belong to one before ECS registers
    targets in it."""
    target_group: TargetGroupRef | None = None
    """Attach to this target group. Default: create one, with a rule on ``listener_arn``."""
    listener_arn: pulumi.Input[str] | None = None
    """The listener the rule is added to (when no ``target_group`` is given)."""
    vpc_id: pulumi.Input[str] | None = None
    """VPC of the new target group."""
    paths: Sequence[str] = ()
    """Path patterns of the rule."""
    host: str | None = None
    """Host header of the rule."""
    priority: int | None = None
    """Rule priority (lower wins)."""
    health_check_path: str = HEALTH_CHECK_PATH
    """What the new target group probes. Default /health."""
    deregistration_delay: int = 30
    """Seconds the load balancer drains a task before deregistering it."""
    stickiness: bool = True
    """Cookie stickiness, so SSE/WebSocket reconnects land on the same task."""

    def __post_init__(self) -> None:
        if self.target_group is None:
            missing = [k for k in ("listener_arn", "vpc_id", "priority") if getattr(self, k) is None]
            if missing or not (self.paths or self.host):
                raise ValueError(
                    "Route: a route of its own needs listener_arn, vpc_id, priority and paths or host"
                    + (f" (missing {', '.join(missing)})" if missing else "")
                )


@dataclass(frozen=True)
class Scaling:
    """How many tasks, on which capacity, and when to add more."""

    desired: int
    """Tasks at deploy time. 0 (with ``minimum`` 0) parks the service: no task runs, and no
    autoscaling exists until it is unparked."""
    minimum: int
    """Autoscaling floor."""
    maximum: int
    """Autoscaling ceiling; no autoscaling when it equals ``minimum``."""
    spot_percent: int = 0
    """Share of tasks above ``on_demand_base`` on Fargate Spot. Default 0."""
    on_demand_base: int = 0
    """Tasks always on on-demand Fargate. Default 0."""
    cpu_target_percent: int = 70
    """Target tracking on average CPU (seed 000). Default 70."""
    memory_target_percent: int = 80
    """Target tracking on average memory (seed 000). Default 80."""
    requests_per_target: int | None = 1000
    """Target tracking on requests per task per minute (routed services; seed 000). Default 1000."""

    def __post_init__(self) -> None:
        if not 0 <= self.minimum <= self.desired <= self.maximum or self.maximum < 1:
            raise ValueError(
                f"Scaling: need 0 <= minimum <= desired <= maximum and maximum >= 1, got "
                f"{self.minimum}/{self.desired}/{self.maximum}"
            )

    @property
    def autoscaling(self) -> bool:
        """Target tracking owns the count. Never for a parked service: with no task there is no
        metric to track, and while autoscaling exists the program leaves the count alone, so a
        running service set to 0 would keep its tasks. Unparked, the new scalable target moves the
        count into its range (RegisterScalableTarget does so for a new target)."""
        return self.maximum > self.minimum and self.desired > 0


@dataclass(frozen=True)
class Deployment:
    """How ECS replaces tasks on a deploy."""

    minimum_healthy_percent: int = 100
    """Share of desired tasks kept running. Default 100 (start new, then stop old)."""
    maximum_percent: int = 200
    """Ceiling during a deploy. Default 200. A single writer uses 0/100: stop, then start."""
    health_check_grace_seconds: int | None = None
    """Seconds ECS ignores load balancer health checks after a task starts (routed services)."""


@dataclass(frozen=True)
class LogGroupSpec:
    """A log group the service owns."""

    name: str
    """Physical name (pinned: a log group cannot be renamed, and its history stays with it)."""
    retention_days: int
    """Retention in a value CloudWatch accepts."""


@dataclass(frozen=True)
class Logs:
    """The service's log groups: where its containers log, and any further group it writes."""

    main: LogGroupSpec
    """The containers' group (awslogs driver)."""
    extra: Mapping[str, LogGroupSpec] = field(default_factory=dict)
    """Further groups by a short key (``performance``); child ``<name>-<key>-logs``."""


@dataclass(frozen=True)
class Discovery:
    """A Cloud Map A record per task, so peers find the service by name."""

    namespace_id: pulumi.Input[str]
    name: str
    """The record name in the namespace (``qdrant`` -> ``qdrant.<namespace>``)."""


@dataclass(frozen=True)
class Encryption:
    """The stack key, as resources name it (its ARN) and as IAM documents reach it (its alias)."""

    key_arn: pulumi.Input[str]
    """Log groups are encrypted with it."""
    key_alias: str
    """``alias/wwhd-<stack>``: the execution role decrypts injected secrets with the key that
    carries it."""


@dataclass(frozen=True)
class Permissions:
    """What the task's code may call, and the ceiling of both roles."""

    task: pulumi.Input[Sequence[Mapping[str, Any]]] | None = None
    """Statements of the task role's policy, as data. Default: none (no permission)."""
    boundary_arn: pulumi.Input[str] | None = None
    """The permissions boundary both roles carry (the bootstrap's ``wwhd-workload-boundary``).
    Default: none."""
    cache_prefixes: Sequence[str] = ()
    """Pull-through cache prefixes the images come through: the execution role may create the
    cached repositories and import into them. Default: none."""


@dataclass(frozen=True)
class WwhdServiceArgs:
    """One ECS service, grouped by what it needs."""

    cluster: ClusterRef
    """Where it runs (the platform's cluster)."""
    task: TaskSpec
    """What runs: containers, size, architecture, volumes."""
    network: ServiceNetwork
    """Subnets and security groups of the tasks."""
    scaling: Scaling
    """Counts, capacity providers and target tracking."""
    logs: Logs
    """Its log groups."""
    encryption: Encryption
    """The stack key: its log groups are encrypted with it, the secrets it injects decrypted."""
    permissions: Permissions = Permissions()
    """Task role statements, the roles' boundary, pull-through cache prefixes. Default: none."""
    routing: Route | None = None
    """Load balancer routing. Default: none (a worker, or a backend reached through discovery)."""
    discovery: Discovery | None = None
    """Cloud Map registration. Default: none."""
    deployment: Deployment = Deployment()
    """Deployment percentages and health check grace. Default 100/200."""
    legacy: Legacy = NONE
    """Where its resources lived before the component split (aliases). Default: nowhere."""


# --- the component ------------------------------------------------------------------------------


class WwhdService(WwhdComponent[WwhdServiceArgs], token=TOKEN):
    """One ECS service with its own task and execution roles, log groups, task definition,
    optional target group and listener rule, Cloud Map record and target-tracking autoscaling.

    The roles trust only this account's ECS tasks in this region. The execution role reads
    exactly the secrets the containers inject; the task role holds exactly the statements
    given. Tasks run in the given subnets without public IPs; deployments roll back when they
    fail (circuit breaker).
    """

    service_name: pulumi.Output[str]
    """The ECS service's name (the alarms' ServiceName)."""
    task_definition_arn: pulumi.Output[str]
    """The task definition revision the service runs."""
    task_role: RoleRef
    """The task role (what the application may call)."""
    execution_role_arn: pulumi.Output[str]
    """The execution role (what ECS does to start a task: pull, log, inject secrets)."""
    log_group_name: pulumi.Output[str]
    """The containers' log group."""
    extra_log_group_names: dict[str, pulumi.Output[str]]
    """The further log groups by key."""
    target_group_arn_suffix: pulumi.Output[str] | None
    """The TargetGroup dimension of its target group (routed services), else None."""

    def _build(self, name: str, args: WwhdServiceArgs) -> None:
        self._name, self._args = name, args
        legacy = args.legacy
        region = args.cluster.region
        account = aws.get_caller_identity_output(opts=self._invoke).account_id
        scope = account.apply(lambda a: iam.Scope(region, a, args.encryption.key_alias))
        permissions = args.permissions

        trust = account.apply(lambda a: json.dumps(iam.ecs_tasks_trust_policy(a, region)))
        roles = {
            kind: aws.iam.Role(
                f"{name}-{kind}",
                description=f"W.W.H.D. {name} task{' execution' if kind == 'execution' else ''}: {why}",
                assume_role_policy=trust,
                permissions_boundary=permissions.boundary_arn,
                opts=legacy.options(self, f"{name}-{kind}"),
            )
            for kind, why in (
                ("task", "what the application may call"),
                ("execution", "image pull, logs, injected secrets"),
            )
        }
        task_role, execution_role = roles["task"], roles["execution"]
        granted: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(
                f"{name}-execution-managed",
                role=execution_role.name,
                policy_arn=iam.EXECUTION_MANAGED_POLICY,
                opts=legacy.options(self, f"{name}-execution-managed"),
            )
        ]
        references = secret_references(args.task.containers)
        if references or permissions.cache_prefixes:
            granted.append(
                aws.iam.RolePolicy(
                    f"{name}-execution",
                    role=execution_role.name,
                    policy=pulumi.Output.all(scope, *references).apply(
                        lambda v: json.dumps(iam.execution_policy(v[1:], v[0], permissions.cache_prefixes))
                    ),
                    opts=legacy.options(self, f"{name}-execution"),
                )
            )
        if permissions.task is not None:
            granted.append(
                aws.iam.RolePolicy(
                    f"{name}-task",
                    role=task_role.name,
                    policy=pulumi.Output.from_input(permissions.task).apply(
                        lambda statements: json.dumps(policy_document(*statements))
                    ),
                    opts=legacy.options(self, f"{name}-task"),
                )
            )

        main_logs = self._log_group(f"{name}-logs", args.logs.main)
        extra_logs = {
            key: self._log_group(f"{name}-{key}-logs", spec) for key, spec in args.logs.extra.items()
        }

        task = args.task
        task_definition = aws.ecs.TaskDefinition(
            name,
            family=task.family,
            requires_compatibilities=["EC2" if task.ec2 is not None else "FARGATE"],
            network_mode="awsvpc",
            cpu=str(task.cpu),
            memory=str(task.memory),
            runtime_platform=runtime_platform(task.architecture),
            # ARNs formed from the roles' names (known before they exist), so a new stack's task
            # definition is judged whole; the names carry the dependency on the roles.
            execution_role_arn=role_arn(scope, execution_role),
            task_role_arn=role_arn(scope, task_role),
            container_definitions=pulumi.Output.json_dumps(list(task.containers)),
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=v) for v in task.scratch_volumes]
            + [efs_volume(v) for v in task.efs_volumes]
            + [
                aws.ecs.TaskDefinitionVolumeArgs(name=v, host_path=path)
                for v, path in (task.ec2.host_volumes.items() if task.ec2 is not None else ())
            ]
            or None,
            opts=legacy.options(self, name),
        )

        target_group = self._target_group(name, args.routing) if args.routing is not None else None
        service = self._service(name, task_definition, target_group, [*granted, main_logs])
        if args.scaling.autoscaling:
            self._autoscaling(name, service, target_group)

        self.service_name = service.name
        self.task_definition_arn = task_definition.arn
        self.task_role = RoleRef(arn=role_arn(scope, task_role), name=task_role.name)
        self.execution_role_arn = role_arn(scope, execution_role)
        self.log_group_name = main_logs.name
        self.extra_log_group_names = {key: group.name for key, group in extra_logs.items()}
        self.target_group_arn_suffix = (
            pulumi.Output.from_input(target_group.arn_suffix) if target_group is not None else None
        )

    # --- children -------------------------------------------------------------------------------

    def _log_group(self, logical: str, spec: LogGroupSpec) -> aws.cloudwatch.LogGroup:
        return aws.cloudwatch.LogGroup(
            logical,
            name=spec.name,
            retention_in_days=spec.retention_days,
            kms_key_id=self._args.encryption.key_arn,
            opts=self._args.legacy.options(self, logical),
        )

    def _target_group(self, name: str, route: Route) -> TargetGroupRef:
        if route.target_group is not None:
            return route.target_group
        legacy = self._args.legacy
        group = ip_target_group(
            name,
            port=route.port,
            vpc_id=route.vpc_id,  # type: ignore[arg-type] - Route checks it with no target_group
            health_check_path=route.health_check_path,
            deregistration_delay=route.deregistration_delay,
            stickiness=route.stickiness,
            opts=legacy.options(self, name),
        )
        conditions = []
        if route.paths:
            conditions.append(
                aws.lb.ListenerRuleConditionArgs(
                    path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=list(route.paths))
                )
            )
        if route.host:
            conditions.append(
                aws.lb.ListenerRuleConditionArgs(
                    host_header=aws.lb.ListenerRuleConditionHostHeaderArgs(values=[route.host])
                )
            )
        aws.lb.ListenerRule(
            name,
            listener_arn=route.listener_arn,  # type: ignore[arg-type] - Route checks it with no target_group
            priority=route.priority,
            conditions=conditions,
            actions=[aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=group.arn)],
            opts=legacy.options(self, name),
        )
        return group

    def _service(
        self,
        name: str,
        task_definition: aws.ecs.TaskDefinition,
        target_group: TargetGroupRef | None,
        granted: Sequence[pulumi.Resource],
    ) -> aws.ecs.Service:
        args = self._args
        route, scaling, deployment = args.routing, args.scaling, args.deployment
        registries = None
        if args.discovery is not None:
            registry = aws.servicediscovery.Service(
                name,
                name=args.discovery.name,
                dns_config=aws.servicediscovery.ServiceDnsConfigArgs(
                    namespace_id=args.discovery.namespace_id,
                    dns_records=[aws.servicediscovery.ServiceDnsConfigDnsRecordArgs(type="A", ttl=10)],
                    routing_policy="MULTIVALUE",
                ),
                opts=args.legacy.options(self, name),
            )
            registries = aws.ecs.ServiceServiceRegistriesArgs(registry_arn=registry.arn)
        # ECS registers targets only in a target group that belongs to a load balancer (its
        # listeners); the roles must hold their permissions before the first task fetches its
        # secrets; volumes need their mount targets. Autoscaling owns the count once it exists.
        depends: list[pulumi.Resource] = [
            *(route.listeners if route is not None else ()),
            *args.cluster.ready,
            *granted,
            *args.task.start_after,
        ]
        ec2 = args.task.ec2
        return aws.ecs.Service(
            name,
            cluster=args.cluster.arn,
            task_definition=task_definition.arn,
            desired_count=scaling.desired,
            # On EC2 the container instance carries the task: no Fargate capacity provider.
            launch_type="EC2" if ec2 is not None else None,
            placement_constraints=[
                aws.ecs.ServicePlacementConstraintArgs(type="memberOf", expression=ec2.placement_constraint)
            ]
            if ec2 is not None
            else None,
            capacity_provider_strategies=service_strategy(scaling.spot_percent, scaling.on_demand_base)
            if ec2 is None
            else None,
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.network.subnet_ids,
                security_groups=list(args.network.security_group_ids),
                assign_public_ip=False,
            ),
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=target_group.arn,
                    container_name=route.container,
                    container_port=route.port,
                )
            ]
            if route is not None and target_group is not None
            else None,
            service_registries=registries,
            health_check_grace_period_seconds=deployment.health_check_grace_seconds
            if route is not None
            else None,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                enable=True, rollback=True
            ),
            deployment_minimum_healthy_percent=deployment.minimum_healthy_percent,
            deployment_maximum_percent=deployment.maximum_percent,
            enable_execute_command=args.task.ecs_exec,
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            wait_for_steady_state=False,
            opts=args.legacy.options(
                self,
                name,
                depends_on=depends,
                ignore_changes=["desired_count"] if scaling.autoscaling else None,
            ),
        )

    def _autoscaling(self, name: str, service: aws.ecs.Service, target_group: TargetGroupRef | None) -> None:
        """Target tracking on CPU, memory and (routed services) requests per task (seed 000)."""
        args = self._args
        scaling, legacy = args.scaling, args.legacy
        target = aws.appautoscaling.Target(
            name,
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", args.cluster.name, "/", service.name),
            min_capacity=scaling.minimum,
            max_capacity=scaling.maximum,
            opts=legacy.options(self, name),
        )

        def track(suffix: str, metric: str, value: int, label: pulumi.Input[str] | None = None) -> None:
            aws.appautoscaling.Policy(
                f"{name}-{suffix}",
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
                opts=legacy.options(self, f"{name}-{suffix}"),
            )

        track("cpu", "ECSServiceAverageCPUUtilization", scaling.cpu_target_percent)
        track("memory", "ECSServiceAverageMemoryUtilization", scaling.memory_target_percent)
        route = args.routing
        if route is not None and target_group is not None and scaling.requests_per_target:
            track(
                "requests",
                "ALBRequestCountPerTarget",
                scaling.requests_per_target,
                pulumi.Output.concat(route.load_balancer_arn_suffix, "/", target_group.arn_suffix),
            )


def role_arn(scope: pulumi.Output[iam.Scope], role: aws.iam.Role) -> pulumi.Output[str]:
    return pulumi.Output.all(scope, role.name).apply(lambda v: v[0].role_arn(v[1]))


# --- pure helpers (tested without mocks) -------------------------------------------------------


def secret_references(containers: Sequence[Mapping[str, Any]]) -> list[pulumi.Input[str]]:
    """Every ``secrets[].valueFrom`` of the containers, in order (the execution role may read
    exactly these)."""
    return [secret["valueFrom"] for container in containers for secret in container.get("secrets") or ()]


def efs_volume(volume: EfsVolume) -> aws.ecs.TaskDefinitionVolumeArgs:
    """TLS to EFS and IAM authorization: the task role must be allowed to mount through this
    access point, and the file system policy must admit the role."""
    return aws.ecs.TaskDefinitionVolumeArgs(
        name=volume.name,
        efs_volume_configuration=aws.ecs.TaskDefinitionVolumeEfsVolumeConfigurationArgs(
            file_system_id=volume.file_system_id,
            # With an access point the root must be "/": the access point sets the directory.
            root_directory="/",
            transit_encryption="ENABLED",
            authorization_config=aws.ecs.TaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfigArgs(
                access_point_id=volume.access_point_id, iam="ENABLED"
            ),
        ),
    )


def runtime_platform(architecture: str) -> aws.ecs.TaskDefinitionRuntimePlatformArgs:
    """Fargate's platform: the images must exist for this architecture."""
    return aws.ecs.TaskDefinitionRuntimePlatformArgs(
        cpu_architecture={"x86_64": "X86_64", "arm64": "ARM64"}[architecture],
        operating_system_family="LINUX",
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
