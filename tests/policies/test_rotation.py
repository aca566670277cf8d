"""rotating-secret-readers-refreshed, over the Analyzer gRPC interface: a service whose tasks
inject a rotating secret is redeployed by the stack when it rotates, or the prod stack fails."""

from __future__ import annotations

import json
from typing import Any

from tools.preview.analyzer import load_policy_config

from .conftest import PACK_DIR, UNKNOWN, R

POLICY = "rotating-secret-readers-refreshed"
TD = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
DB = "aws:rds/instance:Instance"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
MACHINE = "aws:sfn/stateMachine:StateMachine"
ACCOUNT = "arn:aws:secretsmanager:us-west-2:123456789012"
MASTER = f"{ACCOUNT}:secret:rds!db-0a1b2c3d-AbCdEf"
TD_ARN = "arn:aws:ecs:us-west-2:123456789012:task-definition/api:1"
MACHINE_ARN = "arn:aws:states:us-west-2:123456789012:stateMachine:redeploy-api"


def database(**props: Any) -> R:
    return R(
        DB,
        "db",
        {"manageMasterUserPassword": True, "masterUserSecrets": [{"secretArn": MASTER}], **props},
    )


def task(value_from: Any, **extra: Any) -> R:
    containers = [
        {"name": "api", "image": "api:v1", "secrets": [{"name": "DB_PASSWORD", "valueFrom": value_from}]}
    ]
    return R(TD, "api-td", {"arn": TD_ARN, "containerDefinitions": json.dumps(containers)}, **extra)


SERVICE_API = R(SERVICE, "api", {"name": "api", "cluster": "wwhd", "taskDefinition": TD_ARN})


def rule(pattern: dict[str, Any] | str, **props: Any) -> R:
    return R(
        RULE,
        "rotated",
        {
            "name": "rotated",
            "eventPattern": pattern if isinstance(pattern, str) else json.dumps(pattern),
            **props,
        },
    )


LABEL_UPDATED = {"source": ["aws.secretsmanager"], "detail-type": ["Secret Label Updated"]}


def machine(service: Any = "api", force: bool = True, key: str = "Service") -> R:
    definition = {
        "StartAt": "Redeploy",
        "States": {
            "Redeploy": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:ecs:updateService",
                "Parameters": {"Cluster": "wwhd", key: service, "ForceNewDeployment": force},
                "End": True,
            }
        },
    }
    return R(MACHINE, "redeploy", {"arn": MACHINE_ARN, "definition": json.dumps(definition)})


TARGET_MACHINE = R(TARGET, "rotated-redeploy", {"rule": "rotated", "arn": MACHINE_ARN})


def violations(pack, specs: list[R], config: dict[str, Any] | None = None) -> list[str]:
    found = pack.run(POLICY, specs, config)
    assert not [f for f in found if f.undecided], found
    return [f.text for f in found]


# --- RDS-managed master secrets ------------------------------------------------------------------


def test_a_master_secret_injected_and_never_refreshed_violates(pack) -> None:
    # valueFrom with a JSON key: <secret ARN>:<json-key>:<version-stage>:<version-id>
    [text] = violations(pack, [database(), task(f"{MASTER}:password::"), SERVICE_API])
    assert text.startswith(
        "TaskDefinition 'api-td' injects the RDS-managed master secret of Instance 'db' into container 'api' "
        "(DB_PASSWORD), and nothing in the stack redeploys Service 'api' when it rotates"
    )


def test_a_state_machine_forcing_a_new_deployment_on_rotation_refreshes_the_readers(pack) -> None:
    stack = [database(), task(MASTER), SERVICE_API, rule(LABEL_UPDATED), TARGET_MACHINE, machine()]
    assert violations(pack, stack) == []
    # The rule may name the secret: by ARN in resources, or by RDS's name prefix.
    for pattern in (
        {**LABEL_UPDATED, "resources": [MASTER]},
        {**LABEL_UPDATED, "detail": {"name": [{"prefix": "rds!"}], "labelUpdated": ["AWSCURRENT"]}},
        {
            "source": ["aws.secretsmanager"],
            "detail-type": ["AWS Service Event via CloudTrail"],
            "detail": {"eventName": ["RotationSucceeded"]},
        },
    ):
        assert violations(pack, [*stack[:3], rule(pattern), *stack[4:]]) == [], pattern


def test_rules_and_targets_that_do_not_redeploy_the_service_violate(pack) -> None:
    base = [database(), task(MASTER), SERVICE_API]
    cases = {
        "another secret": [
            rule({**LABEL_UPDATED, "resources": [f"{ACCOUNT}:secret:other-AbCdEf"]}),
            TARGET_MACHINE,
            machine(),
        ],
        "only the start of a rotation": [
            rule(
                {
                    "source": ["aws.secretsmanager"],
                    "detail-type": ["AWS API Call via CloudTrail"],
                    "detail": {"eventName": ["RotateSecret"]},
                }
            ),
            TARGET_MACHINE,
            machine(),
        ],
        "a custom event bus": [rule(LABEL_UPDATED, eventBusName="app"), TARGET_MACHINE, machine()],
        "a disabled rule": [rule(LABEL_UPDATED, state="DISABLED"), TARGET_MACHINE, machine()],
        "another service": [rule(LABEL_UPDATED), TARGET_MACHINE, machine("worker")],
        "no forced deployment": [rule(LABEL_UPDATED), TARGET_MACHINE, machine(force=False)],
        "a topic target": [
            rule(LABEL_UPDATED),
            R(TARGET, "page", {"rule": "rotated", "arn": "arn:aws:sns:us-west-2:1:t"}),
        ],
    }
    for why, extra in cases.items():
        assert len(violations(pack, [*base, *extra])) == 1, why


def test_iam_database_authentication_injects_no_rotating_secret(pack) -> None:
    """The project's own API: IAM auth tokens, configuration from Parameter Store by name."""
    api = task("/wwhd/prod/database-host")
    assert violations(pack, [database(iamDatabaseAuthenticationEnabled=True), api, SERVICE_API]) == []


def test_rotation_turned_off_or_no_long_running_service_needs_nothing(pack) -> None:
    off = R(
        "aws:secretsmanager/secretRotation:SecretRotation",
        "no-rotation",
        {"secretId": MASTER, "rotationEnabled": False},
    )
    assert violations(pack, [database(), off, task(MASTER), SERVICE_API]) == []
    # A task run on a schedule reads the current value each time it starts.
    assert violations(pack, [database(), task(MASTER)]) == []


def test_an_rds_secret_of_another_stack_rotates_too(pack) -> None:
    elsewhere = f"{ACCOUNT}:secret:rds!cluster-9f8e7d6c-ZyXwVu:password::"
    [text] = violations(pack, [task(elsewhere), SERVICE_API])
    assert "injects an RDS-managed secret into container 'api'" in text


# --- secrets with a rotation schedule -------------------------------------------------------------


def test_a_secret_rotated_by_the_stack_needs_its_readers_refreshed(pack) -> None:
    secret = R("aws:secretsmanager/secret:Secret", "api-key", {"arn": UNKNOWN, "name": "wwhd/api-key"})
    rotation = R.referencing(
        "aws:secretsmanager/secretRotation:SecretRotation",
        "api-key-rotation",
        {"rotationRules": {"automaticallyAfterDays": 30}},
        secretId="api-key",
    )
    # The task definition names the secret by ARN, its random suffix included.
    injected = task(f"{ACCOUNT}:secret:wwhd/api-key-AbCdEf")
    [text] = violations(pack, [secret, rotation, injected, SERVICE_API])
    assert "injects Secret 'api-key' (rotated by SecretRotation 'api-key-rotation')" in text
    # A Lambda target whose role may call ecs:UpdateService on the service redeploys it.
    role = R(
        "aws:iam/role:Role", "redeployer", {"name": "redeployer", "arn": "arn:aws:iam::1:role/redeployer"}
    )
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ecs:UpdateService",
                "Resource": "arn:aws:ecs:us-west-2:1:service/wwhd/api",
            }
        ],
    }
    policy = R(
        "aws:iam/rolePolicy:RolePolicy", "redeployer", {"role": "redeployer", "policy": json.dumps(grant)}
    )
    function = R(
        "aws:lambda/function:Function",
        "redeploy",
        {"arn": "arn:aws:lambda:us-west-2:1:function:redeploy", "role": "arn:aws:iam::1:role/redeployer"},
    )
    target = R(
        TARGET, "to-lambda", {"rule": "rotated", "arn": "arn:aws:lambda:us-west-2:1:function:redeploy"}
    )
    stack = [secret, rotation, injected, SERVICE_API, rule(LABEL_UPDATED), target, function, role]
    assert violations(pack, [*stack, policy]) == []
    assert len(violations(pack, stack)) == 1  # the same function without the permission


# --- undecided, and where it applies --------------------------------------------------------------


def test_what_is_unknown_before_creation_is_undecided(pack) -> None:
    # A valueFrom unknown before creation, from a task definition that depends on the database.
    unknown_value = task(UNKNOWN, prop_deps={"containerDefinitions": ["db"]})
    [found] = pack.run(POLICY, [database(masterUserSecrets=UNKNOWN), unknown_value, SERVICE_API])
    assert found.undecided and found.text.startswith(
        "undecided [containerDefinitions]: TaskDefinition 'api-td': "
    )
    # The state machine reads the service from its input.
    dynamic = [
        database(),
        task(MASTER),
        SERVICE_API,
        rule(LABEL_UPDATED),
        TARGET_MACHINE,
        machine("$.service", key="Service.$"),
    ]
    [found] = pack.run(POLICY, dynamic)
    assert found.undecided and found.text.startswith("undecided [definition]: ")
    # A value unknown before creation that depends on no rotating secret is not one.
    other = task(UNKNOWN, prop_deps={"containerDefinitions": ["api"]})
    assert pack.run(POLICY, [database(), other, SERVICE_API]) == []


def test_mandatory_in_prod_advisory_in_dev_silent_in_stacks_not_listed(pack) -> None:
    stack = [database(), task(MASTER), SERVICE_API]
    for config, level in (("prod", "mandatory"), ("dev", "advisory")):
        found = pack.run_all(stack, load_policy_config(PACK_DIR / "config" / f"{config}.json"))
        assert [f.level for f in found if f.policy == POLICY] == [level], config
    # The pack runs as stack "prod": a config listing other stacks leaves it alone.
    assert pack.run(POLICY, stack, {"stacks": ["staging"]}) == []
