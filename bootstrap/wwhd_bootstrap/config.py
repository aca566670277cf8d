"""The bootstrap's configuration: one validated, frozen model read once by ``__main__.py``.

Keys live under the ``wwhd-bootstrap`` namespace of ``Pulumi.<stack>.yaml``. Validation reports
every problem at once, each prefixed with its key path as written in the stack file
(``wwhd-bootstrap:github.repository``), and raises before any resource is registered: a typo
here would otherwise become a trust policy that admits the wrong workflows, or none. The
problems are worded as the program's own (``config_errors.py`` at the repository root): strict
types, the key path, a suggestion for a misspelt key, every problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
from pydantic import Field, field_validator, model_validator

from config_errors import ConfigError, Problem, StrictModel, read_namespace, validate

NAMESPACE = "wwhd-bootstrap"

# The value Pulumi.prod.yaml ships with. Refused: an owner called CHANGE-ME could be registered
# on GitHub by anyone, and would then be trusted by the roles.
PLACEHOLDER_OWNER = "CHANGE-ME"

# GitHub owners: alphanumerics and hyphens, no hyphen at either end, at most 39 characters.
# Repository names: alphanumerics, '-', '_' and '.'. Neither admits '*', '?' or ':', so a
# repository can never widen a StringLike pattern or reach into another part of the subject.
# (pydantic runs patterns with Rust's regex engine: no look-around.)
_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?"
_REPO = r"[A-Za-z0-9._-]{1,100}"
REPOSITORY_PATTERN = re.compile(rf"^(?P<owner>{_OWNER})/(?P<name>{_REPO})$")
# Branch and environment names go into StringEquals only; still, no wildcard characters, no
# whitespace, no '/' at either end (git refuses those, and '//' or '..' inside, checked below).
_BRANCH = r"^[A-Za-z0-9._-](?:[A-Za-z0-9._/-]{0,253}[A-Za-z0-9._-])?$"
_ENVIRONMENT = r"^[A-Za-z0-9._:-]{1,255}$"
OIDC_PROVIDER_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
)
KMS_KEY_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
# S3 bucket names: 3-63 lowercase letters, digits, '.' and '-', starting and ending alphanumeric.
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"

SubjectTemplate = Literal["repo-context-ref", "github-default"]


class GithubConfig(StrictModel):
    """Which workflows may assume the roles (``wwhd-bootstrap:github``)."""

    repository: str = Field(
        pattern=REPOSITORY_PATTERN.pattern,
        json_schema_extra={
            "expects": "a GitHub owner/name (letters, digits, '-', '_' and '.'; no wildcards)"
        },
    )
    """The repository, ``owner/name`` exactly as GitHub spells it (IAM compares
    case-sensitively). Required; the stack file's ``CHANGE-ME`` placeholder is refused."""
    main_branch: str = Field(
        default="main",
        pattern=_BRANCH,
        json_schema_extra={"expects": "a plain branch name (letters, digits, '.', '_', '-' and '/')"},
    )
    """The branch production deploys come from. Default ``main``."""
    production_environment: str = Field(
        default="production",
        pattern=_ENVIRONMENT,
        json_schema_extra={"expects": "a plain environment name (letters, digits, '.', '_', '-' and ':')"},
    )
    """The GitHub environment the deploy job runs in. Default ``production``."""
    image_environment: str = Field(
        default="image",
        pattern=_ENVIRONMENT,
        json_schema_extra={"expects": "a plain environment name (letters, digits, '.', '_', '-' and ':')"},
    )
    """The GitHub environment image.yml's job runs in, the only one the image role admits.
    Default ``image``; restrict its deployment branches to the main branch."""
    subject_template: SubjectTemplate = "repo-context-ref"
    """Which OIDC subject template the repository uses. ``repo-context-ref`` (default): the
    repository's template is customised to ``["repo", "context", "ref"]``, so the deploy
    subject names the environment and the branch and IAM checks both. ``github-default``:
    GitHub's default template, whose environment subject carries no branch; only the
    environment's deployment-branch rule then keeps deploys on the main branch."""
    owner_id: int | None = Field(default=None, gt=0)
    """The owner's numeric id, for GitHub's immutable subject format
    (``repo:OWNER@OWNER_ID/REPO@REPO_ID``), used by repositories created after 2026-07-15 or
    opted in. Set together with ``repositoryId``. Default None (the name-only format)."""
    repository_id: int | None = Field(default=None, gt=0)
    """The repository's numeric id, with ``ownerId``. Default None."""

    @field_validator("main_branch")
    @classmethod
    def _git_branch(cls, value: str) -> str:
        if "//" in value or ".." in value:
            raise ValueError(f"{value!r} is not a branch name git accepts ('//' and '..' are refused)")
        return value

    @model_validator(mode="after")
    def _ids_together(self) -> GithubConfig:
        if (self.owner_id is None) != (self.repository_id is None):
            raise ValueError("ownerId and repositoryId go together (GitHub's immutable subject format)")
        return self

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.repository.split("/", 1)[1]


class BootstrapSettings(StrictModel):
    """The ``wwhd-bootstrap`` namespace of the stack file."""

    github: GithubConfig
    """Which repository, branch and environment the roles trust."""
    existing_oidc_provider_arn: str | None = Field(
        default=None,
        pattern=OIDC_PROVIDER_ARN.pattern,
        json_schema_extra={
            "expects": "the ARN of GitHub's OIDC provider"
            " (arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com)"
        },
    )
    """An account holds one OIDC provider per URL: when GitHub's already exists (made by hand
    or by another stack), its ARN. The bootstrap then trusts it and does not manage it.
    Default None (the bootstrap creates and protects the provider)."""
    state_bucket: str | None = Field(
        default=None,
        pattern=BUCKET,
        json_schema_extra={"expects": "an S3 bucket name (the name only, no s3:// or path)"},
    )
    """The S3 bucket of a DIY state backend (``pulumi login s3://<bucket>``), if the stacks
    use one: the preview role may read its objects, the one bucket it may read objects from.
    Default None (Pulumi Cloud or another backend; no bucket access)."""
    secrets_key_arn: str | None = Field(
        default=None,
        pattern=KMS_KEY_ARN.pattern,
        json_schema_extra={
            "expects": "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>; not an alias)"
        },
    )
    """The KMS key of an ``awskms://`` secrets provider, if the stacks use one: the preview
    role may decrypt with it, the one key it may decrypt with. Default None."""
    tags: dict[str, str] = {}
    """Extra tags on every resource, beside the bootstrap's own. Default none."""


class BootstrapConfig(BootstrapSettings):
    """The whole ``wwhd-bootstrap`` namespace, plus ``aws:region``."""

    region: str
    """``aws:region``: where the provider's STS calls go (IAM itself is global)."""


# Keys whose values are strings as written (the others are JSON: mappings).
_PLAIN_KEYS = ("existingOidcProviderArn", "stateBucket", "secretsKeyArn")
_SUBJECT = "bootstrap configuration"


def parse_config(raw: Mapping[str, Any], region: str | None) -> BootstrapConfig:
    """Validate the ``wwhd-bootstrap`` namespace (keys without the prefix, object values
    already decoded from JSON) and ``aws:region``. Raises ``ConfigError`` listing every
    problem; returns the frozen model otherwise."""
    settings, problems = validate(BootstrapSettings, raw, NAMESPACE)
    if not region:
        problems.insert(0, Problem("aws:region", "required key is missing"))
    if settings is None or not region or problems:
        raise ConfigError(problems, _SUBJECT)
    if settings.github.owner == PLACEHOLDER_OWNER:
        where = f"{NAMESPACE}:github.repository"
        problem = f"still the placeholder {settings.github.repository!r}; set the repository's owner/name"
        raise ConfigError([Problem(where, problem)], _SUBJECT)
    return BootstrapConfig(region=region, **dict(settings))


def read_config() -> BootstrapConfig:
    """Read and validate the running stack's configuration (``__main__.py`` calls this once)."""
    raw = read_namespace(NAMESPACE, plain_keys=_PLAIN_KEYS)
    return parse_config(raw, pulumi.Config("aws").get("region"))
