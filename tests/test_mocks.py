"""The recording mocks themselves: realistic outputs, strict invokes, stack files."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx
import pytest

from tools.mocks import SECRET_PLACEHOLDER, RecordingMonitor, load_stack_config, resolve, settle


def test_custom_resources_get_id_arn_and_camel_case_inputs(mocks: RecordingMonitor) -> None:
    aws.ecs.Service(
        "svc", desired_count=2, network_configuration={"subnets": ["subnet-1"], "assign_public_ip": False}
    )
    settle()
    svc = mocks.one("aws:ecs/service:Service")
    assert svc.outputs["id"] and svc.outputs["arn"].startswith("arn:aws:ecs:us-west-2:123456789012:")
    assert svc.inputs["desiredCount"] == 2
    assert svc.inputs["networkConfiguration"]["assignPublicIp"] is False


def test_awsx_vpc_answers_declared_outputs_only(mocks: RecordingMonitor) -> None:
    vpc = awsx.ec2.Vpc("v", number_of_availability_zones=3)
    settle()
    assert len(resolve(vpc.private_subnet_ids)) == 3
    assert mocks.one("awsx:ec2:Vpc").outputs.keys() >= {"vpcId", "publicSubnetIds", "natGateways"}
    assert "numberOfAvailabilityZones" not in mocks.one("awsx:ec2:Vpc").outputs


def test_unknown_invoke_raises_naming_it(mocks: RecordingMonitor) -> None:
    with pytest.raises(Exception, match="aws:ec2/getAmi:getAmi"):
        aws.ec2.get_ami(most_recent=True, owners=["amazon"])


def test_policy_document_is_rendered_like_the_provider(mocks: RecordingMonitor) -> None:
    doc = aws.iam.get_policy_document(
        statements=[
            {
                "actions": ["s3:GetObject"],
                "resources": ["arn:aws:s3:::b/*"],
                "principals": [{"type": "Service", "identifiers": ["ecs-tasks.amazonaws.com"]}],
                "conditions": [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}],
            }
        ]
    )
    statement = json.loads(doc.json)["Statement"][0]
    assert statement == {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::b/*",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def test_registrations_record_parent_and_protect(mocks: RecordingMonitor) -> None:
    class Box(pulumi.ComponentResource):
        def __init__(self) -> None:
            super().__init__("test:index:Box", "box")
            aws.sns.Topic("t", opts=pulumi.ResourceOptions(parent=self, protect=True))

    Box()
    settle()
    topic, box = mocks.one("aws:sns/topic:Topic"), mocks.one("test:index:Box")
    assert topic.parent == box.urn and topic.protect and not box.custom


def test_stack_files_are_namespaced_and_secure_values_hidden(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text(
        "name: demo\nruntime: python\nconfig:\n  size:\n    type: integer\n    default: 3\n"
    )
    (tmp_path / "Pulumi.s.yaml").write_text(
        "config:\n  aws:region: eu-west-1\n  demo:flag: true\n  obj:\n    a: [1, 2]\n"
        "  demo:token:\n    secure: v1:AAAA\n"
    )
    files = load_stack_config(tmp_path, "s")
    assert files.project == "demo"
    assert files.config == {
        "demo:size": "3",
        "aws:region": "eu-west-1",
        "demo:flag": "true",
        "demo:obj": '{"a": [1, 2]}',
        "demo:token": SECRET_PLACEHOLDER,
    }
    assert files.secret_keys == ["demo:token"]


def test_malformed_stack_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: demo\nruntime: python\n")
    (tmp_path / "Pulumi.s.yaml").write_text("config:\n  a: [unclosed\n")
    with pytest.raises(ValueError, match=r"Pulumi\.s\.yaml: not valid YAML"):
        load_stack_config(tmp_path, "s")
