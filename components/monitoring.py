"""WwhdMonitoring: alarms that reach a person, a dashboard, X-Ray sampling and an error-log metric."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.component import WwhdComponent
from components.containers import TRACE_SERVICE_NAME
from components.dashboard import DashboardRefs, HostRef, ServiceRef, dashboard_body
from iam_document import policy_document
from stack_config import AlarmThresholds, Environment, MonitoringConfig

TOKEN = "wwhd:index:WwhdMonitoring"

TIB = 1024**4
GIB = 1024**3
MIB = 1024**2

ERROR_METRIC = "ApiErrorLines"
# Plain terms, not a JSON pattern: the API logs text through Python's logging and uvicorn,
# which print the level name in capitals ("ERROR:    Exception in ASGI application"), and a
# JSON pattern never matches a line that is not JSON. Terms match case-sensitively, so
# "Error" is left out on purpose: it would count INFO lines that merely mention an error and
# the "ValueError: ..." line that ends a traceback whose ERROR line was already counted.
ERROR_PATTERN = "?ERROR ?CRITICAL"

MIN_REQUESTS_FOR_4XX_RATE = 20
"""Below this many requests in 5 minutes the 4xx share is noise (3 of 5 probes is 60%)."""

# RDS PostgreSQL's default max_connections is LEAST({DBInstanceClassMemory/9531392}, 5000).
# DBInstanceClassMemory is the class's memory less what RDS keeps for the OS and its own
# processes (observed: about 250-400 MiB on the small classes); subtracting 512 MiB keeps
# the estimate at or below the real ceiling, so the alarm fires early rather than late.
RDS_BYTES_PER_CONNECTION = 9531392
RDS_MAX_CONNECTIONS_CAP = 5000
RDS_RESERVED_MEMORY = 512 * MIB
_BURSTABLE_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
_GIB_PER_VCPU = {"m": 4, "r": 8}

TreatMissing = Literal["breaching", "notBreaching", "ignore", "missing"]
Severity = Literal["critical", "warning"]


def class_memory_bytes(instance_class: str) -> int | None:
    """Nominal memory of an RDS instance class (``db.t4g.micro``: 1 GiB), or None when the
    family is not one this table knows (burstable t, general purpose m, memory optimized r)."""
    parts = instance_class.split(".")
    if len(parts) != 3 or parts[0] != "db":
        return None
    family, size = parts[1], parts[2]
    if family.startswith("t"):
        gib = _BURSTABLE_GIB.get(size)
        return gib * GIB if gib else None
    per_vcpu = _GIB_PER_VCPU.get(family[:1])
    if per_vcpu is None or not re.fullmatch(r"[mr]\d+[a-z]*", family):
        return None
    if size == "large":
        vcpus = 2
    elif size == "xlarge":
        vcpus = 4
    elif m := re.fullmatch(r"(\d+)xlarge", size):
        vcpus = 4 * int(m.group(1))
    else:
        return None
    return vcpus * per_vcpu * GIB


def estimated_max_connections(instance_class: str) -> int | None:
    """RDS PostgreSQL's default ``max_connections`` for a class, estimated conservatively
    (see ``RDS_RESERVED_MEMORY``); None for a class ``class_memory_bytes`` does not know."""
    memory = class_memory_bytes(instance_class)
    if memory is None:
        return None
    return max(1, min((memory - RDS_RESERVED_MEMORY) // RDS_BYTES_PER_CONNECTION, RDS_MAX_CONNECTIONS_CAP))


def stack_slug(stack: str) -> str:
    """The stack name in the characters every name here accepts (dashboards take only
    letters, digits, ``-`` and ``_``; Pulumi stack names may also hold ``.``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", stack)


@dataclass(frozen=True)
class WatchedService:
    """A service the alarms and the dashboard watch."""

    label: str
    """Short name: prefixes its alarms (``api`` -> ``api-cpu-high``)."""
    title: str
    """How descriptions and the dashboard name it (``API``)."""
    service_name: pulumi.Input[str]
    """The ECS service's name (ServiceName dimension)."""
    singleton: bool = False
    """One task that must always run (Qdrant): alarm when none runs, instead of on utilization."""
    impact: str = "requests fail"
    """What users notice when it is down, for the singleton's alarm."""
    target_group_arn_suffix: pulumi.Input[str] | None = None
    """Its target group (``targetgroup/<name>/<hex16>``), when the load balancer routes to it:
    adds the request alarms."""
    default_route: bool = False
    """It is the load balancer's default backend: its request alarms keep the stack-level names
    (``unhealthy-targets``, ``target-5xx``, ...)."""
    parked: bool = False
    """Zero desired and zero minimum tasks on purpose: no running-tasks alarm."""


@dataclass(frozen=True)
class WatchedHost:
    """An EC2 container host (WwhdContainerHost) and the volume it keeps a singleton's data on."""

    asg_name: pulumi.Input[str]
    """Its Auto Scaling group (the AutoScalingGroupName dimension of the status check)."""
    free_space_namespace: str
    """Namespace of the CloudWatch agent's metric of the volume (``WWHD/<stack>/<host>``)."""
    free_space_dimensions: Mapping[str, str]
    """Its dimensions (``{"path": <mount path>}``)."""
    free_space_metric: str = "disk_used_percent"
    """The agent's metric: the used share of the volume in percent."""
    label: str = "qdrant"
    """Prefixes its alarms (``qdrant-host-status-check-failed``)."""
    title: str = "Qdrant"
    """How descriptions and the dashboard name what it hosts."""


@dataclass(frozen=True)
class WwhdMonitoringArgs:
    """What the monitoring watches and whom it tells. It owns no application resources:
    every resource it watches comes in as an input."""

    config: MonitoringConfig
    """The ``wwhd:monitoring`` section: alarm e-mails, log retention, tracing (off by
    default, on in prod) and the alarm thresholds (defaults: CPU 80%, memory 85%, 1
    unhealthy target, 10 target/ALB 5xx a minute, 10% 4xx, p95 2 s, critical 5 s, 5 error
    lines per 5 minutes)."""
    environment: Environment
    """``dev``, ``staging`` or ``prod``; shown on the dashboard and in alarm descriptions."""
    region: str
    """AWS region of the stack: dashboard widgets, the dashboard URL, the topic policy."""
    key_arn: pulumi.Input[str]
    """The stack key (WwhdStackKey.key_arn); encrypts the alarm topic. Its key policy lets
    cloudwatch.amazonaws.com use it, without which encrypted alarm messages are dropped."""
    cluster_name: pulumi.Input[str]
    """The ECS cluster's name (WwhdPlatform). Container Insights must be on for the task-count
    alarms, which otherwise see no data and, by design, alarm."""
    alb_arn_suffix: pulumi.Input[str]
    """The load balancer's ARN suffix ``app/<name>/<hex16>`` (WwhdPlatform): the LoadBalancer
    dimension."""
    services: Sequence[WatchedService]
    """The services to watch, the API first (its alarms and widgets lead)."""
    api_log_group_name: pulumi.Input[str]
    """The API log group (``/ecs/wwhd-backend-<stack>``, created by the API's WwhdService). Pass
    the log group's ``name`` output so the metric filter waits for the group to exist."""
    throughput_mode: Literal["bursting", "elastic"] = "bursting"
    """EFS throughput mode (``StorageConfig.throughput_mode``): bursting adds the burst credit
    alarm. Default bursting."""
    efs_general_purpose: bool = True
    """The file system uses the General Purpose performance mode (the only one publishing
    PercentIOLimit); default True."""
    performance_log_group_name: pulumi.Input[str] | None = None
    """The performance log group (WwhdService); shown on the dashboard. Default none."""
    file_system_id: pulumi.Input[str] | None = None
    """The EFS file system id ``fs-...`` (WwhdDataVolume), when the stack has one: adds the EFS
    alarms and dashboard widgets. Default none (PostgreSQL with an external Qdrant keeps no
    data on EFS)."""
    db_instance_identifier: pulumi.Input[str] | None = None
    """The RDS instance identifier (WwhdDatabase), only with PostgreSQL: adds the CPU, free
    storage and connections alarms. Default none."""
    db_allocated_storage_gb: int | None = None
    """The RDS allocated storage in GiB (``DatabaseConfig.allocated_storage_gb``); the free
    storage alarm fires below ``db_free_storage_percent`` of it. Required with a database."""
    db_instance_class: str | None = None
    """The RDS instance class (``DatabaseConfig.instance_class``), to estimate max_connections
    when ``db_max_connections`` is unset. Default none."""
    db_max_connections: int | None = None
    """The instance's max_connections when it is not RDS's default (a custom parameter
    group); default none: estimated from ``db_instance_class``."""
    host: WatchedHost | None = None
    """The EC2 host of Qdrant's ``instance`` placement (WwhdContainerHost): adds the instance
    status check and volume free-space alarms and widgets. Default none."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags on the topic, alarms and sampling rule (the provider's default tags apply
    anyway); default none."""

    def __post_init__(self) -> None:
        where = "WwhdMonitoringArgs"
        if not self.services:
            raise ValueError(f"{where}.services: watch at least the API")
        if self.throughput_mode not in ("bursting", "elastic"):
            raise ValueError(f"{where}.throughput_mode: bursting or elastic, not {self.throughput_mode!r}")
        if self.db_instance_identifier is None:
            return
        if not self.db_allocated_storage_gb or self.db_allocated_storage_gb <= 0:
            raise ValueError(f"{where}.db_allocated_storage_gb: required (GiB) when a database is watched")
        if self.db_max_connections is not None and self.db_max_connections <= 0:
            raise ValueError(f"{where}.db_max_connections: must be positive")
        if self.db_max_connections is None and (
            self.db_instance_class is None or estimated_max_connections(self.db_instance_class) is None
        ):
            raise ValueError(
                f"{where}.db_max_connections: cannot estimate max_connections for instance class "
                f"{self.db_instance_class!r}; set db_max_connections"
            )

    @property
    def max_connections(self) -> int | None:
        """max_connections of the watched database, given or estimated."""
        if self.db_instance_identifier is None:
            return None
        if self.db_max_connections is not None:
            return self.db_max_connections
        return estimated_max_connections(self.db_instance_class or "")


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric with its statistic and period."""

    namespace: str
    name: str
    dimensions: Mapping[str, pulumi.Input[str]]
    stat: str
    """``Average``, ``Sum``, ``Minimum``, ``Maximum`` or a percentile such as ``p95``."""
    period: int
    """Seconds."""


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: what it watches, when it fires, and how it reads silence."""

    what: str
    """The name's suffix: the alarm is ``wwhd-<stack>-<what>``."""
    severity: Severity
    description: str
    comparison: Literal[">", ">=", "<"]
    threshold: float
    periods: int
    """Consecutive periods that must all breach."""
    missing: TreatMissing
    metric: Metric | None = None
    """A single metric; or ``inputs`` and ``expression`` for metric math."""
    inputs: Mapping[str, Metric] = field(default_factory=dict)
    """Metric math inputs by query id."""
    expression: str | None = None
    """Metric math over ``inputs``; its result is what the threshold applies to."""
    label: str | None = None
    """Label of the expression's result."""


COMPARISONS = {
    ">": "GreaterThanThreshold",
    ">=": "GreaterThanOrEqualToThreshold",
    "<": "LessThanThreshold",
}


Dimensions = Mapping[str, pulumi.Input[str]]


Threshold = Callable[[AlarmThresholds, WwhdMonitoringArgs], float]
"""Reads an alarm's threshold from the thresholds (or the args, for derived figures)."""


@dataclass(frozen=True)
class Fires:
    """When an alarm fires, and how loud."""

    severity: Severity
    comparison: Literal[">", ">=", "<"]
    threshold: float | Threshold
    """A fixed figure, or read from the thresholds."""
    periods: int = 1
    """Consecutive periods that must all breach. Default 1."""
    missing: TreatMissing = "notBreaching"
    """How silence reads. Default notBreaching: most metrics here are request-driven."""


@dataclass(frozen=True)
class AlarmRow:
    """One line of an alarm table: an ``AlarmSpec`` waiting for its dimensions and thresholds.

    ``what``, ``description``, ``expression`` and ``label`` are format strings over ``svc`` (the
    watched service's label), ``title`` (its display name), ``impact`` and the thresholds
    ``t``."""

    what: str
    description: str
    fires: Fires
    metric: tuple[str, str, str, int] | None = None
    """(namespace, metric, statistic, period) of a single metric."""
    inputs: Mapping[str, tuple[str, str, str, int]] = field(default_factory=dict)
    """Metric math inputs by query id, each (namespace, metric, statistic, period)."""
    expression: str | None = None
    label: str | None = None
    default_name: str | None = None
    """The name the default backend's alarm keeps (target-group rows): they predate the
    per-service names and renaming would replace them."""

    def spec(
        self,
        dims: Dimensions,
        args: WwhdMonitoringArgs,
        service: WatchedService | None = None,
        prefix: bool = True,
    ) -> AlarmSpec:
        t = args.config.thresholds
        max_connections = args.max_connections or 0
        words = {
            "t": t,
            "svc": service.label if service else "",
            "title": service.title if service else "",
            "impact": service.impact if service else "",
            "allocated": args.db_allocated_storage_gb or 0,
            "max_connections": max_connections,
            "connections": int(max_connections * t.db_connections_percent / 100),
        }
        name = self.what.format(**words) if prefix or self.default_name is None else self.default_name
        fires = self.fires
        return AlarmSpec(
            what=name,
            severity=fires.severity,
            description=self.description.format(**words),
            comparison=fires.comparison,
            threshold=fires.threshold(t, args) if callable(fires.threshold) else fires.threshold,
            periods=fires.periods,
            missing=fires.missing,
            metric=Metric(*self.metric[:2], dims, *self.metric[2:]) if self.metric else None,
            inputs={k: Metric(m[0], m[1], dims, m[2], m[3]) for k, m in self.inputs.items()},
            expression=self.expression.format(**words) if self.expression else None,
            label=self.label.format(**words) if self.label else None,
        )


ECS_, INSIGHTS_, ALB_, EFS_, RDS_, EC2_ = (
    "AWS/ECS",
    "ECS/ContainerInsights",
    "AWS/ApplicationELB",
    "AWS/EFS",
    "AWS/RDS",
    "AWS/EC2",
)


def threshold_field(name: str) -> Threshold:
    """The threshold read from the ``AlarmThresholds`` field ``name``."""
    return lambda t, _: getattr(t, name)


def utilization_high(what: str, subject: str, threshold: str, namespace: str, metric: str) -> AlarmRow:
    """A warning when the average utilization of ``metric`` stays above the ``threshold``
    percent (an ``AlarmThresholds`` field) for two 5-minute periods."""
    return AlarmRow(
        what,
        f"{subject} above {{t.{threshold}:g}}% for 10 minutes.",
        Fires("warning", ">", threshold_field(threshold), periods=2),
        metric=(namespace, metric, "Average", 300),
    )


def latency_high(what: str, severity: Severity, threshold: str, periods: int) -> AlarmRow:
    """The target's p95 response time above ``threshold`` seconds (an ``AlarmThresholds``
    field) for ``periods`` 5-minute periods."""
    return AlarmRow(
        "{svc}-" + what,
        f"{{title}} p95 response time above {{t.{threshold}:g}} s for {periods * 5} minutes.",
        Fires(severity, ">", threshold_field(threshold), periods=periods),
        metric=(ALB_, "TargetResponseTime", "p95", 300),
        default_name=what,
    )


def free_storage_floor(t: AlarmThresholds, args: WwhdMonitoringArgs) -> float:
    """Bytes: ``db_free_storage_percent`` of the database's allocated storage."""
    return int((args.db_allocated_storage_gb or 0) * GIB * t.db_free_storage_percent / 100)


def connections_ceiling(t: AlarmThresholds, args: WwhdMonitoringArgs) -> float:
    """``db_connections_percent`` of the database's max_connections."""
    return int((args.max_connections or 0) * t.db_connections_percent / 100)


def server_errors(
    what: str, source: str, threshold: str, metric: str, default_name: str | None = None, why: str = ""
) -> AlarmRow:
    """Critical when ``source`` answers more 5xx in a minute than ``threshold`` (an
    ``AlarmThresholds`` field) allows; ``why`` adds the likely causes to the description."""
    return AlarmRow(
        what,
        f"More than {{t.{threshold}:g}} {source} 5xx responses in a minute{why}.",
        Fires("critical", ">", threshold_field(threshold)),
        metric=(ALB_, metric, "Sum", 60),
        default_name=default_name,
    )


# Missing data, deliberately: request-driven metrics (5xx, 4xx share, latency, unhealthy hosts,
# error lines) publish nothing when nobody calls at night, so silence is not breaching; task
# counts publish nothing when nothing runs, so silence is breaching; utilization publishes
# nothing when there is no task or instance to use, which the task-count alarms report, so not
# breaching; a missing balance or free-space figure proves nothing either way, so the alarm
# keeps its state ("missing").

SERVICE_ALARMS = (
    utilization_high("{svc}-cpu-high", "{title} service CPU", "cpu_percent", ECS_, "CPUUtilization"),
    utilization_high(
        "{svc}-memory-high", "{title} service memory", "memory_percent", ECS_, "MemoryUtilization"
    ),
)
# A single-writer deploy stops the old task before starting the new one, and a scale-out
# raises desired before tasks run: five minutes rides both out.
TASKS_BELOW_DESIRED = AlarmRow(
    "{svc}-tasks-below-desired",
    "Fewer {title} tasks running than desired for 5 minutes (tasks crash, fail health checks or "
    "cannot be placed; see the service's events).",
    Fires("critical", ">", 0, periods=5, missing="breaching"),
    inputs={
        "desired": (INSIGHTS_, "DesiredTaskCount", "Average", 60),
        "running": (INSIGHTS_, "RunningTaskCount", "Average", 60),
    },
    expression="desired - running",
    label="Desired minus running {title} tasks",
)
# A singleton: no task, no service. Five minutes covers a stop-then-start deploy.
NOT_RUNNING = AlarmRow(
    "{svc}-not-running",
    "No {title} task running for 5 minutes: {impact}.",
    Fires("critical", "<", 1, periods=5, missing="breaching"),
    metric=(INSIGHTS_, "RunningTaskCount", "Minimum", 60),
)
TARGET_ALARMS = (
    AlarmRow(
        "{svc}-unhealthy-targets",
        "At least {t.unhealthy_targets} {title} target(s) failing load balancer health checks.",
        Fires("critical", ">=", threshold_field("unhealthy_targets")),
        metric=(ALB_, "UnHealthyHostCount", "Maximum", 60),
        default_name="unhealthy-targets",
    ),
    server_errors(
        "{svc}-target-5xx", "{title}", "target_5xx_per_minute", "HTTPCode_Target_5XX_Count", "target-5xx"
    ),
)
# The load balancer's own 5xx are published per load balancer only.
ALB_5XX = server_errors(
    "alb-5xx",
    "load balancer",
    "alb_5xx_per_minute",
    "HTTPCode_ELB_5XX_Count",
    why=" (no healthy target, or targets resetting or timing out)",
)
TARGET_LATENCY_ALARMS = (
    AlarmRow(
        "{svc}-4xx-rate",
        "More than {t.error_4xx_rate_percent:g}% of {title} requests answered 4xx for 10 minutes "
        f"(counted from {MIN_REQUESTS_FOR_4XX_RATE} requests per 5 minutes).",
        Fires("warning", ">", threshold_field("error_4xx_rate_percent"), periods=2),
        inputs={
            "requests": (ALB_, "RequestCount", "Sum", 300),
            "client_errors": (ALB_, "HTTPCode_Target_4XX_Count", "Sum", 300),
        },
        # 4xx counts are published only when nonzero (FILL), and a handful of requests makes any
        # share look large (IF); no requests at all is no data.
        expression=f"IF(requests >= {MIN_REQUESTS_FOR_4XX_RATE}, 100 * FILL(client_errors, 0) / requests, 0)",
        label="{title} 4xx share of requests (%)",
        default_name="api-4xx-rate",
    ),
    latency_high("latency-p95", "warning", "latency_p95_seconds", periods=2),
    latency_high("latency-critical", "critical", "latency_critical_seconds", periods=1),
)
EFS_BURST = AlarmRow(
    # Credits exist only in bursting mode; elastic throughput has none to run out of.
    "efs-burst-credits-low",
    "EFS burst credits below {t.efs_burst_credit_floor_tib:g} TiB: the file system will fall back to its "
    "baseline throughput; consider elastic throughput.",
    Fires("warning", "<", lambda t, _: int(t.efs_burst_credit_floor_tib * TIB), missing="missing"),
    metric=(EFS_, "BurstCreditBalance", "Minimum", 300),
)
EFS_IO = AlarmRow(
    # The General Purpose I/O ceiling applies in every throughput mode: this is the EFS alarm an
    # elastic file system keeps.
    "efs-io-limit",
    "EFS above 90% of the General Purpose I/O limit for 15 minutes.",
    Fires("warning", ">", 90, periods=3),
    metric=(EFS_, "PercentIOLimit", "Average", 300),
)
DATABASE_ALARMS = (
    utilization_high("db-cpu-high", "Database CPU", "cpu_percent", RDS_, "CPUUtilization"),
    # Storage autoscaling grows the volume when free space stays under 10%: this says it is
    # happening, or that the volume has reached its ceiling.
    AlarmRow(
        "db-storage-low",
        "Database free storage below {t.db_free_storage_percent:g}% of the allocated {allocated} GiB.",
        Fires("critical", "<", free_storage_floor, missing="missing"),
        metric=(RDS_, "FreeStorageSpace", "Minimum", 300),
    ),
    AlarmRow(
        "db-connections-high",
        "Database connections above {t.db_connections_percent:g}% of max_connections ({connections} of "
        "{max_connections}) for 10 minutes.",
        Fires("warning", ">", connections_ceiling, periods=2),
        metric=(RDS_, "DatabaseConnections", "Maximum", 300),
    ),
)
# The metric is the API's error-line filter's: filled in by alarm_specs.
ERROR_LINES = AlarmRow(
    "api-error-lines",
    "More than {t.error_log_lines_per_5_minutes:g} ERROR/CRITICAL lines in the API log in 5 minutes; see the "
    "dashboard's latest errors.",
    Fires("warning", ">", threshold_field("error_log_lines_per_5_minutes")),
)


def alarm_specs(args: WwhdMonitoringArgs, error_namespace: str) -> list[AlarmSpec]:
    """Every alarm of the stack for these args, in dashboard order: each service's, the load
    balancer's, the file system's, the singletons', the database's, the API log's."""
    lb: Dimensions = {"LoadBalancer": args.alb_arn_suffix}
    specs: list[AlarmSpec] = []
    latency: list[AlarmSpec] = []
    for svc in args.services:
        dims: Dimensions = {"ClusterName": args.cluster_name, "ServiceName": svc.service_name}
        if not svc.singleton:
            specs += [row.spec(dims, args, svc) for row in SERVICE_ALARMS]
            if not svc.parked:
                specs.append(TASKS_BELOW_DESIRED.spec(dims, args, svc))
        if svc.target_group_arn_suffix is not None:
            tg: Dimensions = {"TargetGroup": svc.target_group_arn_suffix, **lb}
            specs += [row.spec(tg, args, svc, prefix=not svc.default_route) for row in TARGET_ALARMS]
            latency += [
                row.spec(tg, args, svc, prefix=not svc.default_route) for row in TARGET_LATENCY_ALARMS
            ]
    specs.append(ALB_5XX.spec(lb, args))
    specs += latency
    if args.file_system_id is not None:
        fs: Dimensions = {"FileSystemId": args.file_system_id}
        if args.throughput_mode == "bursting":
            specs.append(EFS_BURST.spec(fs, args))
        if args.efs_general_purpose:
            specs.append(EFS_IO.spec(fs, args))
    for svc in args.services:
        if svc.singleton:
            dims = {"ClusterName": args.cluster_name, "ServiceName": svc.service_name}
            specs.append(NOT_RUNNING.spec(dims, args, svc))
    if args.host is not None:
        specs += host_alarm_specs(args, args.host)
    if args.db_instance_identifier is not None:
        db: Dimensions = {"DBInstanceIdentifier": args.db_instance_identifier}
        specs += [row.spec(db, args) for row in DATABASE_ALARMS]
    errors = ERROR_LINES.spec({}, args)
    specs.append(replace(errors, metric=Metric(error_namespace, ERROR_METRIC, {}, "Sum", 300)))
    return specs


# The host's Auto Scaling group replaces an instance whose status checks fail; the alarm says
# it happened (a repeat points at the AMI or the boot script), and the singleton's not-running
# alarm is the one that says Qdrant is down. No data means no instance, which that alarm covers.
HOST_STATUS = AlarmRow(
    "{svc}-host-status-check-failed",
    "The {title} host failed its EC2 status checks for 2 minutes; its Auto Scaling group replaces it.",
    Fires("warning", ">=", 1, periods=2),
    metric=(EC2_, "StatusCheckFailed", "Maximum", 60),
)
# Qdrant stops accepting writes when its disk is full. A gap in the agent's data (an instance
# being replaced) proves nothing either way. The namespace is the host's: filled in by
# alarm_specs.
HOST_VOLUME_FREE = AlarmRow(
    "{svc}-volume-free-space-low",
    "Less than {t.qdrant_volume_free_percent:g}% of the {title} volume is free: raise qdrant.volumeGb, "
    "then grow the file system (docs/operations.md).",
    Fires("critical", "<", threshold_field("qdrant_volume_free_percent"), missing="missing"),
    expression="100 - used",
    label="{title} volume free (%)",
)


def host_alarm_specs(args: WwhdMonitoringArgs, host: WatchedHost) -> list[AlarmSpec]:
    """The host's status check alarm and its volume's free-space alarm."""
    named = WatchedService(host.label, host.title, host.asg_name)
    status = HOST_STATUS.spec({"AutoScalingGroupName": host.asg_name}, args, named)
    free = HOST_VOLUME_FREE.spec({}, args, named)
    used = Metric(
        host.free_space_namespace, host.free_space_metric, host.free_space_dimensions, "Maximum", 300
    )
    return [status, replace(free, inputs={"used": used})]


class WwhdMonitoring(WwhdComponent[WwhdMonitoringArgs], token=TOKEN):
    """Who hears about trouble, and where to look.

    One SNS topic, encrypted with the stack key, carries every alarm, critical and warning
    alike, to the addresses of ``wwhd:monitoring.alarmEmails``. One topic because the
    configuration names one audience: two topics with the same subscribers would double
    every confirmation e-mail and route nothing differently. Each alarm names its severity
    in the first word of its description (which the notification e-mail quotes) and in a
    ``Severity`` tag; when a pager joins, a second topic for the critical alarms is a change
    to their actions only.

    Every alarm notifies on ALARM and on OK (so the recipient learns it is over); how each
    reads missing data is explained in ``alarm_specs``.
    """

    topic_arn: pulumi.Output[str]
    """The alarm topic: subscribe further endpoints (a pager, a chat hook) here."""
    dashboard_name: pulumi.Output[str]
    """``wwhd-<stack>``."""
    dashboard_url: pulumi.Output[str]
    """The dashboard in the CloudWatch console."""
    alarm_names: pulumi.Output[list[str]]
    """Every alarm's name (``wwhd-<stack>-<what>``)."""
    alarm_arns: pulumi.Output[list[str]]
    """Every alarm's ARN."""
    error_metric_namespace: str
    """Namespace of the API's error-line metric ``ApiErrorLines``: ``WWHD/<stack>``."""
    sampling_rule_name: pulumi.Output[str] | None
    """The X-Ray sampling rule (``wwhd-<stack>``), when tracing is on."""

    def _build(self, name: str, args: WwhdMonitoringArgs) -> None:
        slug = stack_slug(pulumi.get_stack())

        topic = self._topic(name, args, slug)
        self.topic_arn = topic.arn
        self.error_metric_namespace = f"WWHD/{slug}"

        aws.cloudwatch.LogMetricFilter(
            f"{name}-api-errors",
            name=f"wwhd-{slug}-api-error-lines",
            log_group_name=args.api_log_group_name,
            pattern=ERROR_PATTERN,
            metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                namespace=self.error_metric_namespace,
                name=ERROR_METRIC,
                value="1",
                # Every other line counts 0, so a logging API reads 0 rather than no data.
                default_value="0",
                unit="Count",
            ),
            opts=self._child,
        )

        alarms = [
            _metric_alarm(
                f"{name}-{spec.what}", f"wwhd-{slug}-{spec.what}", spec, args, topic.arn, self._child
            )
            for spec in alarm_specs(args, self.error_metric_namespace)
        ]
        self.alarm_names = pulumi.Output.all(*[a.name for a in alarms])
        self.alarm_arns = pulumi.Output.all(*[a.arn for a in alarms])

        self.sampling_rule_name = None
        if args.config.tracing:
            # Seed 000's rule: the first request each second, then 10%, of the service the
            # API's traces carry (the program gives the app that name). Rule names hold at most
            # 32 characters.
            rule = aws.xray.SamplingRule(
                f"{name}-sampling",
                rule_name=f"wwhd-{slug}"[:32],
                priority=1000,
                fixed_rate=0.1,
                reservoir_size=1,
                service_name=TRACE_SERVICE_NAME,
                service_type="*",
                host="*",
                http_method="*",
                url_path="*",
                resource_arn="*",
                version=1,
                tags=dict(args.tags),
                opts=self._child,
            )
            self.sampling_rule_name = rule.rule_name.apply(lambda n: n or "")

        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=f"wwhd-{slug}",
            dashboard_body=self._dashboard_body(args, self.alarm_arns),
            opts=self._child,
        )
        region = args.region
        self.dashboard_name = dashboard.dashboard_name
        self.dashboard_url = dashboard.dashboard_name.apply(
            lambda n: (
                f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name={n}"
            )
        )

        if not args.config.alarm_emails:
            pulumi.log.warn("wwhd:monitoring.alarmEmails is empty: alarms reach nobody", resource=self)

    def _topic(self, name: str, args: WwhdMonitoringArgs, slug: str) -> aws.sns.Topic:
        topic = aws.sns.Topic(
            f"{name}-alarms",
            name=f"wwhd-{slug}-alarms",
            display_name=f"WWHD {slug} alarms",
            kms_master_key_id=args.key_arn,
            tags=dict(args.tags),
            opts=self._child,
        )
        identity = aws.get_caller_identity_output(opts=self._invoke)
        aws.sns.TopicPolicy(
            f"{name}-alarms",
            arn=topic.arn,
            # The topic's ARN formed from its name: a new stack's document is judged whole.
            policy=identity.account_id.apply(
                lambda account: json.dumps(
                    topic_policy(
                        f"arn:aws:sns:{args.region}:{account}:wwhd-{slug}-alarms",
                        account,
                        args.region,
                        f"wwhd-{slug}-",
                    )
                )
            ),
            opts=self._child,
        )
        for address in unique_addresses(args.config.alarm_emails):
            # Named after the address, so removing one leaves the others alone. Each recipient
            # confirms from the e-mail AWS sends; until then nothing is delivered to them.
            aws.sns.TopicSubscription(
                f"{name}-email-{re.sub(r'[^a-z0-9]+', '-', address)}",
                topic=topic.arn,
                protocol="email",
                endpoint=address,
                opts=self._child,
            )
        return topic

    def _dashboard_body(
        self, args: WwhdMonitoringArgs, alarm_arns: pulumi.Output[list[str]]
    ) -> pulumi.Output[str]:
        t = args.config.thresholds
        stack, namespace = pulumi.get_stack(), self.error_metric_namespace
        default = next((svc for svc in args.services if svc.default_route), None)

        def render(v: dict[str, Any]) -> str:
            refs = DashboardRefs(
                stack=stack,
                environment=args.environment,
                region=args.region,
                alb_arn_suffix=v["alb"],
                target_group_arn_suffix=v["tg"],
                cluster_name=v["cluster"],
                services=[
                    ServiceRef(svc.title, name, svc.singleton)
                    for svc, name in zip(args.services, v["services"], strict=True)
                ],
                file_system_id=v["fs"],
                bursting=args.throughput_mode == "bursting",
                efs_general_purpose=args.efs_general_purpose,
                db_instance_identifier=v["db"],
                host=HostRef(
                    title=args.host.title,
                    asg_name=v["host"],
                    free_space_namespace=args.host.free_space_namespace,
                    free_space_metric=args.host.free_space_metric,
                    free_space_dimensions=dict(args.host.free_space_dimensions),
                    free_percent_alarm=t.qdrant_volume_free_percent,
                )
                if args.host is not None
                else None,
                error_namespace=namespace,
                error_metric=ERROR_METRIC,
                api_log_group_name=v["api_logs"],
                performance_log_group_name=v["perf_logs"],
                alarm_arns=v["alarms"],
                latency_p95_seconds=t.latency_p95_seconds,
                latency_critical_seconds=t.latency_critical_seconds,
                cpu_percent=t.cpu_percent,
                memory_percent=t.memory_percent,
            )
            return json.dumps(dashboard_body(refs))

        return pulumi.Output.all(
            alb=args.alb_arn_suffix,
            tg=default.target_group_arn_suffix if default is not None else None,
            cluster=args.cluster_name,
            services=pulumi.Output.all(*[svc.service_name for svc in args.services]),
            fs=args.file_system_id,
            db=args.db_instance_identifier,
            host=args.host.asg_name if args.host is not None else None,
            api_logs=args.api_log_group_name,
            perf_logs=args.performance_log_group_name,
            alarms=alarm_arns,
        ).apply(render)


def _metric_alarm(
    logical: str,
    alarm_name: str,
    spec: AlarmSpec,
    args: WwhdMonitoringArgs,
    topic_arn: pulumi.Output[str],
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.MetricAlarm:
    metric: dict[str, Any] = {}
    if spec.metric is not None:
        m = spec.metric
        percentile = re.fullmatch(r"p\d+(\.\d+)?", m.stat) is not None
        metric = {
            "namespace": m.namespace,
            "metric_name": m.name,
            "dimensions": dict(m.dimensions),
            "period": m.period,
            # Percentiles go in extended_statistic; AWS refuses both fields at once.
            "statistic": None if percentile else m.stat,
            "extended_statistic": m.stat if percentile else None,
        }
    else:
        queries = [
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query_id,
                return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace=m.namespace,
                    metric_name=m.name,
                    dimensions=dict(m.dimensions),
                    stat=m.stat,
                    period=m.period,
                ),
            )
            for query_id, m in spec.inputs.items()
        ]
        queries.append(
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="result", expression=spec.expression, label=spec.label, return_data=True
            )
        )
        metric = {"metric_queries": queries}
    return aws.cloudwatch.MetricAlarm(
        logical,
        name=alarm_name,
        alarm_description=f"{spec.severity.upper()} (W.W.H.D. {args.environment}): {spec.description}",
        comparison_operator=COMPARISONS[spec.comparison],
        threshold=spec.threshold,
        evaluation_periods=spec.periods,
        # Every period of the window must breach: one noisy minute is not an incident.
        datapoints_to_alarm=spec.periods,
        treat_missing_data=spec.missing,
        actions_enabled=True,
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
        tags={**args.tags, "Severity": spec.severity},
        opts=opts,
        **metric,
    )


def unique_addresses(emails: Sequence[str]) -> list[str]:
    """The alarm addresses, lower-cased, each once, in the order given."""
    seen: dict[str, None] = {}
    for email in emails:
        seen.setdefault(str(email).strip().lower(), None)
    return list(seen)


def topic_policy(topic_arn: str, account: str, region: str, alarm_prefix: str) -> dict[str, Any]:
    """The alarm topic's policy: the account through IAM, and this stack's alarms."""
    return policy_document(
        {
            # Replaces SNS's default statement: the account manages and uses the topic
            # through IAM, like every other resource of the stack.
            "Sid": "AccountManagesTopicThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": [
                "sns:GetTopicAttributes",
                "sns:SetTopicAttributes",
                "sns:AddPermission",
                "sns:RemovePermission",
                "sns:DeleteTopic",
                "sns:Subscribe",
                "sns:ListSubscriptionsByTopic",
                "sns:Publish",
            ],
            "Resource": topic_arn,
        },
        {
            # Confused-deputy guard: only this account's alarms of this stack publish.
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm_prefix}*"},
            },
        },
    )
