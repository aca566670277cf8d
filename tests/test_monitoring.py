"""WwhdMonitoring: each alarm watches the resource it names and reaches the topic; the
dashboard shows the same resources; tracing, database, Qdrant and EFS mode change what exists."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components.dashboard import GRID_WIDTH
from components.monitoring import (
    ERROR_METRIC,
    ERROR_PATTERN,
    GIB,
    TIB,
    WatchedHost,
    WatchedService,
    WwhdMonitoring,
    WwhdMonitoringArgs,
    class_memory_bytes,
    estimated_max_connections,
    stack_slug,
    unique_addresses,
)
from stack_config import LOG_RETENTION_DAYS, AlarmThresholds, MonitoringConfig
from tests.support import ALARM, LOG_GROUP, TOPIC, TOPIC_SUBSCRIPTION
from tools.mocks import ACCOUNT_ID, RecordingMonitor, Registration, resolve, settle

REGION = "us-west-2"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
ALB = "app/wwhd-test/50dc6c495c0c9188"
TG = "targetgroup/wwhd-test-api/73e2d6bc24d8a067"
CLUSTER = "wwhd-test"
API = "wwhd-backend-test"
QDRANT = "wwhd-qdrant-test"
FS = "fs-0a1b2c3d4e5f60718"
DB = "wwhd-test-db"
API_LOGS = "/ecs/wwhd-backend-test"
PERF_LOGS = "/ecs/wwhd-backend-test/performance"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:wwhd-test-alarms"


LB_DIMS = {"LoadBalancer": ALB}
TG_DIMS = {"TargetGroup": TG, "LoadBalancer": ALB}
API_DIMS = {"ClusterName": CLUSTER, "ServiceName": API}


def config(**kwargs: Any) -> MonitoringConfig:
    return MonitoringConfig(**{"log_retention_days": 30, "alarm_emails": ["ops@example.com"], **kwargs})


def prod_args(**overrides: Any) -> WwhdMonitoringArgs:
    """Prod-like: tracing, PostgreSQL, Qdrant as a service, bursting EFS."""
    values: dict[str, Any] = {
        "config": config(tracing=True),
        "environment": "prod",
        "region": REGION,
        "key_arn": KEY,
        "cluster_name": CLUSTER,
        "alb_arn_suffix": ALB,
        "services": watched(qdrant=QDRANT),
        "api_log_group_name": API_LOGS,
        "performance_log_group_name": PERF_LOGS,
        "file_system_id": FS,
        "throughput_mode": "bursting",
        "db_instance_identifier": DB,
        "db_allocated_storage_gb": 20,
        "db_instance_class": "db.t4g.medium",
    }
    return WwhdMonitoringArgs(**(values | overrides))


def dev_args(**overrides: Any) -> WwhdMonitoringArgs:
    """Dev-like: no tracing, SQLite (no database), Qdrant as a sidecar, elastic EFS."""
    return prod_args(
        **{
            "config": config(),
            "environment": "dev",
            "throughput_mode": "elastic",
            "services": watched(),
            "db_instance_identifier": None,
            "db_allocated_storage_gb": None,
            "db_instance_class": None,
            **overrides,
        }
    )


def watched(
    api: Any = API,
    tg: Any = TG,
    qdrant: Any = None,
    parked: bool = False,
) -> list[WatchedService]:
    """The API (the load balancer's default backend) and, when given, the Qdrant singleton."""
    services = [
        WatchedService("api", "API", api, target_group_arn_suffix=tg, default_route=True, parked=parked)
    ]
    if qdrant is not None:
        services.append(WatchedService("qdrant", "Qdrant", qdrant, singleton=True, impact="retrieval fails"))
    return services


def build(args: WwhdMonitoringArgs) -> WwhdMonitoring:
    monitoring = WwhdMonitoring("wwhd-monitoring", args)
    settle()
    return monitoring


def alarms(monitor: RecordingMonitor) -> dict[str, Registration]:
    """Alarms by what they watch (the name without ``wwhd-test-``)."""
    found = {}
    for r in monitor.of_type(ALARM):
        name = r.inputs["name"]
        assert name.startswith("wwhd-test-"), name
        found[name.removeprefix("wwhd-test-")] = r
    return found


def dashboard(monitor: RecordingMonitor) -> dict[str, Any]:
    return json.loads(monitor.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])


def dashboard_metrics(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of every metric row on the dashboard."""
    rows = []
    for w in body["widgets"]:
        if w["type"] != "metric":
            continue
        for row in w["properties"]["metrics"]:
            plain = [x for x in row if not isinstance(x, dict)]
            if len(plain) < 2:
                continue  # a math expression row
            namespace, metric, *pairs = plain
            rows.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return rows


# --- a stack-level rule the lead reuses on the whole program --------------------------------


def assert_log_groups_retained_and_encrypted(registrations: Iterable[Registration]) -> None:
    """Every CloudWatch log group of a program expires (a retention CloudWatch accepts) and is
    encrypted with a KMS key. Raises one AssertionError naming every offender."""
    problems = []
    for r in registrations:
        if r.type != LOG_GROUP:
            continue
        days = r.inputs.get("retentionInDays")
        if not days:
            problems.append(f"{r.name}: no retentionInDays (keeps logs forever)")
        elif int(days) not in LOG_RETENTION_DAYS:
            problems.append(f"{r.name}: retentionInDays {days} is not a value CloudWatch accepts")
        if not r.inputs.get("kmsKeyId"):
            problems.append(f"{r.name}: no kmsKeyId")
    assert not problems, "log groups:\n" + "\n".join(problems)


def test_log_group_rule_flags_unencrypted_and_eternal_groups(mocks: RecordingMonitor) -> None:
    aws.cloudwatch.LogGroup("good", name="/good", retention_in_days=30, kms_key_id=KEY)
    aws.cloudwatch.LogGroup("eternal", name="/eternal", kms_key_id=KEY)
    aws.cloudwatch.LogGroup("plain", name="/plain", retention_in_days=7)
    aws.cloudwatch.LogGroup("odd", name="/odd", retention_in_days=10, kms_key_id=KEY)
    settle()
    with pytest.raises(AssertionError) as failure:
        assert_log_groups_retained_and_encrypted(mocks.registrations)
    message = str(failure.value)
    assert "eternal: no retentionInDays" in message
    assert "plain: no kmsKeyId" in message
    assert "odd: retentionInDays 10" in message
    assert "good" not in message
    assert_log_groups_retained_and_encrypted([r for r in mocks.registrations if r.name == "good"])


# --- alarms: what each watches ---------------------------------------------------------------

# what -> (namespace, metric, statistic, threshold, comparison, evaluation periods, period, dimensions)
SINGLE_METRIC = {
    "api-cpu-high": ("AWS/ECS", "CPUUtilization", "Average", 80, "GreaterThanThreshold", 2, 300, API_DIMS),
    "api-memory-high": ("AWS/ECS", "MemoryUtilization", "Average", 85, "GreaterThanThreshold", 2, 300, API_DIMS),
    "unhealthy-targets": (
        "AWS/ApplicationELB", "UnHealthyHostCount", "Maximum", 1, "GreaterThanOrEqualToThreshold", 1, 60, TG_DIMS,
    ),
    "target-5xx": (
        "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "Sum", 10, "GreaterThanThreshold", 1, 60, TG_DIMS,
    ),
    # ELB-generated 5xx exist per load balancer only: no TargetGroup dimension.
    "alb-5xx": ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "Sum", 10, "GreaterThanThreshold", 1, 60, LB_DIMS),
    "latency-p95": ("AWS/ApplicationELB", "TargetResponseTime", "p95", 2, "GreaterThanThreshold", 2, 300, TG_DIMS),
    "latency-critical": (
        "AWS/ApplicationELB", "TargetResponseTime", "p95", 5, "GreaterThanThreshold", 1, 300, TG_DIMS,
    ),
    "efs-burst-credits-low": (
        "AWS/EFS", "BurstCreditBalance", "Minimum", TIB, "LessThanThreshold", 1, 300, {"FileSystemId": FS},
    ),
    "efs-io-limit": ("AWS/EFS", "PercentIOLimit", "Average", 90, "GreaterThanThreshold", 3, 300, {"FileSystemId": FS}),
    "qdrant-not-running": (
        "ECS/ContainerInsights", "RunningTaskCount", "Minimum", 1, "LessThanThreshold", 5, 60,
        {"ClusterName": CLUSTER, "ServiceName": QDRANT},
    ),
    "db-cpu-high": ("AWS/RDS", "CPUUtilization", "Average", 80, "GreaterThanThreshold", 2, 300, {"DBInstanceIdentifier": DB}),
    # 10% of 20 GiB, in bytes.
    "db-storage-low": (
        "AWS/RDS", "FreeStorageSpace", "Minimum", 2 * GIB, "LessThanThreshold", 1, 300, {"DBInstanceIdentifier": DB},
    ),
    # db.t4g.medium: (4 GiB - 512 MiB) / 9531392 = 394 connections; 80% of it.
    "db-connections-high": (
        "AWS/RDS", "DatabaseConnections", "Maximum", 315, "GreaterThanThreshold", 2, 300, {"DBInstanceIdentifier": DB},
    ),
    "api-error-lines": ("WWHD/test", ERROR_METRIC, "Sum", 5, "GreaterThanThreshold", 1, 300, {}),
}  # fmt: skip
MATH = {"api-4xx-rate", "api-tasks-below-desired"}

MISSING_DATA = {
    # Request-driven: quiet nights publish nothing.
    "unhealthy-targets": "notBreaching",
    "target-5xx": "notBreaching",
    "alb-5xx": "notBreaching",
    "api-4xx-rate": "notBreaching",
    "latency-p95": "notBreaching",
    "latency-critical": "notBreaching",
    "api-error-lines": "notBreaching",
    # Utilization: nothing running is the task-count alarms' news.
    "api-cpu-high": "notBreaching",
    "api-memory-high": "notBreaching",
    "efs-io-limit": "notBreaching",
    "db-cpu-high": "notBreaching",
    "db-connections-high": "notBreaching",
    # Task counts: silence means nothing runs.
    "api-tasks-below-desired": "breaching",
    "qdrant-not-running": "breaching",
    # Balances: a gap proves nothing.
    "efs-burst-credits-low": "missing",
    "db-storage-low": "missing",
}

CRITICAL = {
    "unhealthy-targets", "target-5xx", "alb-5xx", "latency-critical",
    "api-tasks-below-desired", "qdrant-not-running", "db-storage-low",
}  # fmt: skip


def test_prod_like_stack_has_every_alarm(mocks: RecordingMonitor) -> None:
    build(prod_args())
    assert set(alarms(mocks)) == set(SINGLE_METRIC) | MATH


@pytest.mark.parametrize("what", sorted(SINGLE_METRIC))
def test_single_metric_alarm_watches_its_resource(mocks: RecordingMonitor, what: str) -> None:
    build(prod_args())
    namespace, metric, stat, threshold, comparison, periods, period, dims = SINGLE_METRIC[what]
    i = alarms(mocks)[what].inputs
    assert (i["namespace"], i["metricName"]) == (namespace, metric)
    if stat.startswith("p"):
        assert i["extendedStatistic"] == stat and "statistic" not in i
    else:
        assert i["statistic"] == stat and "extendedStatistic" not in i
    assert i["threshold"] == threshold
    assert i["comparisonOperator"] == comparison
    assert i["evaluationPeriods"] == periods and i["datapointsToAlarm"] == periods
    assert i["period"] == period
    assert i.get("dimensions", {}) == dims
    assert "metricQueries" not in i


def queries(alarm: Registration) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(metric inputs by id, the one expression that returns data)."""
    qs = alarm.inputs["metricQueries"]
    returned = [q for q in qs if q.get("returnData")]
    assert len(returned) == 1, "a metric math alarm returns exactly one series"
    return {q["id"]: q["metric"] for q in qs if "metric" in q}, returned[0]


def test_4xx_rate_is_metric_math_guarded_for_no_traffic(mocks: RecordingMonitor) -> None:
    build(prod_args())
    alarm = alarms(mocks)["api-4xx-rate"]
    inputs, result = queries(alarm)
    assert {(m["namespace"], m["metricName"], m["stat"], m["period"]) for m in inputs.values()} == {
        ("AWS/ApplicationELB", "RequestCount", "Sum", 300),
        ("AWS/ApplicationELB", "HTTPCode_Target_4XX_Count", "Sum", 300),
    }
    assert all(m["dimensions"] == TG_DIMS for m in inputs.values())
    ids = {m["metricName"]: qid for qid, m in inputs.items()}
    requests, errors = ids["RequestCount"], ids["HTTPCode_Target_4XX_Count"]
    expression = result["expression"].replace(" ", "")
    # The share in percent, 4xx filled with 0 (published only when nonzero), and no
    # division when there are (almost) no requests.
    assert f"100*FILL({errors},0)/{requests}" in expression
    assert re.match(rf"IF\({requests}>=\d+,", expression)
    i = alarm.inputs
    assert (i["threshold"], i["comparisonOperator"]) == (10, "GreaterThanThreshold")
    assert "metricName" not in i and "dimensions" not in i


def test_running_tasks_below_desired_from_container_insights(mocks: RecordingMonitor) -> None:
    build(prod_args())
    alarm = alarms(mocks)["api-tasks-below-desired"]
    inputs, result = queries(alarm)
    by_name = {m["metricName"]: (qid, m) for qid, m in inputs.items()}
    assert set(by_name) == {"RunningTaskCount", "DesiredTaskCount"}
    for _, m in by_name.values():
        assert m["namespace"] == "ECS/ContainerInsights"
        assert m["dimensions"] == API_DIMS
    running, desired = by_name["RunningTaskCount"][0], by_name["DesiredTaskCount"][0]
    assert result["expression"].replace(" ", "") == f"{desired}-{running}"
    assert (alarm.inputs["threshold"], alarm.inputs["comparisonOperator"]) == (0, "GreaterThanThreshold")


def test_every_alarm_notifies_the_topic_on_alarm_and_ok(mocks: RecordingMonitor) -> None:
    build(prod_args())
    topic = mocks.one(TOPIC)
    assert topic.outputs["arn"] == TOPIC_ARN
    for what, alarm in alarms(mocks).items():
        i = alarm.inputs
        assert i["alarmActions"] == [TOPIC_ARN], what
        assert i["okActions"] == [TOPIC_ARN], what
        assert i.get("actionsEnabled", True) is True, what


def test_missing_data_is_treated_per_alarm(mocks: RecordingMonitor) -> None:
    build(prod_args())
    found = {what: a.inputs["treatMissingData"] for what, a in alarms(mocks).items()}
    assert found == MISSING_DATA


def test_alarm_names_descriptions_and_severity(mocks: RecordingMonitor) -> None:
    build(prod_args())
    for what, alarm in alarms(mocks).items():
        i = alarm.inputs
        assert re.fullmatch(r"wwhd-test-[a-z0-9-]+", i["name"])
        severity = "critical" if what in CRITICAL else "warning"
        assert i["tags"]["Severity"] == severity, what
        assert i["alarmDescription"].startswith(severity.upper()), what
        assert len(i["alarmDescription"]) <= 1024


def test_thresholds_come_from_the_config(mocks: RecordingMonitor) -> None:
    # Validated as a stack file gives it (the 5xx/4xx keys have explicit aliases).
    thresholds = AlarmThresholds.model_validate({
        "cpuPercent": 70, "memoryPercent": 75, "unhealthyTargets": 2, "target5xxPerMinute": 3,
        "alb5xxPerMinute": 4, "error4xxRatePercent": 25, "latencyP95Seconds": 1.5,
        "latencyCriticalSeconds": 8, "errorLogLinesPer5Minutes": 20,
    })  # fmt: skip
    build(prod_args(config=config(tracing=True, thresholds=thresholds)))
    found = {what: a.inputs["threshold"] for what, a in alarms(mocks).items()}
    assert found["api-cpu-high"] == 70 and found["db-cpu-high"] == 70
    assert found["api-memory-high"] == 75
    assert found["unhealthy-targets"] == 2
    assert found["target-5xx"] == 3 and found["alb-5xx"] == 4
    assert found["api-4xx-rate"] == 25
    assert found["latency-p95"] == 1.5 and found["latency-critical"] == 8
    assert found["api-error-lines"] == 20


def test_database_and_efs_thresholds_come_from_the_config(mocks: RecordingMonitor) -> None:
    thresholds = AlarmThresholds(
        db_connections_percent=90, db_free_storage_percent=20, efs_burst_credit_floor_tib=0.5
    )
    build(
        prod_args(config=config(thresholds=thresholds), db_max_connections=1000, db_allocated_storage_gb=100)
    )
    found = alarms(mocks)
    assert found["db-connections-high"].inputs["threshold"] == 900
    assert found["db-storage-low"].inputs["threshold"] == 20 * GIB
    assert found["efs-burst-credits-low"].inputs["threshold"] == TIB // 2
    assert "below 0.5 TiB" in found["efs-burst-credits-low"].inputs["alarmDescription"]


# --- what exists per topology ----------------------------------------------------------------


def test_dev_like_stack_drops_database_qdrant_burst_and_tracing(mocks: RecordingMonitor) -> None:
    build(dev_args())
    assert set(alarms(mocks)) == (set(SINGLE_METRIC) | MATH) - {
        "db-cpu-high", "db-storage-low", "db-connections-high", "qdrant-not-running", "efs-burst-credits-low",
    }  # fmt: skip
    assert mocks.of_type("aws:xray/samplingRule:SamplingRule") == []


@pytest.mark.parametrize(
    ("mode", "general_purpose", "expected"),
    [
        ("bursting", True, {"efs-burst-credits-low", "efs-io-limit"}),
        ("elastic", True, {"efs-io-limit"}),
        ("bursting", False, {"efs-burst-credits-low"}),
        ("elastic", False, set()),
    ],
)
def test_efs_alarm_follows_throughput_and_performance_mode(
    mocks: RecordingMonitor, mode: str, general_purpose: bool, expected: set[str]
) -> None:
    build(dev_args(throughput_mode=mode, efs_general_purpose=general_purpose))
    assert {w for w in alarms(mocks) if w.startswith("efs-")} == expected
    rows = [(ns, m) for ns, m, _ in dashboard_metrics(dashboard(mocks))]
    assert (("AWS/EFS", "BurstCreditBalance") in rows) == (mode == "bursting")
    assert (("AWS/EFS", "PercentIOLimit") in rows) == general_purpose


def test_qdrant_alarm_only_with_a_qdrant_service(mocks: RecordingMonitor) -> None:
    build(dev_args(services=watched(qdrant=QDRANT)))
    assert "qdrant-not-running" in alarms(mocks)
    assert {"db-cpu-high", "db-storage-low"}.isdisjoint(alarms(mocks))


def test_parked_service_has_no_running_tasks_alarm(mocks: RecordingMonitor) -> None:
    build(dev_args(services=watched(parked=True)))
    assert "api-tasks-below-desired" not in alarms(mocks)


# --- the Qdrant host (instance placement) ----------------------------------------------------

ASG = "wwhd-qdrant-host-test"
HOST_NS = "WWHD/test/wwhd-qdrant-host"
HOST_DIMS = {"path": "/var/lib/qdrant"}


def host(**overrides: Any) -> WatchedHost:
    return WatchedHost(**({"asg_name": ASG, "free_space_namespace": HOST_NS, "free_space_dimensions": HOST_DIMS}
                          | overrides))  # fmt: skip


def test_host_adds_a_status_check_and_a_free_space_alarm(mocks: RecordingMonitor) -> None:
    build(prod_args(host=host()))
    found = alarms(mocks)
    assert set(found) == set(SINGLE_METRIC) | MATH | {
        "qdrant-host-status-check-failed",
        "qdrant-volume-free-space-low",
    }
    status = found["qdrant-host-status-check-failed"].inputs
    assert (status["namespace"], status["metricName"], status["statistic"], status["period"]) == (
        "AWS/EC2", "StatusCheckFailed", "Maximum", 60,
    )  # fmt: skip
    assert status["dimensions"] == {"AutoScalingGroupName": ASG}
    assert (status["comparisonOperator"], status["threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert status["treatMissingData"] == "notBreaching"
    assert status["tags"]["Severity"] == "warning"


def test_free_space_alarm_reads_the_agents_metric_as_free_percent(mocks: RecordingMonitor) -> None:
    build(prod_args(host=host()))
    alarm = alarms(mocks)["qdrant-volume-free-space-low"]
    inputs, result = queries(alarm)
    ((used_id, used),) = inputs.items()
    assert (used["namespace"], used["metricName"], used["stat"], used["period"]) == (
        HOST_NS, "disk_used_percent", "Maximum", 300,
    )  # fmt: skip
    assert used["dimensions"] == HOST_DIMS
    assert result["expression"].replace(" ", "") == f"100-{used_id}"
    i = alarm.inputs
    assert (i["comparisonOperator"], i["threshold"]) == ("LessThanThreshold", 20)
    assert i["treatMissingData"] == "missing"
    assert i["tags"]["Severity"] == "critical"
    assert i["alarmActions"] == [TOPIC_ARN] and i["okActions"] == [TOPIC_ARN]
    assert "below" not in i["alarmDescription"] and "20%" in i["alarmDescription"]


def test_free_space_threshold_comes_from_the_config(mocks: RecordingMonitor) -> None:
    build(prod_args(config=config(thresholds=AlarmThresholds(qdrant_volume_free_percent=35)), host=host()))
    alarm = alarms(mocks)["qdrant-volume-free-space-low"]
    assert alarm.inputs["threshold"] == 35
    assert "35%" in alarm.inputs["alarmDescription"]


def test_no_host_no_host_alarms_or_widgets(mocks: RecordingMonitor) -> None:
    build(prod_args())
    assert not [w for w in alarms(mocks) if "host" in w or "volume" in w]
    assert "AWS/EC2" not in json.dumps(dashboard(mocks)) and HOST_NS not in json.dumps(dashboard(mocks))


def test_dashboard_shows_the_host_and_its_volume(mocks: RecordingMonitor) -> None:
    build(prod_args(host=host()))
    body = dashboard(mocks)
    rows = dashboard_metrics(body)
    assert ("AWS/EC2", "StatusCheckFailed", {"AutoScalingGroupName": ASG}) in rows
    assert (HOST_NS, "disk_used_percent", HOST_DIMS) in rows
    free = next(w for w in body["widgets"] if w["properties"].get("title") == "Qdrant volume free (%)")
    assert {"label": "free-space alarm", "value": 20} in free["properties"]["annotations"]["horizontal"]
    assert any(
        row[0].get("expression") == "100 - used" for row in free["properties"]["metrics"] if len(row) == 1
    )


def test_sampling_rule_when_tracing(mocks: RecordingMonitor) -> None:
    monitoring = build(prod_args())
    rule = mocks.one("aws:xray/samplingRule:SamplingRule").inputs
    assert rule["ruleName"] == "wwhd-test" and len(rule["ruleName"]) <= 32
    assert {k: rule[k] for k in ("priority", "fixedRate", "reservoirSize", "version")} == {
        "priority": 1000, "fixedRate": 0.1, "reservoirSize": 1, "version": 1,
    }  # fmt: skip
    assert rule["serviceName"] == "wwhd-backend"
    for key in ("serviceType", "host", "httpMethod", "urlPath", "resourceArn"):
        assert rule[key] == "*", key
    assert monitoring.sampling_rule_name is not None
    assert resolve(monitoring.sampling_rule_name) == "wwhd-test"


# --- notification ----------------------------------------------------------------------------


def test_topic_is_encrypted_with_the_stack_key(mocks: RecordingMonitor) -> None:
    build(prod_args())
    assert mocks.one(TOPIC).inputs["kmsMasterKeyId"] == KEY


def test_topic_policy_lets_only_this_accounts_alarms_publish(mocks: RecordingMonitor) -> None:
    build(prod_args())
    policy_reg = mocks.one("aws:sns/topicPolicy:TopicPolicy")
    assert policy_reg.inputs["arn"] == TOPIC_ARN
    statements = json.loads(policy_reg.inputs["policy"])["Statement"]
    cloudwatch = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert len(cloudwatch) == 1
    s = cloudwatch[0]
    assert s["Effect"] == "Allow" and s["Action"] == "sns:Publish" and s["Resource"] == TOPIC_ARN
    assert s["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}
    pattern = s["Condition"]["ArnLike"]["aws:SourceArn"]
    # Every alarm of the stack, by the ARN AWS gives it, may publish; another stack's may not.
    for alarm in mocks.of_type(ALARM):
        assert fnmatch.fnmatchcase(
            f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:{alarm.inputs['name']}", pattern
        )
    assert not fnmatch.fnmatchcase(
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:wwhd-prod-alb-5xx", pattern
    )
    # Nothing else is granted to a service or to everyone.
    for other in statements:
        if other is not s:
            assert other["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}


def test_one_email_subscription_per_address(mocks: RecordingMonitor) -> None:
    emails = ["ops@example.com", "oncall@example.org", "OPS@example.com"]
    build(prod_args(config=config(alarm_emails=emails)))
    subs = mocks.of_type(TOPIC_SUBSCRIPTION)
    assert sorted(s.inputs["endpoint"] for s in subs) == ["oncall@example.org", "ops@example.com"]
    for s in subs:
        assert s.inputs["protocol"] == "email"
        assert s.inputs["topic"] == TOPIC_ARN


def test_no_address_means_no_subscription(mocks: RecordingMonitor) -> None:
    build(dev_args(config=config(alarm_emails=[])))
    assert mocks.of_type(TOPIC_SUBSCRIPTION) == []
    assert mocks.of_type(ALARM)  # the alarms still exist, visible on the dashboard


def test_unique_addresses() -> None:
    assert unique_addresses(["A@x.io", "b@x.io", "a@X.io "]) == ["a@x.io", "b@x.io"]


# --- the error-line metric -------------------------------------------------------------------


def cloudwatch_terms_match(pattern: str, line: str) -> bool:
    """CloudWatch's "?A ?B" pattern: the line holds term A or term B (case-sensitive)."""
    terms = [t.removeprefix("?") for t in pattern.split()]
    assert all(t.startswith("?") for t in pattern.split()), "an OR of plain terms"
    return any(t in re.split(r"[^A-Za-z0-9_]+", line) for t in terms)


@pytest.mark.parametrize(
    ("line", "counted"),
    [
        ("ERROR:    Exception in ASGI application", True),
        ("2025-01-02 03:04:05,678 ERROR app.agents: OpenAI call failed", True),
        ("2025-01-02 03:04:05,678 CRITICAL app.main: cannot open /data/app.db", True),
        ('INFO:     10.0.1.23:51234 - "GET /health HTTP/1.1" 200 OK', False),
        ("ValueError: invalid literal for int()", False),
        ("WARNING: retrying after Error 429 from upstream", False),
    ],
)
def test_error_pattern_counts_error_and_critical_lines(line: str, counted: bool) -> None:
    assert cloudwatch_terms_match(ERROR_PATTERN, line) is counted


def test_metric_filter_feeds_the_error_lines_alarm(mocks: RecordingMonitor) -> None:
    monitoring = build(prod_args())
    f = mocks.one("aws:cloudwatch/logMetricFilter:LogMetricFilter").inputs
    assert f["logGroupName"] == API_LOGS
    assert f["pattern"] == ERROR_PATTERN
    t = f["metricTransformation"]
    assert (t["namespace"], t["name"], t["value"], t["defaultValue"]) == ("WWHD/test", ERROR_METRIC, "1", "0")
    assert monitoring.error_metric_namespace == "WWHD/test"
    alarm = alarms(mocks)["api-error-lines"].inputs
    assert (alarm["namespace"], alarm["metricName"]) == (t["namespace"], t["name"])
    assert (alarm["statistic"], alarm["period"], alarm["threshold"]) == ("Sum", 300, 5)


# --- dashboard -------------------------------------------------------------------------------


def test_dashboard_shows_the_watched_resources(mocks: RecordingMonitor) -> None:
    build(prod_args())
    body = dashboard(mocks)
    rows = dashboard_metrics(body)
    seen: set[str] = set()
    for namespace, metric, dims in rows:
        if namespace == "AWS/ApplicationELB":
            assert dims["LoadBalancer"] == ALB, metric
            assert dims.get("TargetGroup", TG) == TG, metric
        elif namespace in ("AWS/ECS", "ECS/ContainerInsights"):
            assert dims["ClusterName"] == CLUSTER and dims["ServiceName"] in (API, QDRANT), metric
        elif namespace == "AWS/EFS":
            assert dims == {"FileSystemId": FS}, metric
        elif namespace == "AWS/RDS":
            assert dims == {"DBInstanceIdentifier": DB}, metric
        else:
            assert (namespace, metric, dims) == ("WWHD/test", ERROR_METRIC, {})
        seen.update(dims.values())
    assert {ALB, TG, CLUSTER, API, QDRANT, FS, DB} <= seen
    metrics = {m for _, m, _ in rows}
    for wanted in ("RequestCount", "TargetResponseTime", "HTTPCode_Target_4XX_Count", "HTTPCode_Target_5XX_Count",
                   "HTTPCode_ELB_5XX_Count", "HealthyHostCount", "CPUUtilization", "MemoryUtilization",
                   "RunningTaskCount", "MeteredIOBytes", "PercentIOLimit", "BurstCreditBalance",
                   "FreeStorageSpace", "DatabaseConnections"):  # fmt: skip
        assert wanted in metrics, wanted
    percentiles = {
        row[-1]["stat"]
        for w in body["widgets"]
        if w["type"] == "metric"
        for row in w["properties"]["metrics"]
        if "TargetResponseTime" in row
    }
    assert {"p50", "p90", "p99"} <= percentiles


def test_every_dashboard_widget_that_queries_sets_the_region(mocks: RecordingMonitor) -> None:
    build(prod_args())
    widgets = dashboard(mocks)["widgets"]
    queried = [w for w in widgets if w["type"] in ("metric", "log")]
    assert queried
    for w in queried:
        assert w["properties"]["region"] == REGION, w["properties"]["title"]
    logs = [w["properties"]["query"] for w in widgets if w["type"] == "log"]
    assert any(f"SOURCE '{API_LOGS}'" in q for q in logs) and any(f"SOURCE '{PERF_LOGS}'" in q for q in logs)


def test_dashboard_lists_every_alarm_and_fits_the_grid(mocks: RecordingMonitor) -> None:
    build(prod_args())
    widgets = dashboard(mocks)["widgets"]
    listed = [arn for w in widgets if w["type"] == "alarm" for arn in w["properties"]["alarms"]]
    assert sorted(listed) == sorted(a.outputs["arn"] for a in mocks.of_type(ALARM))
    cells: set[tuple[int, int]] = set()
    for w in widgets:
        assert w["x"] >= 0 and w["x"] + w["width"] <= GRID_WIDTH
        for x in range(w["x"], w["x"] + w["width"]):
            for y in range(w["y"], w["y"] + w["height"]):
                assert (x, y) not in cells, "widgets overlap"
                cells.add((x, y))


def test_dev_dashboard_has_no_database_or_qdrant(mocks: RecordingMonitor) -> None:
    build(dev_args(performance_log_group_name=None))
    body = dashboard(mocks)
    rows = dashboard_metrics(body)
    assert not [r for r in rows if r[0] == "AWS/RDS"]
    assert {d.get("ServiceName") for ns, _, d in rows if ns.endswith("ECS") or ns.startswith("ECS/")} == {API}
    assert [w for w in body["widgets"] if w["type"] == "log"] and PERF_LOGS not in json.dumps(body)


def test_outputs(mocks: RecordingMonitor) -> None:
    monitoring = build(prod_args())
    assert resolve(monitoring.topic_arn) == TOPIC_ARN
    assert resolve(monitoring.dashboard_name) == "wwhd-test"
    assert resolve(monitoring.dashboard_url) == (
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#dashboards:name=wwhd-test"
    )
    assert sorted(resolve(monitoring.alarm_names)) == sorted(a.inputs["name"] for a in mocks.of_type(ALARM))
    assert len(resolve(monitoring.alarm_arns)) == len(mocks.of_type(ALARM))
    component = mocks.one("wwhd:index:WwhdMonitoring")
    assert set(mocks.outputs[component.urn]) == {
        "topic_arn", "dashboard_name", "dashboard_url", "alarm_names", "alarm_arns",
        "error_metric_namespace", "sampling_rule_name",
    }  # fmt: skip


def test_inputs_may_be_outputs_of_other_resources(mocks: RecordingMonitor) -> None:
    """The other components hand over Outputs, not strings."""
    out = pulumi.Output.from_input
    build(
        prod_args(
            cluster_name=out(CLUSTER), services=watched(out(API), out(TG), out(QDRANT)), alb_arn_suffix=out(ALB),
            api_log_group_name=out(API_LOGS), file_system_id=out(FS), db_instance_identifier=out(DB),
            key_arn=out(KEY),
        )
    )  # fmt: skip
    assert alarms(mocks)["alb-5xx"].inputs["dimensions"] == LB_DIMS
    assert alarms(mocks)["db-cpu-high"].inputs["dimensions"] == {"DBInstanceIdentifier": DB}
    assert {ALB, TG, FS, DB, QDRANT} <= {
        v for _, _, d in dashboard_metrics(dashboard(mocks)) for v in d.values()
    }


def test_owns_no_application_resources_and_parents_everything(mocks: RecordingMonitor) -> None:
    build(prod_args())
    component = mocks.one("wwhd:index:WwhdMonitoring")
    types = set()
    for r in mocks.registrations:
        if r is component or r.type == "pulumi:pulumi:Stack":
            continue
        assert r.parent == component.urn, r.name
        types.add(r.type)
    assert types == {
        TOPIC, "aws:sns/topicPolicy:TopicPolicy", TOPIC_SUBSCRIPTION, ALARM,
        "aws:cloudwatch/logMetricFilter:LogMetricFilter", "aws:xray/samplingRule:SamplingRule",
        "aws:cloudwatch/dashboard:Dashboard",
    }  # fmt: skip
    assert_log_groups_retained_and_encrypted(mocks.registrations)


# --- args and pure helpers -------------------------------------------------------------------


def test_database_needs_its_allocated_storage() -> None:
    with pytest.raises(ValueError, match=r"WwhdMonitoringArgs\.db_allocated_storage_gb"):
        prod_args(db_allocated_storage_gb=None)


def test_unknown_instance_class_needs_max_connections() -> None:
    with pytest.raises(ValueError, match=r"WwhdMonitoringArgs\.db_max_connections"):
        prod_args(db_instance_class="db.x2g.large")
    assert prod_args(db_instance_class="db.x2g.large", db_max_connections=500).max_connections == 500


def test_throughput_mode_is_checked() -> None:
    with pytest.raises(ValueError, match=r"WwhdMonitoringArgs\.throughput_mode"):
        prod_args(throughput_mode="provisioned")


@pytest.mark.parametrize(
    ("instance_class", "gib"),
    [("db.t4g.micro", 1), ("db.t3.medium", 4), ("db.m6g.large", 8), ("db.m7g.2xlarge", 32),
     ("db.r6g.xlarge", 32), ("db.r7g.16xlarge", 512), ("db.x2g.large", None), ("db.t4g.nano", None),
     ("t4g.micro", None)],
)  # fmt: skip
def test_class_memory(instance_class: str, gib: int | None) -> None:
    assert class_memory_bytes(instance_class) == (gib * GIB if gib else None)


# Defaults measured with SHOW max_connections on RDS (LEAST({DBInstanceClassMemory/9531392},5000)).
OBSERVED_MAX_CONNECTIONS = {"db.t2.small": 198, "db.t2.medium": 413, "db.t2.large": 856, "db.m4.large": 856}


@pytest.mark.parametrize(("instance_class", "observed"), sorted(OBSERVED_MAX_CONNECTIONS.items()))
def test_max_connections_estimate_never_exceeds_the_real_default(instance_class: str, observed: int) -> None:
    estimate = estimated_max_connections(instance_class)
    assert estimate is not None and 0.8 * observed <= estimate <= observed


def test_max_connections_is_capped() -> None:
    assert estimated_max_connections("db.r7g.16xlarge") == 5000


def test_stack_slug() -> None:
    assert stack_slug("acme.prod") == "acme-prod"
    assert stack_slug("dev_2") == "dev_2"
