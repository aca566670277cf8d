"""WwhdRoles: the ECS task and execution roles, created empty before the data they will reach."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

TOKEN = "wwhd:index:WwhdRoles"

ECS_TASKS_PRINCIPAL = "ecs-tasks.amazonaws.com"


@dataclass(frozen=True)
class WwhdRolesArgs:
    """Which roles the stack needs."""

    region: str
    """AWS region of the stack; the trust policies accept tasks of this region's ECS only."""
    qdrant_service: bool = False
    """Qdrant runs as its own ECS service (``qdrant.placement: service``): create its task and
    execution roles too. Default False (sidecar or external: the API task's roles suffice)."""


@dataclass(frozen=True)
class TaskRoles:
    """The roles as ``WwhdService`` takes them (``WwhdRoles.task_roles()``, or literal values)."""

    api_task_role_arn: pulumi.Input[str]
    """The API task role's ARN (task definition ``taskRoleArn``)."""
    api_task_role_name: pulumi.Input[str]
    """Its name (the permissions are attached to it)."""
    execution_role_arn: pulumi.Input[str]
    """The API execution role's ARN (``executionRoleArn``)."""
    execution_role_name: pulumi.Input[str]
    """Its name."""
    qdrant_task_role_arn: pulumi.Input[str] | None = None
    """The Qdrant service's task role ARN (``service`` placement only). Default None."""
    qdrant_task_role_name: pulumi.Input[str] | None = None
    """Its name. Default None."""
    qdrant_execution_role_arn: pulumi.Input[str] | None = None
    """The Qdrant service's execution role ARN (``service`` placement only). Default None."""
    qdrant_execution_role_name: pulumi.Input[str] | None = None
    """Its name. Default None."""


class WwhdRoles(pulumi.ComponentResource):
    """Trust only: every role here can be assumed by this account's ECS tasks in this region,
    and holds no permission yet.

    The roles exist before the data they reach because the data volume's file system policy
    names them (it admits only these task roles), while their permissions name the file
    system, access points, secrets and buckets: ``WwhdService`` attaches those as separate
    ``RolePolicy`` resources once everything exists, so there is no dependency cycle.
    """

    api_task_role_arn: pulumi.Output[str]
    """ARN of the API task role (what the application's code may call)."""
    api_task_role_name: pulumi.Output[str]
    """Name of the API task role."""
    execution_role_arn: pulumi.Output[str]
    """ARN of the API task execution role (what ECS does to start the task: pull, log, secrets)."""
    execution_role_name: pulumi.Output[str]
    """Name of the API task execution role."""
    qdrant_task_role_arn: pulumi.Output[str] | None
    """ARN of the Qdrant service's task role (``qdrant_service`` only, else None)."""
    qdrant_task_role_name: pulumi.Output[str] | None
    """Name of the Qdrant service's task role (``qdrant_service`` only, else None)."""
    qdrant_execution_role_arn: pulumi.Output[str] | None
    """ARN of the Qdrant service's execution role: pull and log only, no secrets
    (``qdrant_service`` only, else None)."""
    qdrant_execution_role_name: pulumi.Output[str] | None
    """Name of the Qdrant service's execution role (``qdrant_service`` only, else None)."""

    def __init__(self, name: str, args: WwhdRolesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TOKEN, name, None, opts)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self))
        trust = identity.account_id.apply(
            lambda account: json.dumps(ecs_tasks_trust_policy(account, args.region))
        )

        api_task = self._role(f"{name}-api-task", "W.W.H.D. API task: what the application may call", trust)
        execution = self._role(
            f"{name}-execution", "W.W.H.D. API task execution: image pull, logs, injected secrets", trust
        )
        self.api_task_role_arn = api_task.arn
        self.api_task_role_name = api_task.name
        self.execution_role_arn = execution.arn
        self.execution_role_name = execution.name

        self.qdrant_task_role_arn = self.qdrant_task_role_name = None
        self.qdrant_execution_role_arn = self.qdrant_execution_role_name = None
        if args.qdrant_service:
            # Its own roles: the Qdrant task mounts only its access point and never sees the
            # API's secrets, not even through ECS.
            qdrant_task = self._role(
                f"{name}-qdrant-task", "W.W.H.D. Qdrant task: its EFS access point only", trust
            )
            qdrant_execution = self._role(
                f"{name}-qdrant-execution", "W.W.H.D. Qdrant task execution: image pull and logs", trust
            )
            self.qdrant_task_role_arn = qdrant_task.arn
            self.qdrant_task_role_name = qdrant_task.name
            self.qdrant_execution_role_arn = qdrant_execution.arn
            self.qdrant_execution_role_name = qdrant_execution.name

        self.register_outputs(
            {
                "api_task_role_arn": self.api_task_role_arn,
                "api_task_role_name": self.api_task_role_name,
                "execution_role_arn": self.execution_role_arn,
                "execution_role_name": self.execution_role_name,
                "qdrant_task_role_arn": self.qdrant_task_role_arn,
                "qdrant_task_role_name": self.qdrant_task_role_name,
                "qdrant_execution_role_arn": self.qdrant_execution_role_arn,
                "qdrant_execution_role_name": self.qdrant_execution_role_name,
            }
        )

    def task_roles(self) -> TaskRoles:
        """The roles in the form ``WwhdServiceArgs.roles`` takes."""
        return TaskRoles(
            api_task_role_arn=self.api_task_role_arn,
            api_task_role_name=self.api_task_role_name,
            execution_role_arn=self.execution_role_arn,
            execution_role_name=self.execution_role_name,
            qdrant_task_role_arn=self.qdrant_task_role_arn,
            qdrant_task_role_name=self.qdrant_task_role_name,
            qdrant_execution_role_arn=self.qdrant_execution_role_arn,
            qdrant_execution_role_name=self.qdrant_execution_role_name,
        )

    def _role(self, name: str, description: str, trust: pulumi.Input[str]) -> aws.iam.Role:
        return aws.iam.Role(
            name,
            description=description,
            assume_role_policy=trust,
            # Every permission is a separate RolePolicy/attachment made by WwhdService.
            opts=pulumi.ResourceOptions(parent=self),
        )


def ecs_tasks_trust_policy(account: str, region: str) -> dict:
    """Trust ECS tasks of this account and region only (confused-deputy guard: another
    account's ECS cannot be made to assume the role on its behalf)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ECS_TASKS_PRINCIPAL},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:{region}:{account}:*"},
                },
            }
        ],
    }
