"""A deliberately broken stack for the offline preview: it uses pulumi_aws directly and breaks
five mandatory guardrails of the wwhd policy pack, one each:

- efs-encrypted: the EFS file system is not encrypted;
- security-group-no-public-ingress: SSH (22) open to 0.0.0.0/0 on a group no load balancer uses;
- ecs-service-private-networking: the ECS service gives its tasks public IPs;
- image-pinned: the container image is `:latest`;
- single-writer-storage: two tasks (desired_count 2, default 200% deployments) share one EFS
  volume mounted at /data that holds SQLite (DATABASE_URL=sqlite:////data/app.db).
"""

import json

import pulumi
import pulumi_aws as aws

cfg = pulumi.Config()
image = cfg.require("image")

vpc = aws.ec2.Vpc("broken", cidr_block="10.9.0.0/16")
subnet = aws.ec2.Subnet("broken-a", vpc_id=vpc.id, cidr_block="10.9.1.0/24", map_public_ip_on_launch=True)

tasks_sg = aws.ec2.SecurityGroup(
    "broken-tasks",
    vpc_id=vpc.id,
    description="tasks, with SSH open to the world",
    ingress=[{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": ["0.0.0.0/0"]}],
)

data = aws.efs.FileSystem("broken-data", encrypted=False)
aws.efs.MountTarget(
    "broken-data-a", file_system_id=data.id, subnet_id=subnet.id, security_groups=[tasks_sg.id]
)

cluster = aws.ecs.Cluster("broken")
task = aws.ecs.TaskDefinition(
    "broken-api",
    family="broken-api",
    cpu="512",
    memory="1024",
    network_mode="awsvpc",
    requires_compatibilities=["FARGATE"],
    volumes=[{"name": "app-data", "efs_volume_configuration": {"file_system_id": data.id}}],
    container_definitions=json.dumps(
        [
            {
                "name": "api",
                "image": image,
                "essential": True,
                "portMappings": [{"containerPort": 8000}],
                "environment": [{"name": "DATABASE_URL", "value": "sqlite:////data/app.db"}],
                "mountPoints": [{"sourceVolume": "app-data", "containerPath": "/data"}],
            }
        ]
    ),
)
aws.ecs.Service(
    "broken-api",
    cluster=cluster.arn,
    task_definition=task.arn,
    desired_count=2,
    launch_type="FARGATE",
    network_configuration={
        "subnets": [subnet.id],
        "security_groups": [tasks_sg.id],
        "assign_public_ip": True,
    },
)
