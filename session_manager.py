"""The IAM actions of the Session Manager agent, shared by the program and the bootstrap.

The program grants them to the roles it creates (the Qdrant host's instance role, a task with
ECS Exec); the bootstrap's workload boundary must allow exactly as much, or those roles lose
them silently. One list keeps the two from drifting apart. The bootstrap imports this module
from the repository root, as it imports ``config_errors.py``; it therefore imports nothing.

IAM's service authorization reference lists no resource type for any of these actions: they
stand under ``Resource: "*"`` only.
"""

from __future__ import annotations

CHANNEL_ACTIONS = (
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
)
"""The session channels the agent opens (Session Manager, ECS Exec)."""

MESSAGE_ACTIONS = (
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
)
"""The Run Command messages the agent on an EC2 instance takes."""
