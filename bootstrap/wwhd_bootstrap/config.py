"""The bootstrap's configuration: one validated, frozen model read once by ``__main__.py``.

Keys live under the ``wwhd-bootstrap`` namespace of ``Pulumi.<stack>.yaml``. Validation reports
every problem at once, each prefixed with its key path as written in the stack file
(``wwhd-bootstrap:github.repository``), and raises before any resource is registered: a typo
here would otherwise become a trust policy that admits the wrong workflows, or none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    alias_generators,
    field_validator,
    model_validator,
)

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


@dataclass(frozen=True)
class Problem:
    """One problem in a stack file: the key path as written there, and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(pulumi.RunError):
    """The bootstrap configuration is invalid. A ``RunError``, so Pulumi prints the message
    without a traceback; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"invalid bootstrap configuration ({len(problems)} {noun}):\n{lines}")


class _Model(BaseModel):
    """Stack file sections: camelCase keys, unknown keys refused, immutable once read."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=alias_generators.to_camel,
        populate_by_name=True,
    )


class GithubConfig(_Model):
    """Which workflows may assume the roles (``wwhd-bootstrap:github``)."""

    repository: str = Field(pattern=REPOSITORY_PATTERN.pattern)
    """The repository, ``owner/name`` exactly as GitHub spells it (IAM compares
    case-sensitively). Required; the stack file's ``CHANGE-ME`` placeholder is refused."""
    main_branch: str = Field(default="main", pattern=_BRANCH)
    """The branch production deploys come from. Default ``main``."""
    production_environment: str = Field(default="production", pattern=_ENVIRONMENT)
    """The GitHub environment the deploy job runs in. Default ``production``."""
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


class BootstrapConfig(_Model):
    """The whole ``wwhd-bootstrap`` namespace, plus ``aws:region``."""

    region: str
    """``aws:region``: where the provider's STS calls go (IAM itself is global)."""
    github: GithubConfig
    """Which repository, branch and environment the roles trust."""
    existing_oidc_provider_arn: str | None = Field(default=None, pattern=OIDC_PROVIDER_ARN.pattern)
    """An account holds one OIDC provider per URL: when GitHub's already exists (made by hand
    or by another stack), its ARN. The bootstrap then trusts it and does not manage it.
    Default None (the bootstrap creates and protects the provider)."""
    state_bucket: str | None = Field(default=None, pattern=BUCKET)
    """The S3 bucket of a DIY state backend (``pulumi login s3://<bucket>``), if the stacks
    use one: the preview role may read its objects, the one bucket it may read objects from.
    Default None (Pulumi Cloud or another backend; no bucket access)."""
    secrets_key_arn: str | None = Field(default=None, pattern=KMS_KEY_ARN.pattern)
    """The KMS key of an ``awskms://`` secrets provider, if the stacks use one: the preview
    role may decrypt with it, the one key it may decrypt with. Default None."""
    tags: dict[str, str] = {}
    """Extra tags on every resource, beside the bootstrap's own. Default none."""


# Keys of the namespace and how each is written in the stack file.
_OBJECT_KEYS = ("github", "tags")
_PLAIN_KEYS = ("existingOidcProviderArn", "stateBucket", "secretsKeyArn")


def _path(loc: tuple[int | str, ...]) -> str:
    path = f"{NAMESPACE}:{loc[0]}" if loc else NAMESPACE
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse_config(raw: Mapping[str, Any], region: str | None) -> BootstrapConfig:
    """Validate the ``wwhd-bootstrap`` namespace (keys without the prefix, object values
    already decoded from JSON) and ``aws:region``. Raises ``ConfigError`` listing every
    problem; returns the frozen model otherwise."""
    problems: list[Problem] = []
    values: dict[str, Any] = {"region": region}
    for key, value in raw.items():
        if key not in _OBJECT_KEYS and key not in _PLAIN_KEYS:
            problems.append(Problem(f"{NAMESPACE}:{key}", "unknown key (check the spelling)"))
        elif key in _OBJECT_KEYS and not isinstance(value, Mapping):
            problems.append(Problem(f"{NAMESPACE}:{key}", "must be a mapping of keys to values"))
        else:
            values[key] = value
    if not region:
        problems.append(Problem("aws:region", "required key is missing"))
        values.pop("region")
    if "github" not in raw:
        problems.append(Problem(f"{NAMESPACE}:github", "required key is missing (it names the repository)"))

    try:
        config = BootstrapConfig.model_validate(values)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            if loc in {("region",), ("github",)} and err["type"] == "missing":
                continue  # reported above, with its full key
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key (check the spelling)"
            elif err["type"] == "missing":
                message = "required key is missing"
            elif err["type"] == "string_pattern_mismatch":
                message = f"{err['input']!r} {_PATTERN_HINTS.get(str(loc[-1]), 'is not valid')}"
            problems.append(Problem(_path(loc), message))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    if config.github.owner == PLACEHOLDER_OWNER:
        raise ConfigError(
            [
                Problem(
                    f"{NAMESPACE}:github.repository",
                    f"still the placeholder {config.github.repository!r}; set the repository's owner/name",
                )
            ]
        )
    return config


_PATTERN_HINTS = {
    "repository": "is not a GitHub owner/name (letters, digits, '-', '_' and '.'; no wildcards)",
    "mainBranch": "is not a plain branch name (letters, digits, '.', '_', '-' and '/')",
    "productionEnvironment": "is not a plain environment name (letters, digits, '.', '_', '-' and ':')",
    "existingOidcProviderArn": "is not the ARN of GitHub's OIDC provider"
    " (arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com)",
    "stateBucket": "is not an S3 bucket name (the name only, no s3:// or path)",
    "secretsKeyArn": "is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>; not an alias)",
}


def read_config() -> BootstrapConfig:
    """Read and validate the running stack's configuration (``__main__.py`` calls this once)."""
    prefix = f"{NAMESPACE}:"
    keys = sorted(k[len(prefix) :] for k in _all_config_keys() if k.startswith(prefix))
    ns = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    for key in keys:
        text = ns.get(key)
        if text is None:
            continue
        if key in _OBJECT_KEYS:
            try:
                raw[key] = json.loads(text)
            except json.JSONDecodeError:
                raw[key] = text  # a plain string where a mapping belongs: reported as such
        else:
            raw[key] = text
    return parse_config(raw, pulumi.Config("aws").get("region"))


def _all_config_keys() -> set[str]:
    """Every configuration key of the running stack, wherever the SDK was given it."""
    from pulumi.runtime import config as runtime_config

    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
