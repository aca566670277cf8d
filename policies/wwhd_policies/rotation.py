"""Credential rotation: a secret ECS injects at task start is read once, so a service whose tasks
inject a rotating secret must be redeployed when it rotates, or its running tasks keep the old
value (issue 17: an RDS-managed master secret rotates every seven days by default)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import Severity

from . import _aws as aws
from ._policy import (
    MANDATORY,
    Config,
    Findings,
    stack_enforced,
    stack_policy,
    stacks_schema,
)
from ._util import KNOWN_BEFORE_CREATION, Res, Stack, all_of, any_of, as_list, is_unknown, parse_json, truthy
from .security import allow_statements, policy_documents

SECRET_ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
LAMBDA_FUNCTION = "aws:lambda/function:Function"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"

# RDS names the secrets it manages rds!db-<id> (instances) and rds!cluster-<id> (clusters).
RDS_SECRET_PREFIX = "rds!"
_RDS_PREFIXES = {aws.RDS_INSTANCE: "rds!db-", aws.RDS_CLUSTER: "rds!cluster-"}
# The Step Functions AWS SDK integration that redeploys a service (UpdateService has no
# optimized integration).
UPDATE_SERVICE = "arn:aws:states:::aws-sdk:ecs:updateService"

# The events that say a secret has a new current value: the native label event (AWSCURRENT moved),
# the rotation outcome, and the API calls that store a value or move the label. RotateSecret alone
# only starts a rotation: a redeploy then would read the old value.
_LABEL_UPDATED = "Secret Label Updated"
_CLOUDTRAIL_EVENTS = {
    "AWS Service Event via CloudTrail": ("RotationSucceeded",),
    "AWS API Call via CloudTrail": ("PutSecretValue", "UpdateSecretVersionStage"),
}

Verdict = bool | None  # None: cannot be known before creation


@dataclass
class RotatingSecret:
    """A secret that rotates, as far as this stack says what it is."""

    label: str
    arns: set[str] = field(default_factory=set)  # known ARNs, without a JSON key suffix
    names: set[str] = field(default_factory=set)
    prefix: str | None = None  # a name prefix known before the name itself (RDS-managed secrets)
    urns: set[str] = field(default_factory=set)  # resources whose output is this secret's ARN
    unsure: str | None = None  # the property, unknown before creation, that says whether it rotates


def secret_arn(value: str) -> str | None:
    """A Secrets Manager secret ARN without the ":<json-key>:<version-stage>:<version-id>" that ECS
    accepts after it; None when `value` is not one."""
    parts = value.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "secretsmanager" or parts[5] != "secret":
        return None
    return ":".join(parts[:7])


def secret_name(value: str) -> str | None:
    """The secret name a valueFrom names: an ARN's name with its six-character suffix still on
    (name-AbCdEf), or the name under Parameter Store's /aws/reference/secretsmanager/."""
    arn = secret_arn(value)
    if arn is not None:
        return arn.split(":")[6]
    marker = "parameter/aws/reference/secretsmanager/"
    return value.split(marker, 1)[1] if marker in value else None


def _names_match(secret: RotatingSecret, name: str) -> bool:
    """`name` from an ARN carries AWS's random suffix; a secret's own name does not. Only while
    neither its ARN nor its name is known does the name prefix stand for the secret."""
    if any(name == n or name.startswith(n + "-") for n in secret.names):
        return True
    return bool(secret.prefix and not secret.arns and not secret.names and name.startswith(secret.prefix))


def _known(value: Any) -> str | None:
    return value if isinstance(value, str) and value and not is_unknown(value) else None


def rotating_secrets(stack: Stack) -> tuple[list[RotatingSecret], set[str]]:
    """RDS-managed master secrets (manageMasterUserPassword) and the secrets a SecretRotation of
    the stack rotates; and the ARNs of the secrets a SecretRotation with rotationEnabled false
    turns rotation off for."""
    rotations = stack.of_type(SECRET_ROTATION)
    disabled = [r for r in rotations if r.get("rotationEnabled") is False]
    stopped = {
        a for a in (secret_arn(r.get("secretId") or "") for r in disabled if _known(r.get("secretId"))) if a
    }
    found: list[RotatingSecret] = []
    for db in stack.of_type(aws.RDS_INSTANCE, aws.RDS_CLUSTER):
        managed = db.get("manageMasterUserPassword")
        if not (truthy(managed) or is_unknown(managed)):
            continue
        secrets = db.get("masterUserSecrets")
        first = as_list(secrets)[0] if as_list(secrets) and not is_unknown(secrets) else None
        arn = _known(first.get("secretArn")) if isinstance(first, dict) else None
        if any(_rotation_targets(r, db.urn, arn) for r in disabled):
            continue
        found.append(
            RotatingSecret(
                label=f"the RDS-managed master secret of {db.label()}",
                arns={arn} if arn else set(),
                prefix=_RDS_PREFIXES[db.type],
                urns={db.urn},
                unsure="manageMasterUserPassword" if is_unknown(managed) else None,
            )
        )
    for rotation in rotations:
        if rotation in disabled:
            continue
        ref = rotation.get("secretId")
        for secret in stack.resolve(rotation, "secretId", ref, (aws.SECRET,)) or ():
            found.append(
                RotatingSecret(
                    label=f"{secret.label()} (rotated by {rotation.label()})",
                    arns={a for a in (_known(secret.get("arn")), _known(secret.get("id"))) if a},
                    names={n for n in (_known(secret.get("name")),) if n},
                    urns={secret.urn, rotation.urn},
                    unsure="rotationEnabled" if is_unknown(rotation.get("rotationEnabled")) else None,
                )
            )
        if _known(ref) and not stack.resolve(rotation, "secretId", ref, (aws.SECRET,)):
            # A secret outside the stack, by ARN or name.
            arn = secret_arn(ref)
            found.append(
                RotatingSecret(
                    label=f"secret {ref} (rotated by {rotation.label()})",
                    arns={arn} if arn else set(),
                    names=set() if arn else {ref},
                    urns={rotation.urn},
                )
            )
    return found, stopped


def _rotation_targets(rotation: Res, urn: str, arn: str | None) -> bool:
    """Does a SecretRotation name the secret of the resource `urn` (whose secret ARN is `arn`)?"""
    ref = rotation.get("secretId")
    if _known(ref):
        return arn is not None and secret_arn(ref) == arn
    return urn in rotation.property_dependencies.get("secretId", ())


@dataclass
class Injection:
    container: str
    variable: str
    secret: RotatingSecret | None  # None: an RDS-managed secret from outside the stack
    unsure: str | None  # the property, unknown before creation, that leaves the injection uncertain


def _injections(td: Res, secrets: list[RotatingSecret], stopped: set[str], out: Findings) -> list[Injection]:
    """The rotating secrets `td` injects (containers' `secrets[].valueFrom`). A value unknown before
    creation comes from a resource of this stack: it may be a rotating secret only when the task
    definition depends on one."""
    dep_urns = set(td.property_dependencies.get("containerDefinitions", ()))
    deps = [s for s in secrets if s.urns & dep_urns]
    raw = td.get("containerDefinitions")
    if is_unknown(raw):
        return [Injection("?", "?", s, "containerDefinitions") for s in deps]
    found: list[Injection] = []
    for c in aws.containers(td, out, "which secrets it injects", urn=td.urn) or []:
        for entry in as_list(c.get("secrets")):
            if not isinstance(entry, dict):
                continue
            where = (str(c.get("name")), str(entry.get("name")))
            value = entry.get("valueFrom")
            if is_unknown(value):
                found += [Injection(*where, s, "containerDefinitions") for s in deps]
            elif isinstance(value, str):
                found += _matches(value, secrets, stopped, where)
    return found


def _matches(
    value: str, secrets: list[RotatingSecret], stopped: set[str], where: tuple[str, str]
) -> list[Injection]:
    arn, name = secret_arn(value), secret_name(value)
    hits = [
        Injection(*where, s, s.unsure)
        for s in secrets
        if (arn and arn in s.arns) or (name and _names_match(s, name))
    ]
    if not hits and name and name.startswith(RDS_SECRET_PREFIX) and arn not in stopped:
        # RDS manages (and rotates) every secret it names rds!...: one from another stack too.
        hits.append(Injection(*where, None, None))
    return hits


# --- what redeploys a service ------------------------------------------------------------------


def _allows(spec: Any, value: str | None, prefix: str | None = None) -> Verdict:
    """Does an event pattern field (a list of values and matchers) accept `value`? With only a
    known `prefix` of the value, a prefix matcher it extends decides; else None."""
    if spec is None:
        return True
    verdicts: list[Verdict] = []
    for item in as_list(spec):
        if isinstance(item, str):
            verdicts.append(None if value is None else item == value)
        elif isinstance(item, dict) and "prefix" in item:
            p = str(item["prefix"])
            if value is not None:
                verdicts.append(value.startswith(p))
            else:
                verdicts.append(True if prefix and prefix.startswith(p) else None)
        elif isinstance(item, dict) and "wildcard" in item:
            verdicts.append(None if value is None else fnmatch.fnmatchcase(value, str(item["wildcard"])))
        elif isinstance(item, dict) and "equals-ignore-case" in item:
            want = str(item["equals-ignore-case"]).lower()
            verdicts.append(None if value is None else value.lower() == want)
        else:
            verdicts.append(None)  # anything-but, numeric, exists...: not judged here
    return any_of(verdicts)


def _path(doc: Any, *keys: str) -> Any:
    for key in keys:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc


def rule_matches(rule: Res, secret: RotatingSecret, unknown: list[str]) -> Verdict:
    """Does an EventBridge rule on the default bus match an event saying `secret` has a new value?
    (`unknown` collects the properties that leave it undecided.)"""
    bus, state = rule.get("eventBusName"), rule.get("state")
    blind = [k for k in ("eventBusName", "state", "eventPattern") if is_unknown(rule.get(k))]
    if blind:
        unknown += blind
        return None
    if bus not in (None, "default") or state == "DISABLED" or rule.get("isEnabled") is False:
        return False
    try:
        pattern = parse_json(rule.get("eventPattern"))
    except ValueError:
        return False
    if not isinstance(pattern, dict):
        return False
    raw_detail = pattern.get("detail")
    detail: dict[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
    kinds = [
        # The native event carries no eventSource or eventName: a pattern asking for them misses it.
        all_of(
            [
                _allows(pattern.get("detail-type"), _LABEL_UPDATED),
                _allows(detail.get("labelUpdated"), "AWSCURRENT"),
                "eventSource" not in detail and "eventName" not in detail,
            ]
        ),
        *(
            all_of(
                [
                    _allows(pattern.get("detail-type"), kind),
                    _allows(detail.get("eventSource"), "secretsmanager.amazonaws.com"),
                    any_of(_allows(detail.get("eventName"), n) for n in names),
                ]
            )
            for kind, names in _CLOUDTRAIL_EVENTS.items()
        ),
    ]
    verdict = all_of(
        [_allows(pattern.get("source"), "aws.secretsmanager"), any_of(kinds), _names_secret(pattern, secret)]
    )
    if verdict is None:
        unknown.append("eventPattern")
    return verdict


def _names_secret(pattern: dict[str, Any], secret: RotatingSecret) -> Verdict:
    """A pattern that filters on secrets (by ARN or name, wherever the event carries them) must
    let this one through; one that names none matches every secret."""
    by_arn = [
        pattern.get("resources"),
        _path(pattern, "detail", "responseElements", "arn"),
        _path(pattern, "detail", "responseElements", "aRN"),
        _path(pattern, "detail", "requestParameters", "secretId"),
        _path(pattern, "detail", "additionalEventData", "SecretId"),
    ]
    by_name = [_path(pattern, "detail", "name")]
    filters = [f for f in by_arn + by_name if f is not None]
    if not filters:
        return True
    arns = sorted(secret.arns) or [None]
    names = sorted(secret.names) or [None]
    verdicts = [_allows(f, a) for f in by_arn if f is not None for a in arns]
    # An ARN filter may also be a prefix of the ARN; a name filter sees the name or its prefix.
    verdicts += [_allows(f, n, secret.prefix) for f in by_name if f is not None for n in names]
    return any_of(verdicts)


def _service_named(value: Any, service: Res) -> Verdict:
    """Does an UpdateService `Service` parameter (a name or an ARN) name this service?"""
    if not isinstance(value, str) or is_unknown(value):
        return None
    name, arn = aws.service_name(service), _known(service.get("id")) or _known(service.get("arn"))
    if value == arn:
        return True
    if name is None:
        return None
    return value == name or value.endswith(f"/{name}")


def _states(definition: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Every state of a Step Functions definition, inside Parallel branches and Map processors too."""
    for state in (definition.get("States") or {}).values():
        if not isinstance(state, dict):
            continue
        yield state
        for branch in as_list(state.get("Branches")):
            if isinstance(branch, dict):
                yield from _states(branch)
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from _states(state[key])


def state_machine_redeploys(machine: Res, service: Res, unknown: list[str]) -> Verdict:
    """Does the state machine call ecs:updateService with ForceNewDeployment for this service?"""
    raw = machine.get("definition")
    if is_unknown(raw):
        unknown.append("definition")
        return None
    try:
        definition = parse_json(raw)
    except ValueError:
        return False
    verdicts: list[Verdict] = []
    for state in _states(definition if isinstance(definition, dict) else {}):
        if state.get("Type") != "Task" or state.get("Resource") != UPDATE_SERVICE:
            continue
        params = state.get("Parameters") or state.get("Arguments") or {}
        if not isinstance(params, dict) or params.get("ForceNewDeployment") is not True:
            continue
        # "Service.$" (or a JSONata expression) reads the service from the input: not judged here.
        verdicts.append(_service_named(params.get("Service"), service) if "Service" in params else None)
    verdict = any_of(verdicts)
    if verdict is None:
        unknown.append("definition")
    return verdict


def _grants_update_service(statement: dict[str, Any], service: Res) -> Verdict:
    actions = [a.lower() for a in as_list(statement.get("Action")) if isinstance(a, str)]
    if not any(fnmatch.fnmatchcase("ecs:updateservice", a) for a in actions):
        return False
    name = aws.service_name(service)
    verdicts: list[Verdict] = []
    for resource in as_list(statement.get("Resource")):
        if not isinstance(resource, str):
            continue
        if resource == "*":
            verdicts.append(True)
        elif ":service/" in resource:
            tail = resource.split(":service/", 1)[1].rsplit("/", 1)[-1]
            verdicts.append(None if name is None else fnmatch.fnmatchcase(name, tail))
    return any_of(verdicts)


def function_redeploys(stack: Stack, function: Res, service: Res, unknown: list[str]) -> Verdict:
    """A Lambda function's code is not visible to a policy; what it may do is: its role must allow
    ecs:UpdateService on this service (the documents of this stack: the role's inline policies,
    its RolePolicy resources and the customer managed policies attached to it)."""
    roles = stack.resolve(function, "role", function.get("role"), (aws.IAM_ROLE,))
    if not roles:
        unknown.append("role")
        return None
    role = roles[0]
    role_names = {n for n in (_known(role.get("name")), _known(role.get("id"))) if n}
    sources = [role]
    for r in stack.of_type(aws.IAM_ROLE_POLICY, ROLE_POLICY_ATTACHMENT):
        if r.get("role") not in role_names and role.urn not in r.property_dependencies.get("role", ()):
            continue
        if r.type == aws.IAM_ROLE_POLICY:
            sources.append(r)
        else:
            sources += stack.resolve(r, "policyArn", r.get("policyArn"), (aws.IAM_POLICY,)) or []
    scratch = Findings()
    verdicts = [
        _grants_update_service(st, service)
        for source in sources
        for _, doc in policy_documents(source, scratch)
        for st in allow_statements(doc)
    ]
    if scratch.undecided:
        verdicts.append(None)
    verdict = any_of(verdicts)
    if verdict is None:
        unknown.append("policy")
    return verdict


def _targets(stack: Stack, rule: Res) -> list[Res]:
    name = _known(rule.get("name"))
    return [
        t
        for t in stack.of_type(EVENT_TARGET)
        if (name is not None and t.get("rule") == name) or rule.urn in t.property_dependencies.get("rule", ())
    ]


def target_redeploys(stack: Stack, target: Res, service: Res, unknown: list[str]) -> Verdict:
    """Does an event target run something that redeploys `service`: a state machine calling
    ecs:updateService with ForceNewDeployment, or a function allowed to call it?"""
    arn = target.get("arn")
    found = stack.resolve(target, "arn", arn, (STATE_MACHINE, LAMBDA_FUNCTION))
    if found:
        return any_of(
            state_machine_redeploys(r, service, unknown)
            if r.type == STATE_MACHINE
            else function_redeploys(stack, r, service, unknown)
            for r in found
        )
    # A state machine or function of another stack: what it does is not visible here.
    if is_unknown(arn) or (_known(arn) and any(f":{kind}:" in arn for kind in ("states", "lambda"))):
        unknown.append("arn")
        return None
    return False


def refreshed(stack: Stack, service: Res, secret: RotatingSecret | None, unknown: list[str]) -> Verdict:
    """Is `service` redeployed when `secret` (None: an RDS-managed secret from outside the stack)
    rotates? `unknown` collects the properties that leave it undecided."""
    probe = secret or RotatingSecret(label="", prefix=RDS_SECRET_PREFIX)
    verdicts: list[Verdict] = []
    for rule in stack.of_type(EVENT_RULE):
        matched = rule_matches(rule, probe, unknown)
        if matched is False:
            continue
        redeploys = any_of(target_redeploys(stack, t, service, unknown) for t in _targets(stack, rule))
        verdicts.append(all_of([matched, redeploys]))
    return any_of(verdicts)


# --- the policy -------------------------------------------------------------------------------

_REMEDY = (
    "add an EventBridge rule on the default bus matching the secret's rotation (detail-type 'Secret "
    "Label Updated', source aws.secretsmanager) whose target redeploys the service"
)


@stack_policy(
    "rotating-secret-readers-refreshed",
    MANDATORY,
    Severity.HIGH,
    schema={
        "stacks": stacks_schema(
            "Stacks where a service left reading a rotated secret is reported at the policy's level"
        )
    },
)
def rotating_secret_readers_refreshed(stack: Stack, cfg: Config, out: Findings) -> None:
    """A task definition that injects a rotating secret (an RDS-managed master secret, or a secret with a
    rotation schedule in the stack) runs only in services the stack redeploys when it rotates.

    Remediation: ECS injects secrets when a task starts; a rotated value reaches only new tasks. Either read
    the secret at run time (or use IAM database authentication instead of the master password), or add an
    aws.cloudwatch.EventRule on the default bus with event_pattern {'source': ['aws.secretsmanager'],
    'detail-type': ['Secret Label Updated'], 'detail': {'labelUpdated': ['AWSCURRENT']}} (optionally
    'resources': [secret ARN] or detail.name prefix 'rds!') and an aws.cloudwatch.EventTarget running a Step
    Functions state machine whose Task state calls arn:aws:states:::aws-sdk:ecs:updateService with Cluster,
    Service and ForceNewDeployment: true (or a Lambda function whose role may call ecs:UpdateService on that
    service).
    """
    if not stack_enforced(cfg.get("stacks")):
        return
    secrets, stopped = rotating_secrets(stack)
    services_of: dict[str, list[Res]] = {}
    for service in stack.of_type(aws.SERVICE):
        for td in aws.task_definition_of(stack, service) or ():
            services_of.setdefault(td.urn, []).append(service)
    for td in stack.of_type(aws.TASK_DEF):
        services = services_of.get(td.urn)
        if not services:
            continue  # tasks started on their own read the secret's current value when they start
        for injection in _injections(td, secrets, stopped, out):
            what = injection.secret.label if injection.secret else "an RDS-managed secret"
            into = (
                f"container '{injection.container}' ({injection.variable})"
                if injection.container != "?"
                else "its containers"
            )
            for service in services:
                unknown: list[str] = []
                verdict = refreshed(stack, service, injection.secret, unknown)
                if verdict is True:
                    continue
                if injection.unsure:
                    out.cannot_decide(
                        f"{td.label()}: whether it injects {what} into {into}, a secret that rotates, is "
                        f"unknown before creation, and nothing is known to redeploy {service.label()} "
                        "when it does",
                        prop=injection.unsure,
                        remedy=KNOWN_BEFORE_CREATION,
                        urn=td.urn,
                    )
                elif verdict is None:
                    out.cannot_decide(
                        f"{td.label()} injects {what} into {into}; whether an event rule redeploys "
                        f"{service.label()} when it rotates is unknown before creation",
                        prop=", ".join(dict.fromkeys(unknown)) or "eventPattern",
                        remedy=KNOWN_BEFORE_CREATION,
                        urn=td.urn,
                    )
                else:
                    out.violation(
                        f"{td.label()} injects {what} into {into}, and nothing in the stack redeploys "
                        f"{service.label()} when it rotates: running tasks keep the old value until they "
                        "are replaced, and fail once it stops working.",
                        td.urn,
                    )


POLICIES = [rotating_secret_readers_refreshed]
