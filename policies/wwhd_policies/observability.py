"""Observability: load balancer access logs, S3 server access logs, RDS Performance Insights."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from . import _aws as aws
from ._policy import (
    ADVISORY,
    MANDATORY,
    Config,
    Findings,
    resource_policy,
    stack_enforced,
    stack_policy,
    stacks_schema,
)
from ._util import Res, Stack, is_unknown, truthy


@resource_policy(
    "lb-access-logs",
    MANDATORY,
    Severity.MEDIUM,
    types=[*aws.LOAD_BALANCERS, aws.CLASSIC_LB],
    schema={"stacks": stacks_schema("The prod-grade stacks, where load balancers must log")},
    url="https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html",
)
def lb_access_logs(r: Res, cfg: Config, out: Findings) -> None:
    """Application and Classic Load Balancers write access logs in the prod-grade stacks.

    Remediation: Set access_logs={'bucket': <bucket>.bucket, 'enabled': True} (the bucket in the same region,
    SSE-S3 encrypted, with a policy that lets ELB log delivery write). S3 storage costs apply.
    """
    if not stack_enforced(cfg.get("stacks")):
        return
    classic = r.type == aws.CLASSIC_LB
    if not classic and r.get("loadBalancerType", "application") != "application":
        return  # NLBs log TLS listeners only, gateway load balancers nothing
    logs = r.get("accessLogs")
    enabled = logs.get("enabled") if isinstance(logs, dict) else None
    if is_unknown(logs) or is_unknown(enabled):
        out.unknown(
            r, "accessLogs", "whether it logs requests", subject="its access log settings", plural=True
        )
        return
    # Unset `enabled` is true on a Classic Load Balancer and false on an ALB, even with a bucket.
    if not isinstance(logs, dict) or not logs.get("bucket"):
        out.violation(f"{r.label()} writes no access logs: set accessLogs with a bucket.")
    elif (enabled is False) if classic else not truthy(enabled):
        shown = "enabled=false" if enabled is not None else "enabled unset (an ALB's default is off)"
        out.violation(f"{r.label()} has access logs configured with {shown}: set enabled=True.")


@stack_policy("s3-bucket-access-logging", ADVISORY, Severity.LOW)
def s3_bucket_access_logging(stack: Stack, _cfg: Config, out: Findings) -> None:
    """S3 buckets that hold data (every bucket that does not itself receive logs) have server access logging.

    Remediation: Add aws.s3.BucketLogging(bucket=<bucket>.id, target_bucket=<log bucket>.id,
    target_prefix='s3/<bucket>/'); the log bucket needs a policy letting logging.s3.amazonaws.com write.
    """
    log_buckets = aws.log_buckets(stack)
    logged: set[str] = set()
    unknown: list[Res] = []
    for r in stack.of_type(*aws.BUCKET_LOGGING):
        found = stack.resolve(r, "bucket", r.get("bucket"), aws.BUCKETS)
        if found:
            logged.update(b.urn for b in found)
        elif is_unknown(r.get("bucket")):
            unknown.append(r)
    for bucket in stack.of_type(*aws.BUCKETS):
        # A bucket that receives logs is not user data; logging it into a log bucket would loop.
        if bucket.urn in log_buckets or bucket.urn in logged or bucket.get("logging"):
            continue
        if unknown:
            out.cannot_decide(
                f"{bucket.label()}: which bucket {unknown[0].label()} logs is unknown before creation, so "
                "whether this one is logged cannot be judged",
                prop="bucket",
                remedy=aws.BUCKET_REF_REMEDY,
                urn=bucket.urn,
            )
        else:
            out.violation(f"{bucket.label()} holds data but has no server access logging.", bucket.urn)


# Classes without Performance Insights (Database Insights), per engine family; an engine family
# missing here supports every class.
_NO_INSIGHTS = {
    "mysql": ("db.t2.micro", "db.t2.small", "db.t3.micro", "db.t3.small", "db.t4g.micro", "db.t4g.small"),
    "mariadb": ("db.t2.micro", "db.t2.small", "db.t3.micro", "db.t3.small", "db.t4g.micro", "db.t4g.small"),
    "aurora-mysql": ("db.t2.", "db.t3.", "db.t4g.micro", "db.t4g.small"),
}


def _insights_unsupported(engine: Any, instance_class: Any) -> bool:
    family = str(engine or "")
    family = "aurora-mysql" if family in ("aurora", "aurora-mysql") else family
    return isinstance(instance_class, str) and instance_class.startswith(_NO_INSIGHTS.get(family, ()))


def _insights(r: Res) -> Any:
    """performanceInsightsEnabled, where Advanced Database Insights also turns it on."""
    if r.get("databaseInsightsMode") == "advanced":
        return True
    return r.get("performanceInsightsEnabled")


@stack_policy(
    "rds-performance-insights",
    ADVISORY,
    Severity.LOW,
    url="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_DatabaseInsights.Engines.html",
)
def rds_performance_insights(stack: Stack, _cfg: Config, out: Findings) -> None:
    """RDS instances, Aurora cluster instances (or their cluster) and Multi-AZ DB clusters have Performance
    Insights on, where their class supports it.

    Remediation: Set performance_insights_enabled=True with performance_insights_kms_key_id=<key>.arn (7 days
    of history are free; Database Insights' Standard mode keeps the same API after the Performance Insights
    console retires). db.t*.micro/small MySQL and MariaDB classes do not support it.
    """
    judged: list[tuple[Res, list[Res]]] = [(r, []) for r in stack.of_type(aws.RDS_INSTANCE)]
    for inst in stack.of_type(aws.RDS_CLUSTER_INSTANCE):
        own = stack.resolve(inst, "clusterIdentifier", inst.get("clusterIdentifier"), (aws.RDS_CLUSTER,))
        judged.append((inst, own or []))
    # Multi-AZ DB clusters (not Aurora) carry the setting themselves; Aurora clusters through instances.
    judged += [
        (c, [])
        for c in stack.of_type(aws.RDS_CLUSTER)
        if not str(c.get("engine") or "aurora").startswith("aurora")
    ]
    for r, cluster in judged:
        engine = r.get("engine") or next((c.get("engine") for c in cluster), None)
        instance_class = r.get("instanceClass") or r.get("dbClusterInstanceClass")
        if _insights_unsupported(engine, instance_class):
            continue
        values = [
            _insights(r),
            *(_insights(c) for c in cluster),
        ]  # an Aurora cluster's setting applies to all
        if any(truthy(v) for v in values):
            continue
        if any(is_unknown(v) for v in values):
            out.unknown(r, "performanceInsightsEnabled", "Performance Insights")
            continue
        out.violation(
            f"{r.label()} runs without Performance Insights (unset: RDS leaves it off).",
            r.urn,
        )


POLICIES = [lb_access_logs, s3_bucket_access_logging, rds_performance_insights]
