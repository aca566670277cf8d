"""What the image role may do: push the API image to the stacks' repositories and nothing else,
judged the way IAM evaluates its registered policy; and the deploy role's read of an image's
manifest, which deploy.yml's platform check needs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.bootstrap.conftest import allows, bootstrap_run
from tests.bootstrap.test_boundary import POWER_USER_ACCESS
from tools.image_platforms import stack_target
from tools.mocks import ACCOUNT_ID
from wwhd_bootstrap.permissions import IMAGE_PUSH_ACTIONS
from wwhd_bootstrap.trust import IMAGE_MAX_SESSION_SECONDS


def repository(name: str, region: str = "us-west-2", account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


@pytest.fixture(scope="module")
def image() -> dict[str, Any]:
    """The image role's registrations: the role's inputs and its policies."""
    run = bootstrap_run()
    inline = json.loads(run.monitor.one("aws:iam/rolePolicy:RolePolicy", "image-push").inputs["policy"])
    attached = [
        r.inputs["role"]
        for r in run.monitor.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("image")
    ]
    return {
        "role": run.monitor.one("aws:iam/role:Role", "image").inputs,
        "policies": [inline],
        "attached": attached,
    }


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_image_role_pushes_to_every_stacks_repository(image: dict[str, Any], stack: str) -> None:
    """The repository names come from the main program's configuration, so renaming one there
    without the bootstrap fails here rather than in the image workflow."""
    target = stack_target(stack)
    arn = repository(target.repository, target.region)
    for action in IMAGE_PUSH_ACTIONS:
        assert allows(image["policies"], action, arn), (stack, action)
    assert allows(image["policies"], "ecr:GetAuthorizationToken", "*")


@pytest.mark.parametrize(
    "arn",
    [
        repository("wwhd-prod/docker-hub/qdrant/qdrant"),  # a pull-through cache of the stacks
        repository("wwhd-dev-backend"),  # the hand-made repository the take-over leaves behind
        repository("wwhd/dev/qdrant"),
        repository("other/api"),
        repository("wwhd/dev/api", account="210987654321"),
    ],
)
def test_the_image_role_pushes_nowhere_else(image: dict[str, Any], arn: str) -> None:
    assert not any(allows(image["policies"], action, arn) for action in IMAGE_PUSH_ACTIONS)


@pytest.mark.parametrize(
    "action",
    [
        "ecr:BatchDeleteImage",
        "ecr:DeleteRepository",
        "ecr:SetRepositoryPolicy",
        "ecr:PutImageTagMutability",
        "ecr:PutLifecyclePolicy",
        "ecr:GetDownloadUrlForLayer",
        "ecr:CreateRepository",
    ],
)
def test_the_image_role_cannot_delete_retag_or_pull(image: dict[str, Any], action: str) -> None:
    """Tags stay immutable and images stay put: the role adds images, nothing more."""
    assert not allows(image["policies"], action, repository("wwhd/prod/api"))
    assert not allows(image["policies"], action, repository("wwhd-prod-backend"))


def test_the_image_role_has_no_managed_policy_and_short_sessions(image: dict[str, Any]) -> None:
    assert image["attached"] == []
    assert image["role"]["maxSessionDuration"] == IMAGE_MAX_SESSION_SECONDS == 3600
    assert not allows(image["policies"], "iam:PassRole", f"arn:aws:iam::{ACCOUNT_ID}:role/wwhd-api-task")
    assert not allows(image["policies"], "s3:GetObject", "arn:aws:s3:::wwhd-state/x")


def test_the_deploy_role_reads_image_manifests_and_cannot_touch_the_image_role() -> None:
    run = bootstrap_run()
    inline = json.loads(
        run.monitor.one("aws:iam/rolePolicy:RolePolicy", "deploy-program-iam").inputs["policy"]
    )
    deploy = [POWER_USER_ACCESS, inline]
    # deploy.yml's platform check: the manifest, and a single manifest's config blob.
    for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
        assert allows(deploy, action, repository("wwhd-prod-backend")), action
    image_role = f"arn:aws:iam::{ACCOUNT_ID}:role/github-actions-wwhd-image"
    for action in (
        "iam:PutRolePolicy",
        "iam:UpdateAssumeRolePolicy",
        "iam:DeleteRole",
        "iam:AttachRolePolicy",
    ):
        assert not allows(deploy, action, image_role, {"iam:PermissionsBoundary": "any"}), action
