"""The W.W.H.D. delivery bootstrap: GitHub's OIDC provider, the three roles the workflows
assume, and the permissions boundary every role of the program carries. An administrator runs
it once per account, with their own credentials and this project's own state
(docs/bootstrap.md); the workflows never deploy it.

Everything here is protected: deleting the provider or a role stops every preview and deploy;
deleting the boundary stops every deploy that creates or changes a role.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pulumi
import pulumi_aws as aws

# The bootstrap runs from its own directory (``pulumi -C bootstrap up``) yet words its
# configuration problems with the program's machinery (config_errors.py at the repository root,
# which needs only pulumi and pydantic): put the root on the import path before reading config.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from wwhd_bootstrap.boundary import BOUNDARY_POLICY_NAME, workload_boundary
from wwhd_bootstrap.config import read_config
from wwhd_bootstrap.permissions import (
    deploy_iam_policy,
    image_push_policy,
    managed_policy_arn,
    preview_policy,
)
from wwhd_bootstrap.trust import (
    AUDIENCE,
    DEPLOY_MAX_SESSION_SECONDS,
    IMAGE_MAX_SESSION_SECONDS,
    ISSUER_HOST,
    PREVIEW_MAX_SESSION_SECONDS,
    environment_subject,
    preview_subject,
    trust_policy,
)

# Named outside the program's ``wwhd-*`` roles, which the deploy role may change.
PREVIEW_ROLE_NAME = "github-actions-wwhd-preview"
DEPLOY_ROLE_NAME = "github-actions-wwhd-deploy"
IMAGE_ROLE_NAME = "github-actions-wwhd-image"

cfg = read_config()  # raises, listing every problem, before anything is registered

provider = aws.Provider(
    "aws",
    region=cfg.region,
    default_tags=aws.ProviderDefaultTagsArgs(
        tags={**cfg.tags, "Project": "wwhd", "ManagedBy": "pulumi", "PulumiProject": pulumi.get_project()}
    ),
)
protected = pulumi.ResourceOptions(provider=provider, protect=True)
invoke = pulumi.InvokeOutputOptions(provider=provider)
partition = aws.get_partition_output(opts=invoke).partition
account = aws.get_caller_identity_output(opts=invoke).account_id


def iam_arn(resource: str) -> pulumi.Output[str]:
    """An IAM ARN of this account formed from a name: known during a preview of a stack that
    does not exist yet, so the policy pack can judge the documents that name it."""
    return pulumi.Output.all(partition, account).apply(lambda v: f"arn:{v[0]}:iam::{v[1]}:{resource}")


boundary = aws.iam.Policy(
    "workload-boundary",
    name=BOUNDARY_POLICY_NAME,
    path="/",  # the main program forms arn:...:policy/wwhd-workload-boundary: no path in it
    description="W.W.H.D. workload boundary: the most any role of the program may ever do",
    policy=pulumi.Output.all(partition, account).apply(lambda v: json.dumps(workload_boundary(v[0], v[1]))),
    opts=protected,
)

# oidc_provider_known: the same ARN, formed from the URL rather than read from the resource.
if cfg.existing_oidc_provider_arn:
    oidc_provider_arn: pulumi.Output[str] = pulumi.Output.from_input(cfg.existing_oidc_provider_arn)
    oidc_provider_known = oidc_provider_arn
else:
    oidc_provider_arn = aws.iam.OpenIdConnectProvider(
        "github",
        url=f"https://{ISSUER_HOST}",
        client_id_lists=[AUDIENCE],
        # No thumbprints: IAM trusts GitHub's issuer through its own root CAs and ignores them.
        opts=protected,
    ).arn
    oidc_provider_known = iam_arn(f"oidc-provider/{ISSUER_HOST}")


def github_role(
    name: str,
    role_name: str,
    description: str,
    subject: tuple[str, str],
    max_session_seconds: int,
    managed_policy: str,
) -> aws.iam.Role:
    """A role GitHub Actions jobs whose token subject satisfies ``subject`` may assume, with
    the AWS managed policy ``managed_policy``; its inline policy is the caller's."""
    role = aws.iam.Role(
        name,
        name=role_name,
        description=description,
        assume_role_policy=oidc_provider_arn.apply(lambda arn: json.dumps(trust_policy(arn, subject))),
        max_session_duration=max_session_seconds,
        opts=protected,
    )
    aws.iam.RolePolicyAttachment(
        f"{name}-managed",
        role=role.name,
        policy_arn=partition.apply(lambda p: managed_policy_arn(p, managed_policy)),
        opts=protected,
    )
    return role


preview_role = github_role(
    "preview",
    PREVIEW_ROLE_NAME,
    "GitHub Actions preview.yml: pulumi preview of pull requests, read-only",
    preview_subject(cfg.github),
    PREVIEW_MAX_SESSION_SECONDS,
    "ReadOnlyAccess",
)
aws.iam.RolePolicy(
    "preview-no-data-reads",
    role=preview_role.id,
    policy=partition.apply(lambda p: json.dumps(preview_policy(p, cfg.state_bucket, cfg.secrets_key_arn))),
    opts=protected,
)

deploy_role = github_role(
    "deploy",
    DEPLOY_ROLE_NAME,
    "GitHub Actions deploy.yml: pulumi up of prod from main, in the production environment",
    environment_subject(cfg.github, cfg.github.production_environment),
    DEPLOY_MAX_SESSION_SECONDS,
    "PowerUserAccess",
)
# The protected ARNs are formed from the names, not read from the resources, so the document
# is known on a first preview; the boundary comes first, so no role can be created against a
# boundary that does not exist yet.
aws.iam.RolePolicy(
    "deploy-program-iam",
    role=deploy_role.id,
    policy=pulumi.Output.all(
        partition,
        account,
        iam_arn(f"role/{PREVIEW_ROLE_NAME}"),
        iam_arn(f"role/{DEPLOY_ROLE_NAME}"),
        iam_arn(f"role/{IMAGE_ROLE_NAME}"),
        oidc_provider_known,
    ).apply(lambda v: json.dumps(deploy_iam_policy(v[0], v[1], v[2:]))),
    opts=pulumi.ResourceOptions.merge(protected, pulumi.ResourceOptions(depends_on=[boundary])),
)

# image.yml's job, in the image environment (main branch only), pushes the API image; no other
# job may assume this role, and it may only push to the stacks' image repositories (no managed
# policy).
image_role = aws.iam.Role(
    "image",
    name=IMAGE_ROLE_NAME,
    description="GitHub Actions image.yml: push the multi-arch API image to the stacks' ECR repositories",
    assume_role_policy=oidc_provider_arn.apply(
        lambda arn: json.dumps(
            trust_policy(arn, environment_subject(cfg.github, cfg.github.image_environment))
        )
    ),
    max_session_duration=IMAGE_MAX_SESSION_SECONDS,
    opts=protected,
)
aws.iam.RolePolicy(
    "image-push",
    role=image_role.id,
    policy=pulumi.Output.all(partition, account).apply(lambda v: json.dumps(image_push_policy(v[0], v[1]))),
    opts=protected,
)

pulumi.export("previewRoleArn", preview_role.arn)
pulumi.export("deployRoleArn", deploy_role.arn)
pulumi.export("imageRoleArn", image_role.arn)
pulumi.export("oidcProviderArn", oidc_provider_arn)
pulumi.export("boundaryPolicyArn", boundary.arn)
