"""The cost-ceiling stack policy."""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UnknownValueError
from wwhd_policies import cost

from .conftest import R, check_stack

STACK = [
    R("aws:lb/loadBalancer:LoadBalancer", "alb", {"subnets": ["a", "b"]}),
    R("aws:kms/key:Key", "key", {}),
    R("aws:ec2/securityGroup:SecurityGroup", "sg", {}),
]


def test_under_the_ceiling_passes() -> None:
    assert check_stack(cost.cost_ceiling, STACK, {"maxMonthlyUsd": 100, "maxPeakMonthlyUsd": 100}) == []


def test_over_the_ceiling_itemizes_biggest_costs() -> None:
    found = check_stack(cost.cost_ceiling, STACK, {"maxMonthlyUsd": 10})
    assert len(found) == 1
    message = found[0][0]
    assert "baseline" in message and "$10.00" in message
    assert message.index("alb") < message.index("key")  # biggest first


def test_no_ceiling_configured_reports_nothing() -> None:
    assert check_stack(cost.cost_ceiling, STACK) == []


def test_unpriced_resources_make_the_estimate_undecidable() -> None:
    [(message, _)] = check_stack(
        cost.cost_ceiling,
        [*STACK, R("aws:elasticache/cluster:Cluster", "redis", {})],
        {"maxMonthlyUsd": 100},
    )
    assert message.startswith("undecided [") and "could not be priced" in message
    with pytest.raises(UnknownValueError, match="could not be priced"):
        check_stack(
            cost.cost_ceiling,
            [*STACK, R("aws:elasticache/cluster:Cluster", "redis", {})],
            {"maxMonthlyUsd": 100, "undecided": "advisory"},
        )
