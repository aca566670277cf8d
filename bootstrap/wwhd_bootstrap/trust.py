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

No subject names the workflow, and IAM does not take GitHub's other claims (such as
``job_workflow_ref``) as condition keys. So each role that must admit one kind of job admits an
environment: the deploy role the production environment, the image role the image environment,
each restricted to the main branch by the environment's deployment-branch rule (and by IAM too,
with the customised template).
"""

from __future__ import annotations

from typing import Any

from iam_document import policy_document
from wwhd_bootstrap.config import GithubConfig

ISSUER_HOST = "token.actions.githubusercontent.com"
"""GitHub Actions' OIDC issuer, without the scheme: the prefix of the condition keys."""
AUDIENCE = "sts.amazonaws.com"
"""The audience aws-actions/configure-aws-credentials requests (its default)."""
PREVIEW_MAX_SESSION_SECONDS = 3600
"""A preview job needs minutes; one hour is IAM's default and the least it allows."""
IMAGE_MAX_SESSION_SECONDS = 3600
"""image.yml's job times out before the hour is up, so a push never meets expired credentials."""
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


def environment_subject(github: GithubConfig, environment: str) -> tuple[str, str]:
    """The (operator, value) the subject of a job in ``environment`` must equal: that
    environment and, with the customised template, the main branch."""
    env = f"{repository_subject(github)}:environment:{environment}"
    if github.subject_template == "repo-context-ref":
        return "StringEquals", f"{env}:ref:refs/heads/{github.main_branch}"
    return "StringEquals", env


def trust_policy(provider_arn: str, subject: tuple[str, str]) -> dict[str, Any]:
    """Admit GitHub's tokens for ``sts.amazonaws.com`` whose subject satisfies ``subject``.
    IAM ANDs the condition blocks and their keys, so both must hold."""
    operator, value = subject
    conditions: dict[str, dict[str, str]] = {"StringEquals": {f"{ISSUER_HOST}:aud": AUDIENCE}}
    conditions.setdefault(operator, {})[f"{ISSUER_HOST}:sub"] = value
    return policy_document(
        {
            "Sid": "GitHubActions",
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": conditions,
        }
    )
