"""The bootstrap program as a whole: what it registers and exports, its refusal of bad
configuration, and that the deploy role's IAM covers exactly what the main program creates."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from tests.bootstrap.conftest import RunBootstrap
from tests.conftest import RunStack
from tools.mocks import ProgramRun, settle
from wwhd_bootstrap.config import ConfigError
from wwhd_bootstrap.permissions import PASSED_TO_SERVICES, PROGRAM_MANAGED_POLICIES, ROLE_NAME_PREFIX


def policies_of(run: ProgramRun, logical: str) -> dict[str, Any]:
    return json.loads(run.monitor.one("aws:iam/rolePolicy:RolePolicy", logical).inputs["policy"])


def statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    (found,) = [s for s in policy["Statement"] if s.get("Sid") == sid]
    return found


def test_exports_and_protection(run_bootstrap: RunBootstrap) -> None:
    run = run_bootstrap()
    assert run.outputs == {
        "previewRoleArn": "arn:aws:iam::123456789012:role/github-actions-wwhd-preview",
        "deployRoleArn": "arn:aws:iam::123456789012:role/github-actions-wwhd-deploy",
        "imageRoleArn": "arn:aws:iam::123456789012:role/github-actions-wwhd-image",
        "oidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
        "boundaryPolicyArn": "arn:aws:iam::123456789012:policy/wwhd-workload-boundary",
    }
    aws_resources = [r for r in run.registrations if r.type.startswith("aws:")]
    assert len(aws_resources) == 10
    assert [r.name for r in aws_resources if not r.protect] == []
    provider = run.monitor.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs["url"] == "https://token.actions.githubusercontent.com"
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    # The main program forms the boundary's ARN from its name: no path may come between.
    boundary = run.monitor.one("aws:iam/policy:Policy", "workload-boundary")
    assert (boundary.inputs["name"], boundary.inputs["path"]) == ("wwhd-workload-boundary", "/")
    # Provider inputs reach the engine as JSON text. The stack file's tags join the bootstrap's.
    tags = json.loads(run.monitor.one("pulumi:providers:aws").inputs["defaultTags"])["tags"]
    assert tags == {
        "CostCenter": "wwhd-prod",
        "Project": "wwhd",
        "ManagedBy": "pulumi",
        "PulumiProject": "wwhd-bootstrap",
    }


def test_sessions_match_what_the_workflows_ask_for(run_bootstrap: RunBootstrap) -> None:
    run = run_bootstrap()
    assert run.monitor.one("aws:iam/role:Role", "preview").inputs["maxSessionDuration"] == 3600
    # deploy.yml asks for role-duration-seconds: 7200 (tests/test_workflows.py reads it too).
    assert run.monitor.one("aws:iam/role:Role", "deploy").inputs["maxSessionDuration"] == 7200


def test_preview_is_read_only_and_reads_no_data(run_bootstrap: RunBootstrap) -> None:
    run = run_bootstrap()
    attachment = run.monitor.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "preview-managed")
    assert attachment.inputs["policyArn"] == "arn:aws:iam::aws:policy/ReadOnlyAccess"
    policy = policies_of(run, "preview-no-data-reads")
    assert all(s["Effect"] == "Deny" for s in policy["Statement"])
    denied = {a for s in policy["Statement"] for a in s["Action"]}
    assert {"secretsmanager:GetSecretValue", "s3:GetObject", "kms:Decrypt", "ssm:GetParameter"} <= denied
    # Everything denied everywhere, but AWS's public parameters (the next test).
    assert all(s.get("Resource") == "*" for s in policy["Statement"] if s["Sid"] != "DenyParameterReads")


def test_a_diy_backend_leaves_exactly_its_state_and_key_readable(run_bootstrap: RunBootstrap) -> None:
    key = "arn:aws:kms:us-west-2:123456789012:key/0000-1111"
    policy = policies_of(run_bootstrap(stateBucket="wwhd-state", secretsKeyArn=key), "preview-no-data-reads")
    assert statement(policy, "DenyObjectReads")["NotResource"] == "arn:aws:s3:::wwhd-state/*"
    assert statement(policy, "DenyDecrypt")["NotResource"] == key
    assert statement(policy, "DecryptStackSecrets") == {
        "Sid": "DecryptStackSecrets",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": key,
    }
    assert statement(policy, "DenyDataReads")["Resource"] == "*"


def test_the_preview_reads_public_ami_parameters_and_no_other_parameter(run_bootstrap: RunBootstrap) -> None:
    """The program looks up the latest ECS-optimized and Amazon Linux AMIs in AWS's public
    parameters during every preview; the account's own parameters (secrets among them) stay
    unreadable."""
    policy = policies_of(run_bootstrap(), "preview-no-data-reads")
    deny = statement(policy, "DenyParameterReads")
    assert deny["Effect"] == "Deny" and "ssm:GetParameter" in deny["Action"]
    assert deny["NotResource"] == "arn:aws:ssm:*:*:parameter/aws/service/*"
    assert not [
        s
        for s in policy["Statement"]
        if s["Sid"] != "DenyParameterReads" and "ssm:GetParameter" in s["Action"]
    ]


def test_deploy_iam_is_scoped_and_keeps_off_the_bootstrap(run_bootstrap: RunBootstrap) -> None:
    run = run_bootstrap()
    attachment = run.monitor.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "deploy-managed")
    assert attachment.inputs["policyArn"] == "arn:aws:iam::aws:policy/PowerUserAccess"
    policy = policies_of(run, "deploy-program-iam")
    writes = [s for s in policy["Statement"] if s["Effect"] == "Allow" and s["Sid"] != "ReadIam"]
    assert {s["Resource"] for s in writes} == {
        "arn:aws:iam::123456789012:role/wwhd-*",
        "arn:aws:iam::123456789012:instance-profile/wwhd-*",
    }
    attach = statement(policy, "AttachProgramManagedPolicies")["Condition"]["ArnEquals"]["iam:PolicyARN"]
    assert "arn:aws:iam::aws:policy/AdministratorAccess" not in attach
    keep_off = statement(policy, "KeepOffTheBootstrap")
    assert keep_off["Effect"] == "Deny"
    # Every ARN the bootstrap exports (its roles, the provider, the boundary), formed from names.
    assert sorted(keep_off["Resource"]) == sorted(run.outputs.values())


def test_the_bootstrap_roles_are_outside_the_deploy_roles_reach(run_bootstrap: RunBootstrap) -> None:
    for role in run_bootstrap().monitor.of_type("aws:iam/role:Role"):
        assert not role.inputs["name"].startswith(ROLE_NAME_PREFIX)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_deploy_role_covers_the_programs_iam(run_stack: RunStack, stack: str) -> None:
    """Every role the main program creates is one the deploy role may manage, every managed
    policy it attaches is on the deploy role's list, and every service its roles trust is one
    the deploy role may pass them to. A new role or policy in the program fails here first,
    not in the first deploy after it."""
    run = run_stack(stack)
    roles = run.monitor.of_type("aws:iam/role:Role")
    assert roles
    for role in roles:
        # Pulumi auto-names a role after its logical name (the mocks add the same suffix).
        assert (role.inputs.get("name") or role.outputs["name"]).startswith(ROLE_NAME_PREFIX), role.name
        trust = json.loads(role.inputs["assumeRolePolicy"])
        services = {s["Principal"]["Service"] for s in trust["Statement"]}
        assert services <= set(PASSED_TO_SERVICES), (role.name, services)
    attached = {
        a.inputs["policyArn"]
        for a in run.monitor.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    assert attached <= {f"arn:aws:iam::aws:policy/{p}" for p in PROGRAM_MANAGED_POLICIES}
    assert run.monitor.of_type("aws:iam/policy:Policy") == []  # only inline policies: none to allow
    for profile in run.monitor.of_type("aws:iam/instanceProfile:InstanceProfile"):
        assert (profile.inputs.get("name") or profile.outputs["name"]).startswith(ROLE_NAME_PREFIX), (
            profile.name
        )


@pytest.mark.parametrize(
    ("github", "keys", "path"),
    [
        ({"repository": "CHANGE-ME/wwhd-infra"}, {}, "wwhd-bootstrap:github.repository"),
        ({"repository": "*/*"}, {}, "wwhd-bootstrap:github.repository"),
        ({"mainBrnch": "main"}, {}, "wwhd-bootstrap:github.mainBrnch"),
        ({"mainBranch": "feature//x"}, {}, "wwhd-bootstrap:github.mainBranch"),
        ({"ownerId": 1}, {}, "wwhd-bootstrap:github"),
        ({}, {"stateBuckett": "x"}, "wwhd-bootstrap:stateBuckett"),
        (
            {},
            {"existingOidcProviderArn": "arn:aws:iam::1:oidc-provider/x"},
            "wwhd-bootstrap:existingOidcProviderArn",
        ),
    ],
)
def test_bad_configuration_is_one_error_naming_the_key_and_registers_nothing(
    run_bootstrap: RunBootstrap, github: dict[str, Any], keys: dict[str, Any], path: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        run_bootstrap(github=github, **keys)
    assert [p.path for p in raised.value.problems] == [path]
    assert path in str(raised.value)
    settle()  # let anything already queued reach the monitor
    registered = pulumi.runtime.settings.get_monitor().registrations  # type: ignore[attr-defined]
    assert [r.type for r in registered if r.type != "pulumi:pulumi:Stack"] == []
