"""The cost-ceiling and cost-increase-ceiling stack policies."""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UnknownValueError
from wwhd_policies import cost

from .conftest import UNKNOWN, R, check_stack, urn

STACK = [
    R("aws:lb/loadBalancer:LoadBalancer", "alb", {"subnets": ["a", "b"]}),
    R("aws:kms/key:Key", "key", {}),
    R("aws:ec2/securityGroup:SecurityGroup", "sg", {}),
]
# ALB hours + 1 LCU + 2 public IPv4, and a KMS key.
STACK_MONTHLY = 730 * (0.0225 + 0.008) + 2 * 0.005 * 730 + 1.0


def test_under_the_ceiling_passes() -> None:
    assert check_stack(cost.cost_ceiling, STACK, {"maxMonthlyUsd": 100, "maxPeakMonthlyUsd": 100}) == []


def test_over_the_ceiling_itemizes_biggest_costs_and_priced_levers() -> None:
    stack = [
        *STACK,
        R(
            "aws:rds/instance:Instance",
            "db",
            {"instanceClass": "db.t4g.medium", "engine": "postgres", "multiAz": True, "allocatedStorage": 20},
        ),
    ]
    found = check_stack(cost.cost_ceiling, stack, {"maxMonthlyUsd": 10})
    assert len(found) == 1
    message = found[0][0]
    assert "baseline" in message and "$10.00" in message
    assert message.index("db") < message.index("alb") < message.index("key")  # biggest first
    # Single-AZ saves one instance and half the storage: 0.065 * 730 + 20 * 0.115.
    assert "lever: Single-AZ RDS instead of Multi-AZ for db, saves $49.75" in message


# Resources the model cannot price: an instance class it has no price for, a type outside the model,
# a service whose task count is unknown before creation.
UNPRICEABLE = [
    *STACK,
    R("aws:ec2/instance:Instance", "box", {"instanceType": "zz9.huge"}),
    R("aws:sqs/queue:Queue", "queue", {}),
]


def test_without_a_ceiling_nothing_is_reported_over_grpc(pack) -> None:
    """A stack whose policy config sets no ceiling (no maxMonthlyUsd, no maxPeakMonthlyUsd) gets no
    finding from the pack as the engine runs it: no violation, and no "cannot price" undecided check,
    whatever the model cannot price."""
    stack = [*UNPRICEABLE, *UNKNOWN_COUNT]
    assert pack.run("cost-ceiling", stack) == []
    assert pack.run("cost-increase-ceiling", stack) == []
    # The same stack under a ceiling: every resource the model cannot price is reported.
    found = pack.run("cost-ceiling", stack, {"maxPeakMonthlyUsd": 10_000})
    assert sorted(f.name for f in found) == ["api", "box", "queue"]


def test_a_resource_that_cannot_be_priced_is_a_violation_naming_it() -> None:
    stack = [*STACK, R("aws:ec2/instance:Instance", "box", {"instanceType": "zz9.huge"})]
    found = check_stack(cost.cost_ceiling, stack, {"maxMonthlyUsd": 1000})
    assert len(found) == 1
    message, where = found[0]
    assert where == urn("aws:ec2/instance:Instance", "box")
    assert "Instance 'box' can cost money but the cost model cannot price it" in message
    assert "zz9.huge" in message


def test_an_accepted_unpriced_type_passes() -> None:
    stack = [*STACK, R("aws:sqs/queue:Queue", "queue", {})]
    config = {"maxMonthlyUsd": 1000, "acceptedUnpricedTypes": ["aws:sqs/queue:Queue"]}
    assert check_stack(cost.cost_ceiling, stack, config) == []
    assert len(check_stack(cost.cost_ceiling, stack, {"maxMonthlyUsd": 1000})) == 1


UNKNOWN_COUNT = [
    R(
        "aws:ecs/taskDefinition:TaskDefinition",
        "td",
        {"arn": "arn:aws:ecs:us-west-2:1:task-definition/td:1", "cpu": "256", "memory": "512"},
    ),
    R(
        "aws:ecs/service:Service",
        "api",
        {
            "launchType": "FARGATE",
            "taskDefinition": "arn:aws:ecs:us-west-2:1:task-definition/td:1",
            "desiredCount": UNKNOWN,
        },
    ),
]


def test_an_unknown_value_leaves_the_ceiling_undecided_on_its_resource(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PULUMI_DRY_RUN", "true")
    [(message, where)] = check_stack(cost.cost_ceiling, UNKNOWN_COUNT, {"maxMonthlyUsd": 100})
    assert where == urn("aws:ecs/service:Service", "api")
    assert message.startswith(
        "undecided [desiredCount]: Service 'api' cannot be priced during preview: desiredCount is not known yet; "
    )
    # The stack's config can downgrade it to the SDK's advisory "can't run policy".
    with pytest.raises(UnknownValueError, match=r"Service 'api' cannot be priced during preview"):
        check_stack(cost.cost_ceiling, UNKNOWN_COUNT, {"maxMonthlyUsd": 100, "undecided": "advisory"})


def test_outside_a_preview_the_message_does_not_say_preview(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_DRY_RUN", raising=False)
    [(message, _)] = check_stack(cost.cost_ceiling, UNKNOWN_COUNT, {"maxMonthlyUsd": 100})
    assert "preview" not in message
    assert "desiredCount is not known yet" in message


# --- cost-increase-ceiling ---------------------------------------------------------------------


def test_increase_without_a_recorded_bill_does_not_apply() -> None:
    assert check_stack(cost.cost_increase_ceiling, STACK, {"maxIncreaseUsd": 0}) == []


def test_increase_above_the_limit_violates() -> None:
    recorded = round(STACK_MONTHLY - 20, 2)
    found = check_stack(
        cost.cost_increase_ceiling, STACK, {"baselineMonthlyUsd": recorded, "maxIncreaseUsd": 10}
    )
    assert len(found) == 1
    assert f"${STACK_MONTHLY - recorded:,.2f} above the recorded ${recorded:,.2f}" in found[0][0]


def test_increase_within_the_limit_passes() -> None:
    config = {
        "baselineMonthlyUsd": STACK_MONTHLY - 5,
        "baselinePeakMonthlyUsd": STACK_MONTHLY,
        "maxIncreaseUsd": 10,
    }
    assert check_stack(cost.cost_increase_ceiling, STACK, config) == []


def test_increase_at_peak_is_judged_against_the_recorded_peak() -> None:
    config = {"baselinePeakMonthlyUsd": STACK_MONTHLY - 30, "maxIncreaseUsd": 10}
    found = check_stack(cost.cost_increase_ceiling, STACK, config)
    assert len(found) == 1 and found[0][0].startswith("Estimated peak bill")


def test_an_unpriced_resource_leaves_the_increase_undecided() -> None:
    stack = [*STACK, R("aws:sqs/queue:Queue", "queue", {})]
    config = {"baselineMonthlyUsd": STACK_MONTHLY, "maxIncreaseUsd": 10}
    [(message, where)] = check_stack(cost.cost_increase_ceiling, stack, config)
    assert where == urn("aws:sqs/queue:Queue", "queue")
    assert message.startswith(
        "undecided [type]: Queue 'queue' has no price in the cost model (type not in the cost model), "
        "so the increase may be larger; add its price to prices.json"
    )


def test_increase_is_advisory_by_default() -> None:
    from pulumi_policy import EnforcementLevel

    assert cost.cost_increase_ceiling.enforcement_level == EnforcementLevel.ADVISORY
