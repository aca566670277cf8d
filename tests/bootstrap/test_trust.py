"""Who can assume the preview and deploy roles: the trust policies the bootstrap registers,
judged against the tokens GitHub issues to jobs of this and other repositories."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bootstrap.conftest import REPOSITORY, Job, RunBootstrap, _like, admits, bootstrap_run, role_policy

PROVIDER = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"

PULL_REQUEST = Job()
PROD_DEPLOY = Job(event="push", ref="refs/heads/main", environment="production")

# Jobs neither role may admit, whatever the template.
STRANGERS = {
    "other repository": replace(PULL_REQUEST, repository="mallory/wwhd-infra"),
    "fork-like name": replace(PULL_REQUEST, repository="acme/wwhd-infra-fork"),
    "owner prefix": replace(PULL_REQUEST, repository="acme-evil/wwhd-infra"),
    "wrong audience": replace(PULL_REQUEST, audience="https://github.com/acme"),
}


def test_the_iam_evaluator_implements_stringlike() -> None:
    assert _like("a*c", "ac") and _like("a*c", "abbc") and _like("a?c", "abc")
    assert not _like("a?c", "ac") and not _like("a.c", "abc") and not _like("a*", "ba")


@pytest.mark.parametrize("template", ["repo-context-ref", "github-default"])
def test_preview_admits_pull_requests_of_this_repository_only(
    run_bootstrap: RunBootstrap, template: str
) -> None:
    policy = role_policy(run_bootstrap(github={"subjectTemplate": template}), "preview")
    assert admits(policy, PROVIDER, PULL_REQUEST.claims(template))
    assert admits(policy, PROVIDER, replace(PULL_REQUEST, ref="refs/pull/12345/merge").claims(template))
    refused = {
        **STRANGERS,
        "push to main": Job(event="push", ref="refs/heads/main"),
        "production deploy": PROD_DEPLOY,
        "other environment": replace(PROD_DEPLOY, environment="staging"),
    }
    admitted = [name for name, job in refused.items() if admits(policy, PROVIDER, job.claims(template))]
    assert admitted == []


@pytest.mark.parametrize("template", ["repo-context-ref", "github-default"])
def test_deploy_admits_the_production_environment_only(run_bootstrap: RunBootstrap, template: str) -> None:
    policy = role_policy(run_bootstrap(github={"subjectTemplate": template}), "deploy")
    assert admits(policy, PROVIDER, PROD_DEPLOY.claims(template))
    refused = {
        **{
            name: replace(job, event="push", ref="refs/heads/main", environment="production")
            for name, job in STRANGERS.items()
        },
        "pull request": PULL_REQUEST,
        "push to main outside the environment": Job(event="push", ref="refs/heads/main"),
        "other environment": replace(PROD_DEPLOY, environment="staging"),
        "environment name prefix": replace(PROD_DEPLOY, environment="production-old"),
    }
    admitted = [name for name, job in refused.items() if admits(policy, PROVIDER, job.claims(template))]
    assert admitted == []


def test_deploy_from_another_branch_is_refused_with_the_custom_template(run_bootstrap: RunBootstrap) -> None:
    policy = role_policy(run_bootstrap(), "deploy")
    for ref in ("refs/heads/feature", "refs/heads/main-old", "refs/tags/v1.0.0", "refs/pull/7/merge"):
        assert not admits(policy, PROVIDER, replace(PROD_DEPLOY, ref=ref).claims("repo-context-ref")), ref


def test_with_the_default_template_the_branch_is_not_checked_by_iam(run_bootstrap: RunBootstrap) -> None:
    """What docs/bootstrap.md warns about: GitHub's default subject carries no branch for an
    environment job, so only the environment's deployment-branch rule keeps deploys on main."""
    policy = role_policy(run_bootstrap(github={"subjectTemplate": "github-default"}), "deploy")
    assert admits(policy, PROVIDER, replace(PROD_DEPLOY, ref="refs/heads/feature").claims("github-default"))


def test_a_token_in_the_other_template_is_refused(run_bootstrap: RunBootstrap) -> None:
    """The template is the repository's setting: a mismatch fails closed, not open."""
    run = run_bootstrap()
    assert not admits(role_policy(run, "deploy"), PROVIDER, PROD_DEPLOY.claims("github-default"))
    assert not admits(role_policy(run, "preview"), PROVIDER, PULL_REQUEST.claims("github-default"))


def test_the_immutable_subject_format(run_bootstrap: RunBootstrap) -> None:
    run = run_bootstrap(github={"ownerId": 111, "repositoryId": 222})
    ids = (111, 222)
    assert admits(
        role_policy(run, "deploy"), PROVIDER, replace(PROD_DEPLOY, ids=ids).claims("repo-context-ref")
    )
    assert admits(
        role_policy(run, "preview"), PROVIDER, replace(PULL_REQUEST, ids=ids).claims("repo-context-ref")
    )
    # The same names with other ids: a recreated owner or repository that took the name.
    for other in ((111, 999), (999, 222)):
        assert not admits(
            role_policy(run, "deploy"), PROVIDER, replace(PROD_DEPLOY, ids=other).claims("repo-context-ref")
        )
    assert not admits(role_policy(run, "deploy"), PROVIDER, PROD_DEPLOY.claims("repo-context-ref"))


def test_an_existing_provider_is_trusted_and_not_created(run_bootstrap: RunBootstrap) -> None:
    existing = "arn:aws:iam::210987654321:oidc-provider/token.actions.githubusercontent.com"
    run = run_bootstrap(existingOidcProviderArn=existing)
    assert run.monitor.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    assert run.outputs["oidcProviderArn"] == existing
    assert admits(role_policy(run, "deploy"), existing, PROD_DEPLOY.claims("repo-context-ref"))
    assert not admits(role_policy(run, "deploy"), PROVIDER, PROD_DEPLOY.claims("repo-context-ref"))


_NAME = st.from_regex(r"[a-z0-9][a-z0-9-]{0,12}", fullmatch=True)
_BRANCH = st.from_regex(r"[a-z0-9][a-z0-9/-]{0,12}", fullmatch=True)


@pytest.fixture(scope="module")
def deploy_policy() -> dict:
    """The registered deploy trust policy, computed once for the property test (hypothesis
    does not mix with function-scoped fixtures)."""
    return role_policy(bootstrap_run(), "deploy")


@settings(max_examples=150, deadline=None)
@given(
    owner=st.one_of(st.just("acme"), _NAME),
    name=st.one_of(st.just("wwhd-infra"), _NAME),
    branch=st.one_of(st.just("main"), _BRANCH),
    environment=st.one_of(st.none(), st.just("production"), _NAME),
    pull=st.booleans(),
)
def test_only_the_configured_repository_environment_and_branch_deploy(
    deploy_policy: dict, owner: str, name: str, branch: str, environment: str | None, pull: bool
) -> None:
    job = Job(
        repository=f"{owner}/{name}",
        event="pull_request" if pull else "push",
        ref="refs/pull/3/merge" if pull else f"refs/heads/{branch}",
        environment=environment,
    )
    expected = (
        f"{owner}/{name}" == REPOSITORY and environment == "production" and not pull and branch == "main"
    )
    assert admits(deploy_policy, PROVIDER, job.claims("repo-context-ref")) is expected


IMAGE_PUSH = Job(event="workflow_dispatch", ref="refs/heads/main", environment="image")


@pytest.mark.parametrize("template", ["repo-context-ref", "github-default"])
def test_the_image_role_admits_the_image_environment_on_main_only(
    run_bootstrap: RunBootstrap, template: str
) -> None:
    """IAM cannot see which workflow asks (GitHub's workflow claims are no condition keys), so
    the image role admits jobs of the image environment, whose deployment-branch rule keeps
    them on main; with the customised template IAM checks the branch too."""
    policy = role_policy(run_bootstrap(github={"subjectTemplate": template}), "image")
    assert admits(policy, PROVIDER, IMAGE_PUSH.claims(template))
    refused = {
        **{
            name: replace(job, event="workflow_dispatch", ref="refs/heads/main", environment="image")
            for name, job in STRANGERS.items()
        },
        # Any job of main outside the environment, or in the production environment.
        "push on main": replace(IMAGE_PUSH, event="push", environment=None),
        "production environment": replace(IMAGE_PUSH, environment="production"),
        "environment of a similar name": replace(IMAGE_PUSH, environment="images"),
        "pull request": PULL_REQUEST,
    }
    if template == "repo-context-ref":
        # The image environment's job dispatched from another branch: IAM refuses it itself.
        refused["image environment on a branch"] = replace(IMAGE_PUSH, ref="refs/heads/feature")
        refused["image environment on a tag"] = replace(IMAGE_PUSH, ref="refs/tags/v1.0.0")
    admitted = [name for name, job in refused.items() if admits(policy, PROVIDER, job.claims(template))]
    assert admitted == []


def test_the_other_roles_do_not_admit_the_image_job(run_bootstrap: RunBootstrap) -> None:
    run = run_bootstrap()
    for role in ("preview", "deploy"):
        assert not admits(role_policy(run, role), PROVIDER, IMAGE_PUSH.claims("repo-context-ref")), role


def test_the_image_environment_is_configurable(run_bootstrap: RunBootstrap) -> None:
    policy = role_policy(run_bootstrap(github={"imageEnvironment": "release-images"}), "image")
    assert admits(
        policy, PROVIDER, replace(IMAGE_PUSH, environment="release-images").claims("repo-context-ref")
    )
    assert not admits(policy, PROVIDER, IMAGE_PUSH.claims("repo-context-ref"))


def test_the_image_role_with_the_immutable_subject_format(run_bootstrap: RunBootstrap) -> None:
    run = run_bootstrap(github={"ownerId": 111, "repositoryId": 222})
    policy = role_policy(run, "image")
    assert admits(policy, PROVIDER, replace(IMAGE_PUSH, ids=(111, 222)).claims("repo-context-ref"))
    assert not admits(policy, PROVIDER, replace(IMAGE_PUSH, ids=(111, 999)).claims("repo-context-ref"))
