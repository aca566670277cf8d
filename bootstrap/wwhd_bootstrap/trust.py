"""Who may assume the roles: the OIDC subjects GitHub puts in its tokens, and the trust
policies that admit exactly those. Pure functions of the configuration, tested without mocks.

GitHub's subject (`sub`) claim, per its OIDC reference:

| job | default template | template ``["repo", "context", "ref"]`` |
|---|---|---|
| pull request | ``repo:O/R:pull_request`` | ``repo:O/R:pull_request:ref:refs/pull/<n>/merge`` |
| in environment E | ``repo:O/R:environment:E`` | ``repo:O/R:environment:E:ref:refs/heads/<branch>`` |
| any other (push, dispatch) | ``repo:O/R:ref:<ref>`` | ``repo:O/R:ref:<ref>:ref:<ref>`` |

``O/R`` is ``OWNER@OWNER_ID/REPO@REPO_ID`` in GitHub's immutable-subject format. Only the
customised template names the branch of an environment job, so only with it can IAM itself
refuse a production deployment from another branch.

No subject names the workflow. Since January 2026 STS also checks GitHub's other claims as
condition keys, among them ``job_workflow_ref`` (``O/R/.github/workflows/<file>@<ref>``, names
only in either subject format): the image role requires it, so another workflow of the same
branch cannot push images.
"""

from __future__ import annotations

from typing import Any

from wwhd_bootstrap.config import GithubConfig

ISSUER_HOST = "token.actions.githubusercontent.com"
"""GitHub Actions' OIDC issuer, without the scheme: the prefix of the condition keys."""
AUDIENCE = "sts.amazonaws.com"
"""The audience aws-actions/configure-aws-credentials requests (its default)."""
PREVIEW_MAX_SESSION_SECONDS = 3600
"""A preview job needs minutes; one hour is IAM's default and the least it allows."""
IMAGE_MAX_SESSION_SECONDS = 3600
"""image.yml's job times out before the hour is up, so a push never meets expired credentials."""
IMAGE_WORKFLOW = ".github/workflows/image.yml"
"""The workflow that builds and pushes the API image, the only one the image role admits."""
DEPLOY_MAX_SESSION_SECONDS = 7200
"""deploy.yml asks for two hours: `pulumi up` (a Multi-AZ database takes up to 30 minutes)
and up to 30 minutes of waiting on ECS, inside a 90-minute job."""


def repository_subject(github: GithubConfig) -> str:
    """``repo:OWNER/REPO``, or ``repo:OWNER@ID/REPO@ID`` when the ids are configured."""
    if github.owner_id is not None and github.repository_id is not None:
        return f"repo:{github.owner}@{github.owner_id}/{github.name}@{github.repository_id}"
    return f"repo:{github.repository}"


def preview_subject(github: GithubConfig) -> tuple[str, str]:
    """The (operator, pattern) a pull-request job's subject must satisfy. With the customised
    template the pull request number varies, so the one wildcard stands where it goes; the
    repository and the context before it are literal, so no other repository or kind of job
    can match."""
    repo = repository_subject(github)
    if github.subject_template == "repo-context-ref":
        return "StringLike", f"{repo}:pull_request:ref:refs/pull/*/merge"
    return "StringEquals", f"{repo}:pull_request"


def deploy_subject(github: GithubConfig) -> tuple[str, str]:
    """The (operator, value) a production deployment's subject must equal: the production
    environment and, with the customised template, the main branch."""
    env = f"{repository_subject(github)}:environment:{github.production_environment}"
    if github.subject_template == "repo-context-ref":
        return "StringEquals", f"{env}:ref:refs/heads/{github.main_branch}"
    return "StringEquals", env


def image_subject(github: GithubConfig) -> tuple[str, str]:
    """The (operator, value) the image workflow's subject must equal: a job in no environment,
    dispatched on the main branch."""
    ref = f"ref:refs/heads/{github.main_branch}"
    base = f"{repository_subject(github)}:{ref}"
    if github.subject_template == "repo-context-ref":
        return "StringEquals", f"{base}:{ref}"
    return "StringEquals", base


def image_workflow_ref(github: GithubConfig) -> str:
    """The ``job_workflow_ref`` claim of image.yml's job on the main branch."""
    return f"{github.repository}/{IMAGE_WORKFLOW}@refs/heads/{github.main_branch}"


def trust_policy(
    provider_arn: str, subject: tuple[str, str], workflow_ref: str | None = None
) -> dict[str, Any]:
    """Admit GitHub's tokens for ``sts.amazonaws.com`` whose subject satisfies ``subject`` and,
    when given, whose job runs the workflow ``workflow_ref``. IAM ANDs the condition blocks
    and their keys, so every one must hold."""
    operator, value = subject
    audience = {f"{ISSUER_HOST}:aud": AUDIENCE}
    conditions: dict[str, dict[str, str]] = {"StringEquals": dict(audience)}
    if workflow_ref is not None:
        conditions["StringEquals"][f"{ISSUER_HOST}:job_workflow_ref"] = workflow_ref
    conditions.setdefault(operator, {})[f"{ISSUER_HOST}:sub"] = value
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GitHubActions",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": conditions,
            }
        ],
    }
