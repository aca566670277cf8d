"""What the component tests share: the type tokens they look registrations up by, the stand-in
values several of them hand the components, and the checks of rules more than one component keeps."""

from __future__ import annotations

import json

from tools.mocks import ACCOUNT_ID, RecordingMonitor, Registration

# The permissions boundary the stack attaches to every role its workloads assume.
BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/wwhd-workload-boundary"

# Resources, by the token the engine registers them under.
ACCESS_POINT = "aws:efs/accessPoint:AccessPoint"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
AUTOSCALING_GROUP = "aws:autoscaling/group:Group"
BACKUP_PLAN = "aws:backup/plan:Plan"
BACKUP_SELECTION = "aws:backup/selection:Selection"
BACKUP_VAULT = "aws:backup/vault:Vault"
DB_INSTANCE = "aws:rds/instance:Instance"
DB_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
DB_SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
EBS_VOLUME = "aws:ebs/volume:Volume"
EC2_INSTANCE = "aws:ec2/instance:Instance"
ECS_SERVICE = "aws:ecs/service:Service"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
FILE_SYSTEM = "aws:efs/fileSystem:FileSystem"
FILE_SYSTEM_POLICY = "aws:efs/fileSystemPolicy:FileSystemPolicy"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
INSTANCE_PROFILE = "aws:iam/instanceProfile:InstanceProfile"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
LISTENER = "aws:lb/listener:Listener"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"
POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROUTE = "aws:ec2/route:Route"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SSM_PARAMETER = "aws:ssm/parameter:Parameter"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
TOPIC = "aws:sns/topic:Topic"
TOPIC_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"

# Invokes, by the token the mocks are called with.
GET_PARAMETER = "aws:ssm/getParameter:getParameter"
GET_ROUTE_TABLE = "aws:ec2/getRouteTable:getRouteTable"


def instance_role(monitor: RecordingMonitor, name: str, boundary: str) -> Registration:
    """The role ``name`` of an instance the stack runs, checked for what every such role keeps:
    the permissions boundary, a trust policy that admits EC2 and nothing else, and no managed
    policy attached (what the instance may do is its own inline policy, scoped by the component).
    Returns the role's registration for the checks particular to the component."""
    role = monitor.one(ROLE, name)
    assert role.inputs["permissionsBoundary"] == boundary
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "ec2.amazonaws.com"}]
    assert not [a for a in monitor.of_type(POLICY_ATTACHMENT) if a.inputs["role"] == role.outputs["name"]]
    return role
