"""The whole program, per stack file: it builds, and holds the stack-wide rules."""

from __future__ import annotations

import json

import pytest

from tests.conftest import RunStack


@pytest.fixture(params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


def test_stack_builds_and_exports(run_stack: RunStack, stack: str) -> None:
    run = run_stack(stack)
    assert run.outputs["vpcId"].startswith("vpc-")
    assert len(run.outputs["privateSubnetIds"]) == 2
    assert run.outputs["stackKeyArn"].startswith("arn:aws:kms:us-west-2:")


def test_every_resource_belongs_to_a_component(run_stack: RunStack, stack: str) -> None:
    """Only the provider and the components sit at the top; everything else is a child."""
    run = run_stack(stack)
    stack_urn = next(r.urn for r in run.registrations if r.type == "pulumi:pulumi:Stack")
    top = {r.type for r in run.registrations if r.parent == stack_urn}
    assert all(t.startswith("wwhd:index:") or t == "pulumi:providers:aws" for t in top), top


def test_every_aws_resource_uses_the_tagging_provider(run_stack: RunStack, stack: str) -> None:
    run = run_stack(stack)
    provider = run.monitor.one("pulumi:providers:aws")
    # Provider inputs reach the engine as strings: nested objects are JSON text.
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags["Environment"] == stack and tags["Project"] == "wwhd" and tags["ManagedBy"] == "pulumi"
    assert tags["CostCenter"] == f"wwhd-{stack}"
    for r in run.registrations:
        if r.custom and r.type.startswith("aws:"):
            assert r.provider.startswith(provider.urn), f"{r.type} {r.name} uses {r.provider}"


def test_prod_differs_from_dev(run_stack: RunStack) -> None:
    dev, prod = run_stack("dev"), run_stack("prod")
    assert dev.monitor.one("awsx:ec2:Vpc").inputs["natGateways"] == {"strategy": "Single"}
    assert prod.monitor.one("awsx:ec2:Vpc").inputs["natGateways"] == {"strategy": "OnePerAz"}
    assert dev.monitor.of_type("aws:ec2/flowLog:FlowLog") == []
    assert len(prod.monitor.of_type("aws:ec2/flowLog:FlowLog")) == 1
    assert not dev.monitor.one("aws:kms/key:Key").protect
    assert prod.monitor.one("aws:kms/key:Key").protect
