"""Reliability: valid Fargate sizes, safe deployments, health checks, pinned images from the private
registry, container memory that fits, alarms that notify."""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import Severity

from . import _aws as aws
from ._policy import ADVISORY, MANDATORY, Config, Findings, resource_policy, setting, stack_policy
from ._util import LITERAL, Res, Stack, as_int, as_list, is_unknown, stack_config, truthy


def fargate_size_valid(cpu: int, memory: int) -> bool:
    return memory in aws.FARGATE_SIZES.get(cpu, [])


@resource_policy(
    "fargate-task-size-valid",
    MANDATORY,
    Severity.HIGH,
    types=[aws.TASK_DEF],
    url="https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size",
)
def fargate_task_size_valid(r: Res, _cfg: Config, out: Findings) -> None:
    """Fargate task definitions use a cpu/memory pair that Fargate offers.

    Remediation: Pick a supported pair: 256 (512/1024/2048 MiB), 512 (1-4 GiB), 1024 (2-8 GiB), 2048 (4-16
    GiB), 4096 (8-30 GiB, 1 GiB steps), 8192 (16-60 GiB, 4 GiB steps), 16384 (32-120 GiB, 8 GiB steps).
    """
    compat = r.get("requiresCompatibilities")
    if is_unknown(compat):
        out.unknown(r, "requiresCompatibilities", "whether it runs on Fargate")
        return
    if "FARGATE" not in as_list(compat):
        return
    cpu_raw, mem_raw = r.get("cpu"), r.get("memory")
    if is_unknown(cpu_raw) or is_unknown(mem_raw):
        prop = "cpu" if is_unknown(cpu_raw) else "memory"
        out.unknown(r, prop, "the Fargate size", subject="its cpu or memory")
        return
    cpu, mem = aws.parse_cpu(cpu_raw), aws.parse_memory(mem_raw)
    if cpu is None or mem is None:
        out.violation(f"{r.label()}: Fargate task definitions need task-level cpu and memory.")
        return
    if not fargate_size_valid(cpu, mem):
        allowed = aws.FARGATE_SIZES.get(cpu)
        hint = (
            f"with cpu {cpu} memory may be {allowed[0]}-{allowed[-1]} MiB in steps of "
            f"{allowed[1] - allowed[0] if len(allowed) > 1 else allowed[0]}"
            if allowed
            else f"cpu must be one of {sorted(aws.FARGATE_SIZES)}"
        )
        out.violation(f"{r.label()}: cpu {cpu} / memory {mem} MiB is not a Fargate size ({hint}).")


@resource_policy("ecs-deployment-circuit-breaker", MANDATORY, Severity.MEDIUM, types=[aws.SERVICE])
def ecs_deployment_circuit_breaker(r: Res, _cfg: Config, out: Findings) -> None:
    """ECS services use the deployment circuit breaker with rollback.

    Remediation: Set deployment_circuit_breaker={'enable': True, 'rollback': True}.
    """
    controller = r.get("deploymentController")
    if isinstance(controller, dict) and controller.get("type") in ("CODE_DEPLOY", "EXTERNAL"):
        return
    # Unset deploymentCircuitBreaker is ECS's disabled.
    cb = r.get("deploymentCircuitBreaker")
    if is_unknown(cb) or (isinstance(cb, dict) and any(is_unknown(v) for v in cb.values())):
        out.unknown(r, "deploymentCircuitBreaker", "rollback of failed deployments")
        return
    if not isinstance(cb, dict) or not truthy(cb.get("enable")):
        out.violation(f"{r.label()} has no deployment circuit breaker: a bad image keeps restarting forever.")
    elif not truthy(cb.get("rollback")):
        out.violation(f"{r.label()}'s circuit breaker does not roll back to the last working deployment.")


@resource_policy("container-health-check", ADVISORY, Severity.LOW, types=[aws.TASK_DEF])
def container_health_check(r: Res, _cfg: Config, out: Findings) -> None:
    """Essential containers define a container health check.

    Remediation: Add healthCheck {command, interval, timeout, retries, startPeriod} to each essential
    container, with a probe the image can run: slim images often ship no curl, so a Python image can use
    ['CMD', 'python', '-c', "import urllib.request; urllib.request.urlopen('http://localhost:8000/health')"].
    """
    for c in aws.containers(r, out, "container health checks") or []:
        if c.get("essential", True) is False:
            continue
        hc = c.get("healthCheck")
        if not isinstance(hc, dict) or not as_list(hc.get("command")):
            out.violation(f"{r.label()}: essential container '{c.get('name')}' has no healthCheck.")


def image_reference_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None when it has a digest or an explicit version tag."""
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag (Docker pulls 'latest')"
    tag = last.rsplit(":", 1)[1]
    if tag.lower() in ("latest", "stable", "main", "master", "dev", ""):
        return f"uses the moving tag '{tag}'"
    return None


@resource_policy("image-pinned", MANDATORY, Severity.MEDIUM, types=[aws.TASK_DEF])
def image_pinned(r: Res, _cfg: Config, out: Findings) -> None:
    """Container images are pinned by digest or an explicit version tag (never latest/untagged).

    Remediation: Reference images as repo:1.2.3 or repo@sha256:<digest> (e.g. qdrant/qdrant:v1.12.4); with
    immutable ECR tags a version tag cannot move.
    """
    for c in aws.containers(r, out, "image pinning") or []:
        image = c.get("image")
        if is_unknown(image):
            out.unknown(
                r,
                "containerDefinitions",
                "image pinning",
                subject=f"the image of container '{c.get('name')}'",
                remedy="build the image reference from values known before creation (a repository URL from "
                "names you set, a version tag or digest from the stack configuration)",
            )
            continue
        if not isinstance(image, str) or not image:
            out.violation(f"{r.label()}: container '{c.get('name')}' has no image.")
            continue
        problem = image_reference_problem(image)
        if problem:
            out.violation(f"{r.label()}: container '{c.get('name')}' image {image} {problem}.")


# --- container memory ---------------------------------------------------------------------------

DEFAULT_MEMORY_FLOOR_MIB = 512


@resource_policy(
    "container-memory-fits",
    MANDATORY,
    Severity.MEDIUM,
    types=[aws.TASK_DEF],
    schema={
        "minEssentialMemoryMib": setting(
            "The lowest hard memory limit (MiB) an essential container may have.", DEFAULT_MEMORY_FLOOR_MIB
        )
    },
)
def container_memory_fits(r: Res, cfg: Config, out: Findings) -> None:
    """Container hard memory limits sum to no more than the task's memory, and no essential container's hard
    limit is below the floor.

    Hard limits (`memory`) are what the kernel kills a container at; a reservation
    (`memoryReservation`) only places it. So: the hard limits fit in the task's memory, and no
    essential container (whose death stops the task) is capped below the floor. A container
    without a hard limit is bounded by the task's memory and adds nothing to the sum, so it is
    not flagged; without task-level memory (EC2 launch type) ECS needs each container to say one
    of the two, and the task is judged by its containers alone.

    Remediation: Size each container's memory (hard limit) so their sum fits in the task's memory, and keep
    essential containers at or above the floor (a sidecar that can die without stopping the task may go lower
    with essential=False); put memoryReservation at or below the hard limit. Without task-level memory (EC2
    launch type), give every container memory or memoryReservation.
    """
    conts = aws.containers(r, out, "container memory limits")
    if conts is None:
        return
    task_raw = r.get("memory")
    if is_unknown(task_raw):
        out.unknown(r, "memory", "whether its containers' hard limits fit", subject="its memory")
    task = None if is_unknown(task_raw) else aws.parse_memory(task_raw)
    floor = as_int(cfg.get("minEssentialMemoryMib")) or 0
    limits: list[tuple[str, int]] = []
    for c in conts:
        name = c.get("name")
        hard, soft = as_int(c.get("memory")), as_int(c.get("memoryReservation"))
        if hard is not None:
            limits.append((str(name), hard))
            if c.get("essential", True) is not False and hard < floor:
                out.violation(
                    f"{r.label()}: essential container '{name}' has a hard memory limit of {hard} MiB, below "
                    f"the floor of {floor} MiB: the kernel kills it there, and the task with it."
                )
            if soft is not None and soft > hard:
                out.violation(
                    f"{r.label()}: container '{name}' reserves {soft} MiB, more than its hard limit of "
                    f"{hard} MiB (ECS refuses the task definition)."
                )
        elif soft is None and task_raw is None:
            out.violation(
                f"{r.label()}: container '{name}' sets neither memory nor memoryReservation, and the task "
                "has no task-level memory (ECS refuses the task definition)."
            )
    total = sum(mib for _, mib in limits)
    if task is not None and total > task:
        parts = " + ".join(f"{name} {mib}" for name, mib in limits)
        out.violation(
            f"{r.label()}: its containers' hard memory limits ({parts} = {total} MiB) exceed the task's "
            f"{task} MiB."
        )


# --- where images come from -------------------------------------------------------------------

# <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]: an account's private ECR registry (its
# pull-through cache repositories included).
_ECR_PRIVATE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$"
)


def image_registry(image: str) -> str:
    """The registry host of an image reference: its first path component when that looks like a
    host (has a dot or a port, or is localhost), else Docker Hub."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _accounts(cfg: dict[str, Any]) -> set[str]:
    """The accounts whose registries are this stack's: the policy's accountIds, else the provider's
    aws:allowedAccountIds from the stack configuration; empty when neither says."""
    configured = [str(a) for a in as_list(cfg.get("accountIds")) if a]
    return set(configured or [str(a) for a in as_list(stack_config("aws:allowedAccountIds")) if a])


# Advisory where no config says more: the program accepts public images (images.pullThroughCache
# off), and a stack without a config file must not fail on that valid choice; prod.json makes
# it mandatory.
@resource_policy(
    "image-from-private-registry",
    ADVISORY,
    Severity.MEDIUM,
    types=[aws.TASK_DEF],
    schema={
        "accountIds": setting(
            "The accounts whose ECR registries count as private (default: the stack's "
            "aws:allowedAccountIds; with neither, any account's private ECR registry).",
            [],
            items="string",
        )
    },
)
def image_from_private_registry(r: Res, cfg: Config, out: Findings) -> None:
    """Task definitions pull every image from the account's private ECR registry
    (<account>.dkr.ecr.<region>.amazonaws.com, pull-through cache paths included).

    Remediation: Push the image to the stack's ECR repository, or pull a public image through an ECR
    pull-through cache rule (<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/<upstream path>): Docker Hub
    limits anonymous pulls per source IP, and every task behind one NAT address shares the limit; a public
    registry outage or a deleted tag then stops new tasks.
    """
    accounts = _accounts(cfg)
    for c in aws.containers(r, out, "where its images come from") or []:
        image = c.get("image")
        if is_unknown(image) or not isinstance(image, str) or not image:
            continue  # image-pinned reports a missing or unknown image
        host = image_registry(image)
        found = _ECR_PRIVATE.match(host)
        if found is None:
            out.violation(
                f"{r.label()}: container '{c.get('name')}' pulls {image} from {host}, not from the account's "
                "private ECR registry."
            )
        elif accounts and found["account"] not in accounts:
            out.violation(
                f"{r.label()}: container '{c.get('name')}' pulls {image} from the ECR registry of account "
                f"{found['account']}, not of {', '.join(sorted(accounts))}."
            )


def _alarm_names(alarm: Res) -> set[str]:
    """What a composite alarm's rule can call an alarm by: its name and its ARN."""
    key = "alarmName" if alarm.type == aws.COMPOSITE_ALARM else "name"
    return {v for v in (alarm.get(key), alarm.get("arn")) if isinstance(v, str) and v and not is_unknown(v)}


def _feeds(stack: Stack) -> dict[str, list[Res]]:
    """alarm urn -> the composite alarms whose rule names it: by name or ARN in a known rule, by
    property dependency while the rule is built from outputs unknown before creation."""
    alarms = stack.of_type(aws.METRIC_ALARM, aws.COMPOSITE_ALARM)
    fed: dict[str, list[Res]] = {}
    for composite in stack.of_type(aws.COMPOSITE_ALARM):
        rule = composite.get("alarmRule")
        named = set(composite.property_dependencies.get("alarmRule", []))
        if isinstance(rule, str) and not is_unknown(rule):
            # ALARM("name"), OK(name), ALARM('arn:...'): a quoted or bare name in parentheses.
            named |= {
                a.urn
                for a in alarms
                for n in _alarm_names(a)
                if re.search(r"\(\s*[\"']?" + re.escape(n) + r"[\"']?\s*\)", rule)
            }
        for urn in named:
            fed.setdefault(urn, []).append(composite)
    return fed


def _notifies(alarm: Res, fed: dict[str, list[Res]], seen: frozenset[str] = frozenset()) -> tuple[bool, str]:
    """(does the alarm notify, directly or through composite alarms that notify; why not)."""
    if alarm.get("actionsEnabled") is False:  # unset is CloudWatch's true
        return False, "has its actions disabled"
    actions = alarm.get("alarmActions")
    # A list of ARNs computed before creation is still a list of actions.
    if is_unknown(actions) or as_list(actions):
        return True, ""
    for composite in fed.get(alarm.urn, ()):
        if composite.urn not in seen and _notifies(composite, fed, seen | {alarm.urn})[0]:
            return True, ""
    if fed.get(alarm.urn):
        return False, "feeds only composite alarms that notify nobody"
    return (
        False,
        "notifies nobody: set alarmActions (an SNS topic), or feed it to a composite alarm that does",
    )


@stack_policy("alarm-has-actions", ADVISORY, Severity.LOW)
def alarm_has_actions(stack: Stack, _cfg: Config, out: Findings) -> None:
    """CloudWatch alarms notify someone: alarmActions set and actions enabled, directly or through a composite
    alarm whose rule names them.

    Remediation: Set alarm_actions=[topic.arn] (and ok_actions) to an encrypted SNS topic with a subscription,
    or name the alarm in the alarm_rule of a composite alarm that has them.
    """
    fed = _feeds(stack)
    for alarm in stack.of_type(aws.METRIC_ALARM, aws.COMPOSITE_ALARM):
        ok, why = _notifies(alarm, fed)
        if not ok:
            out.violation(f"{alarm.label()} {why}.", alarm.urn)


@resource_policy("target-group-health-check", ADVISORY, Severity.LOW, types=list(aws.TARGET_GROUPS))
def target_group_health_check(r: Res, _cfg: Config, out: Findings) -> None:
    """Target groups set a health check path and thresholds/timeouts within AWS limits.

    Remediation: health_check={'path': '/health', 'healthy_threshold': 2, 'unhealthy_threshold': 3, 'timeout':
    5, 'interval': 30, 'matcher': '200'}: thresholds 2-10, timeout 2-120 and below interval, interval 5-300.
    """
    if r.get("targetType") == "lambda":
        return
    hc = r.get("healthCheck")
    if is_unknown(hc):
        out.unknown(r, "healthCheck", "the health check")
        return
    if not isinstance(hc, dict):
        out.violation(f"{r.label()} relies on the default health check: set path, thresholds and timeouts.")
        return
    if hc.get("enabled") is False:
        out.violation(f"{r.label()} has health checks disabled.")
        return
    protocol = hc.get("protocol") or r.get("protocol") or "HTTP"
    if protocol in ("HTTP", "HTTPS") and not hc.get("path"):
        out.violation(f"{r.label()}: health check path not set (defaults to '/').")
    limits = {
        "healthyThreshold": (2, 10),
        "unhealthyThreshold": (2, 10),
        "timeout": (2, 120),
        "interval": (5, 300),
    }
    values: dict[str, int | None] = {}
    for key, (lo, hi) in limits.items():
        raw = hc.get(key)
        if is_unknown(raw):
            out.cannot_decide(
                f"{r.label()}: healthCheck.{key} is unknown before creation, so it cannot be checked against "
                "AWS limits",
                prop=f"healthCheck.{key}",
                remedy=LITERAL,
            )
            continue
        values[key] = as_int(raw)
        v = values[key]
        if v is not None and not lo <= v <= hi:
            out.violation(f"{r.label()}: healthCheck.{key}={v} is outside AWS limits {lo}-{hi}.")
    timeout, interval = values.get("timeout"), values.get("interval")
    if timeout is not None and interval is not None and timeout >= interval:
        out.violation(
            f"{r.label()}: healthCheck.timeout ({timeout}s) must be less than interval ({interval}s)."
        )


POLICIES = [
    fargate_task_size_valid,
    ecs_deployment_circuit_breaker,
    container_health_check,
    image_pinned,
    alarm_has_actions,
    target_group_health_check,
    container_memory_fits,
    image_from_private_registry,
]
