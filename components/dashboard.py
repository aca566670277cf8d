"""The CloudWatch dashboard body of a stack, built from plain values.

``WwhdMonitoring`` resolves its resource references (load balancer suffix, cluster and
service names, file system and database ids, alarm ARNs) with ``Output.all`` and hands them
here, so the body is a pure function: the tests read it without mocks, and every widget
shows the resources the alarms watch, never a copy typed by hand.

Body syntax: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ALB = "AWS/ApplicationELB"
ECS = "AWS/ECS"
INSIGHTS = "ECS/ContainerInsights"
EFS = "AWS/EFS"
RDS = "AWS/RDS"

GRID_WIDTH = 24
"""CloudWatch dashboards are 24 units wide."""
MAX_ALARMS_PER_WIDGET = 100
"""An alarm status widget lists 1 to 100 alarm ARNs."""


@dataclass(frozen=True)
class ServiceRef:
    """A service on the dashboard."""

    title: str
    """How the widgets name it (``API``)."""
    name: str
    """The ECS service (ServiceName dimension)."""
    singleton: bool = False
    """One task that must run: its running count shows the minimum, not the average."""


@dataclass(frozen=True)
class DashboardRefs:
    """The resolved values one dashboard shows."""

    stack: str
    """Stack name, for the title."""
    environment: str
    """``dev``, ``staging`` or ``prod``, for the title."""
    region: str
    """Region of every metric and log widget."""
    alb_arn_suffix: str
    """``app/<name>/<id>``: the LoadBalancer dimension."""
    target_group_arn_suffix: str | None
    """``targetgroup/<name>/<id>`` of the default backend (the API): the TargetGroup dimension."""
    cluster_name: str
    """The ECS cluster (ClusterName dimension)."""
    services: Sequence[ServiceRef]
    """The services, the API first."""
    file_system_id: str | None
    """The EFS file system (FileSystemId dimension), when the stack keeps data on EFS."""
    bursting: bool
    """EFS bursting throughput: show the burst credit balance."""
    efs_general_purpose: bool
    """EFS General Purpose performance mode: show the share of its I/O limit used."""
    db_instance_identifier: str | None
    """The RDS instance (DBInstanceIdentifier dimension), when the database is PostgreSQL."""
    error_namespace: str
    """Namespace of the API's error-line metric (``WWHD/<stack>``)."""
    error_metric: str
    """Name of the API's error-line metric."""
    api_log_group_name: str
    """The API log group, for the recent-errors query."""
    performance_log_group_name: str | None
    """The performance log group, for the latest-lines query (none when unset)."""
    alarm_arns: Sequence[str]
    """Every alarm of the stack, for the status widget."""
    latency_p95_seconds: float
    """Drawn as a line on the latency graph (the warning alarm's threshold)."""
    latency_critical_seconds: float
    """Drawn as a line on the latency graph (the critical alarm's threshold)."""
    cpu_percent: float
    """Drawn as a line on the CPU/memory graph."""
    memory_percent: float
    """Drawn as a line on the CPU/memory graph."""


def dashboard_body(r: DashboardRefs) -> dict[str, Any]:
    """The dashboard as a dict (``json.dumps`` it for ``dashboard_body``)."""
    lb = ["LoadBalancer", r.alb_arn_suffix]
    tg = ["TargetGroup", r.target_group_arn_suffix, *lb]

    widgets: list[dict[str, Any]] = [
        _text(
            f"# W.W.H.D. backend: {r.stack} ({r.environment}, {r.region})\n"
            "Load balancer traffic is per minute; task counts come from Container Insights. "
            "Alarms notify the stack's SNS topic; their state is listed below.",
            height=2,
        ),
    ]
    widgets += [_alarms(f"Alarms ({i + 1})", chunk) for i, chunk in enumerate(_chunks(r.alarm_arns))]

    widgets.append(
        _metric(r, "Requests per minute", [[ALB, "RequestCount", *tg, {"stat": "Sum", "label": "Requests"}]])
    )
    widgets.append(
        _metric(
            r,
            "Target response time (seconds)",
            [[ALB, "TargetResponseTime", *tg, {"stat": p, "label": p}] for p in ("p50", "p90", "p95", "p99")],
            lines=[
                ("p95 warning", r.latency_p95_seconds),
                ("p95 critical", r.latency_critical_seconds),
            ],
        )
    )
    widgets.append(
        _metric(
            r,
            "HTTP errors per minute",
            [
                [ALB, "HTTPCode_Target_4XX_Count", *tg, {"stat": "Sum", "label": "API 4xx"}],
                [ALB, "HTTPCode_Target_5XX_Count", *tg, {"stat": "Sum", "label": "API 5xx"}],
                # The load balancer's own errors exist only per load balancer (no TargetGroup).
                [ALB, "HTTPCode_ELB_4XX_Count", *lb, {"stat": "Sum", "label": "ALB 4xx"}],
                [ALB, "HTTPCode_ELB_5XX_Count", *lb, {"stat": "Sum", "label": "ALB 5xx"}],
            ],
        )
    )
    widgets.append(
        _metric(
            r,
            "Targets",
            [
                [ALB, "HealthyHostCount", *tg, {"stat": "Minimum", "label": "Healthy"}],
                [ALB, "UnHealthyHostCount", *tg, {"stat": "Maximum", "label": "Unhealthy"}],
            ],
        )
    )

    usage: list[list[Any]] = []
    tasks: list[list[Any]] = []
    for svc in r.services:
        dims = ["ClusterName", r.cluster_name, "ServiceName", svc.name]
        usage += [
            [ECS, "CPUUtilization", *dims, {"stat": "Average", "label": f"{svc.title} CPU %"}],
            [ECS, "MemoryUtilization", *dims, {"stat": "Average", "label": f"{svc.title} memory %"}],
        ]
        if svc.singleton:
            tasks.append(
                [INSIGHTS, "RunningTaskCount", *dims, {"stat": "Minimum", "label": f"{svc.title} running"}]
            )
        else:
            tasks += [
                [INSIGHTS, "RunningTaskCount", *dims, {"stat": "Average", "label": f"{svc.title} running"}],
                [INSIGHTS, "DesiredTaskCount", *dims, {"stat": "Average", "label": f"{svc.title} desired"}],
            ]
    widgets.append(
        _metric(
            r,
            "CPU and memory (%)",
            usage,
            period=300,
            lines=[("CPU alarm", r.cpu_percent), ("memory alarm", r.memory_percent)],
        )
    )
    widgets.append(_metric(r, "Running tasks", tasks))

    if r.file_system_id:
        widgets += _efs_widgets(r, ["FileSystemId", r.file_system_id])

    if r.db_instance_identifier:
        db = ["DBInstanceIdentifier", r.db_instance_identifier]
        widgets.append(
            _metric(
                r,
                "Database",
                [
                    [RDS, "CPUUtilization", *db, {"stat": "Average", "label": "CPU %"}],
                    [RDS, "DatabaseConnections", *db, {"stat": "Maximum", "label": "Connections"}],
                    [
                        RDS,
                        "FreeStorageSpace",
                        *db,
                        {"stat": "Minimum", "label": "Free storage (bytes)", "yAxis": "right"},
                    ],
                ],
                period=300,
            )
        )

    widgets.append(
        _metric(
            r,
            "API error log lines (per 5 minutes)",
            [[r.error_namespace, r.error_metric, {"stat": "Sum", "label": "ERROR/CRITICAL lines"}]],
            period=300,
        )
    )
    widgets.append(
        _logs(
            r,
            "Latest API errors",
            f"SOURCE '{r.api_log_group_name}' | fields @timestamp, @logStream, @message"
            " | filter @message like /ERROR|CRITICAL/ | sort @timestamp desc | limit 50",
        )
    )
    if r.performance_log_group_name:
        widgets.append(
            _logs(
                r,
                "Latest performance log lines",
                f"SOURCE '{r.performance_log_group_name}' | fields @timestamp, @message"
                " | sort @timestamp desc | limit 50",
            )
        )
    return {"start": "-PT12H", "periodOverride": "inherit", "widgets": _place(widgets)}


def _efs_widgets(r: DashboardRefs, fs: list[str]) -> list[dict[str, Any]]:
    widgets = [
        _metric(
            r,
            "EFS throughput (bytes/second)",
            [
                # MeteredIOBytes is a per-minute sum: divide by the period for a rate.
                [EFS, "MeteredIOBytes", *fs, {"id": "metered", "stat": "Sum", "visible": False}],
                [{"id": "rate", "expression": "metered / PERIOD(metered)", "label": "Metered throughput"}],
                [EFS, "PermittedThroughput", *fs, {"stat": "Average", "label": "Permitted throughput"}],
            ],
        )
    ]
    limits: list[list[Any]] = []
    if r.efs_general_purpose:
        limits.append([EFS, "PercentIOLimit", *fs, {"stat": "Maximum", "label": "I/O limit used %"}])
    if r.bursting:
        limits.append(
            [
                EFS,
                "BurstCreditBalance",
                *fs,
                {"stat": "Minimum", "label": "Burst credits (bytes)", "yAxis": "right"},
            ]
        )
    if limits:
        widgets.append(_metric(r, "EFS I/O limit and burst credits", limits))
    return widgets


def _text(markdown: str, height: int) -> dict[str, Any]:
    return {"type": "text", "width": GRID_WIDTH, "height": height, "properties": {"markdown": markdown}}


def _alarms(title: str, arns: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "alarm",
        "width": GRID_WIDTH,
        "height": 4,
        # Alarms in ALARM first, then the most recently changed.
        "properties": {"title": title, "alarms": list(arns), "sortBy": "stateUpdatedTimestamp"},
    }


def _metric(
    r: DashboardRefs,
    title: str,
    metrics: list[list[Any]],
    period: int = 60,
    lines: Sequence[tuple[str, float]] = (),
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "title": title,
        "region": r.region,
        "view": "timeSeries",
        "stacked": False,
        "period": period,
        "metrics": metrics,
    }
    if lines:
        properties["annotations"] = {
            "horizontal": [{"label": label, "value": value} for label, value in lines]
        }
    return {"type": "metric", "width": 12, "height": 6, "properties": properties}


def _logs(r: DashboardRefs, title: str, query: str) -> dict[str, Any]:
    return {
        "type": "log",
        "width": 12,
        "height": 6,
        "properties": {"title": title, "region": r.region, "query": query, "view": "table"},
    }


def _chunks(arns: Sequence[str]) -> list[Sequence[str]]:
    return [arns[i : i + MAX_ALARMS_PER_WIDGET] for i in range(0, len(arns), MAX_ALARMS_PER_WIDGET)]


def _place(widgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flow widgets left to right, top to bottom, on the 24-unit grid."""
    x = y = row_height = 0
    for w in widgets:
        if x + w["width"] > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        w["x"], w["y"] = x, y
        x += w["width"]
        row_height = max(row_height, w["height"])
    return widgets
