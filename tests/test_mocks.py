"""The recording mocks themselves: outputs as the engine has them, resource references, auto-names,
answered and refused invokes, a brand-new stack, program order, stack files."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx
import pytest
from pulumi.runtime import rpc

from tools.mocks import (
    SECRET_PLACEHOLDER,
    RecordingMocks,
    RecordingMonitor,
    awsx_vpc_plan,
    install_mocks,
    is_unknown,
    load_stack_config,
    resolve,
    settle,
)

ECS_ARM64_AMI = "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"


def test_custom_resources_get_id_arn_and_camel_case_inputs(mocks: RecordingMonitor) -> None:
    aws.ecs.Service(
        "svc", desired_count=2, network_configuration={"subnets": ["subnet-1"], "assign_public_ip": False}
    )
    settle()
    svc = mocks.one("aws:ecs/service:Service")
    assert svc.outputs["id"] and svc.outputs["arn"].startswith("arn:aws:ecs:us-west-2:123456789012:")
    assert svc.inputs["desiredCount"] == 2
    assert svc.inputs["networkConfiguration"]["assignPublicIp"] is False


# --- resource objects as inputs ------------------------------------------------------------------


def test_a_resource_passed_as_an_input_arrives_as_its_id_like_on_aws(mocks: RecordingMonitor) -> None:
    role = aws.iam.Role("r", assume_role_policy="{}")
    # Resources where ids are meant, as public programs pass them (the stubs do not allow it).
    aws.iam.RolePolicyAttachment(
        "a",
        role=role,  # pyright: ignore[reportArgumentType]
        policy_arn="arn:aws:iam::aws:policy/ReadOnlyAccess",
    )
    fn = aws.lambda_.Function(
        "f",
        role=role.arn,
        runtime="python3.12",
        handler="h.h",
        code=pulumi.StringAsset("x"),  # pyright: ignore[reportArgumentType]
    )
    aws.lambda_.Permission(
        "p",
        function=fn,  # pyright: ignore[reportArgumentType]
        action="lambda:InvokeFunction",
        principal="s3.amazonaws.com",
    )
    settle()
    role_reg, fn_reg = mocks.one("aws:iam/role:Role"), mocks.one("aws:lambda/function:Function")
    # An IAM role's id is its name, a function's its name: what the provider receives for role=role.
    assert (
        mocks.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs["role"]
        == role_reg.outputs["name"]
    )
    assert mocks.one("aws:lambda/permission:Permission").inputs["function"] == fn_reg.outputs["name"]
    assert role_reg.id == role_reg.outputs["name"]


def test_a_component_passed_as_an_input_arrives_as_its_urn(mocks: RecordingMonitor) -> None:
    class Box(pulumi.ComponentResource):
        def __init__(self) -> None:
            super().__init__("test:index:Box", "box")
            self.register_outputs({})

    aws.sns.Topic("t", display_name=Box())  # type: ignore[arg-type] - any resource serializes
    settle()
    assert mocks.one("aws:sns/topic:Topic").inputs["displayName"] == mocks.one("test:index:Box").urn


# --- auto-names --------------------------------------------------------------------------------------


def test_check_fills_in_the_auto_name_the_provider_would(mocks: RecordingMonitor) -> None:
    aws.iam.Role("api-task", assume_role_policy="{}")
    aws.iam.Role("named", name="exact-name", assume_role_policy="{}")
    aws.s3.Bucket("Documents")
    aws.lb.TargetGroup("a-target-group-with-a-rather-long-logical-name", port=80, protocol="HTTP")
    aws.kms.Alias("key-alias", target_key_id="k")
    aws.route53.Record("api", zone_id="Z1", name="api.example.com", type="A", records=["1.2.3.4"])
    aws.iam.RolePolicyAttachment("attach", role="r", policy_arn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    settle()
    roles = {r.name: r for r in mocks.of_type("aws:iam/role:Role")}
    assert roles["api-task"].checked_inputs["name"].startswith("api-task-")
    assert len(roles["api-task"].checked_inputs["name"]) == len("api-task-") + 7
    assert "name" not in roles["api-task"].inputs  # the program's own inputs stay as written
    assert roles["named"].checked_inputs["name"] == "exact-name"
    assert (
        mocks.one("aws:s3/bucket:Bucket").checked_inputs["bucket"].startswith("documents-")
    )  # S3: lower case
    assert len(mocks.one("aws:lb/targetGroup:TargetGroup").checked_inputs["name"]) <= 32  # AWS's cap
    assert mocks.one("aws:kms/alias:Alias").checked_inputs["name"].startswith("alias/key-alias-")
    assert mocks.one("aws:route53/record:Record").checked_inputs["name"] == "api.example.com"
    assert "name" not in mocks.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").checked_inputs


# --- awsx -------------------------------------------------------------------------------------------


def test_awsx_vpc_answers_declared_outputs_only(mocks: RecordingMonitor) -> None:
    vpc = awsx.ec2.Vpc("v", number_of_availability_zones=3)
    settle()
    assert len(resolve(vpc.private_subnet_ids)) == 3 and len(resolve(vpc.public_subnet_ids)) == 3
    assert resolve(vpc.isolated_subnet_ids) == []
    assert mocks.one("awsx:ec2:Vpc").outputs.keys() >= {"vpcId", "publicSubnetIds", "natGateways"}
    assert "numberOfAvailabilityZones" not in mocks.one("awsx:ec2:Vpc").outputs


def test_awsx_vpc_honours_subnet_specs_per_type_and_az(mocks: RecordingMonitor) -> None:
    vpc = awsx.ec2.Vpc(
        "v",
        number_of_availability_zones=2,
        subnet_specs=[
            awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.PUBLIC),
            awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.PRIVATE, name="app"),
            awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.PRIVATE, name="data"),
            awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.ISOLATED),
            awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.UNUSED),
        ],
    )
    settle()
    public, private, isolated = (
        resolve(vpc.public_subnet_ids),
        resolve(vpc.private_subnet_ids),
        resolve(vpc.isolated_subnet_ids),
    )
    assert (len(public), len(private), len(isolated)) == (2, 4, 2)
    assert len(set(public + private + isolated)) == 8


def test_the_vpc_plan_follows_awsx_rules() -> None:
    plan = awsx_vpc_plan({"numberOfAvailabilityZones": 2, "natGateways": {"strategy": "Single"}})
    assert plan.subnets == {"public": 2, "private": 2} and (plan.nat_gateways, plan.eips) == (1, 1)
    assert plan.to_json()["routeTables"] == 4
    default = awsx_vpc_plan({})
    assert default.azs == 3 and default.nat_strategy == "OnePerAz" and default.nat_gateways == 3
    assert awsx_vpc_plan({"natGateways": {"strategy": "None"}}).nat_gateways == 0
    given = awsx_vpc_plan(
        {"availabilityZoneNames": ["a", "b"], "natGateways": {"elasticIpAllocationIds": ["x", "y"]}}
    )
    assert (given.azs, given.nat_gateways, given.eips) == (2, 2, 0)
    isolated = awsx_vpc_plan({"subnetSpecs": [{"type": "Isolated"}]})
    assert isolated.subnets == {"isolated": 3} and isolated.nat_gateways == 0


# --- invokes -----------------------------------------------------------------------------------------


def test_an_invoke_without_an_answer_raises_naming_it_and_is_recorded(mocks: RecordingMonitor) -> None:
    with pytest.raises(Exception, match="aws:ec2/getInstance:getInstance"):
        aws.ec2.get_instance(instance_id="i-1")
    assert mocks.mocks.unanswered == [("aws:ec2/getInstance:getInstance", "")]


def test_lookups_of_public_examples_are_answered_with_stand_ins(mocks: RecordingMonitor) -> None:
    vpc = aws.ec2.get_vpc(default=True)
    assert vpc.cidr_block == "172.31.0.0/16" and vpc.id.startswith("vpc-") and vpc.default
    subnets = aws.ec2.get_subnets(filters=[{"name": "vpc-id", "values": [vpc.id]}])
    assert len(subnets.ids) == 4 and all(s.startswith("subnet-") for s in subnets.ids)  # us-west-2 has 4 AZs
    image = aws.ec2.get_ami(
        most_recent=True, owners=["amazon"], filters=[{"name": "name", "values": ["al2023-ami-*-arm64"]}]
    )
    assert image.id.startswith("ami-") and image.architecture == "arm64" and "stand-in" in image.name
    assert aws.ssm.get_parameter(name=ECS_ARM64_AMI).value.startswith("ami-")
    record = json.loads(aws.ssm.get_parameter(name=ECS_ARM64_AMI.removesuffix("/image_id")).value)
    assert record["image_id"].startswith("ami-")
    group = aws.ec2.get_security_group(name="default", vpc_id=vpc.id)
    assert group.id.startswith("sg-") and group.vpc_id == vpc.id
    zone = aws.route53.get_zone(name="example.com.")
    assert zone.zone_id.startswith("Z") and zone.name == "example.com"
    assert aws.get_availability_zones().names[:2] == ["us-west-2a", "us-west-2b"]
    assert aws.get_availability_zones().zone_ids[0] == "usw2-az1"
    assert aws.get_caller_identity().account_id == "123456789012"
    assert aws.get_region().region == "us-west-2" and aws.get_partition().partition == "aws"
    # Made-up answers are recorded as such; answers that follow from the region are facts.
    assert set(mocks.mocks.stand_ins) == {
        "aws:ec2/getVpc:getVpc",
        "aws:ec2/getSubnets:getSubnets",
        "aws:ec2/getAmi:getAmi",
        "aws:ssm/getParameter:getParameter",
        "aws:ec2/getSecurityGroup:getSecurityGroup",
        "aws:route53/getZone:getZone",
        "aws:index/getAvailabilityZones:getAvailabilityZones",
        "aws:index/getCallerIdentity:getCallerIdentity",
    }


def test_a_parameter_of_the_account_has_no_stand_in(mocks: RecordingMonitor) -> None:
    with pytest.raises(Exception, match="belongs to the account"):
        aws.ssm.get_parameter(name="/wwhd/prod/db-password")
    assert mocks.mocks.unanswered[0][0] == "aws:ssm/getParameter:getParameter"


def test_the_partition_follows_the_region() -> None:
    install_mocks(RecordingMocks(region="cn-north-1"), project="wwhd", stack="test")
    pulumi.runtime.set_all_config({}, [])
    partition = aws.get_partition()
    assert (partition.partition, partition.dns_suffix) == ("aws-cn", "amazonaws.com.cn")


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


# --- a brand-new stack ----------------------------------------------------------------------------


def test_on_a_new_stack_computed_outputs_are_unknown_and_callbacks_do_not_run(
    new_stack: RecordingMonitor,
) -> None:
    ran: list[str] = []
    lb = aws.lb.LoadBalancer("alb", load_balancer_type="application", subnets=["subnet-1"])
    lb.dns_name.apply(lambda name: ran.append(name))
    aws.route53.Record(
        "api", zone_id="Z1", name="api.example.com", type="A",
        aliases=[{"name": lb.dns_name, "zone_id": lb.zone_id, "evaluate_target_health": True}],
    )  # fmt: skip
    settle()
    assert ran == []  # as under the engine: apply callbacks wait for values that do not exist yet
    reg = new_stack.one("aws:lb/loadBalancer:LoadBalancer")
    assert reg.id is None
    assert all(is_unknown(reg.outputs[k]) for k in ("arn", "arnSuffix", "dnsName", "zoneId", "id"))
    # what the engine knows before creation: the inputs after Check, the auto-name included
    assert reg.outputs["loadBalancerType"] == "application" and reg.outputs["name"].startswith("alb-")
    assert is_unknown(new_stack.one("aws:route53/record:Record").inputs["aliases"][0]["name"])
    assert resolve(lb.load_balancer_type) == "application"


def test_on_a_new_stack_an_invoke_of_unknown_arguments_is_unknown(new_stack: RecordingMonitor) -> None:
    bucket = aws.s3.Bucket("b")
    policy = aws.iam.get_policy_document_output(
        # An output inside a statement: the _output form resolves it at run time, though
        # the stubs type statements' fields as plain values.
        statements=[
            {"actions": ["s3:GetObject"], "resources": [bucket.arn.apply(lambda a: f"{a}/*")]}  # pyright: ignore[reportArgumentType]
        ]
    )
    aws.s3.BucketPolicy("bp", bucket=bucket.id, policy=policy.json)
    settle()
    assert is_unknown(new_stack.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    # an invoke with known arguments is answered as in any preview
    assert aws.get_caller_identity().account_id == "123456789012"


def test_on_a_new_stack_awsx_exposes_only_unknown_outputs(new_stack: RecordingMonitor) -> None:
    vpc = awsx.ec2.Vpc("v", number_of_availability_zones=2)
    settle()
    outputs = new_stack.one("awsx:ec2:Vpc").outputs
    assert outputs and all(is_unknown(v) for v in outputs.values())
    assert resolve(vpc.vpc_id) is None


def test_an_existing_resource_read_by_id_is_known_even_on_a_new_stack(new_stack: RecordingMonitor) -> None:
    vpc = aws.ec2.Vpc.get("existing", "vpc-0123456789abcdef0")
    settle()
    assert resolve(vpc.id) == "vpc-0123456789abcdef0"
    assert resolve(vpc.arn).startswith("arn:aws:ec2:us-west-2:123456789012:vpc/")
    assert new_stack.one("aws:ec2/vpc:Vpc").id == "vpc-0123456789abcdef0"
    assert "read aws:ec2/vpc:Vpc" in new_stack.mocks.stand_ins  # the account's values, made up


def test_an_unknown_output_is_the_sdk_unknown_on_the_wire(new_stack: RecordingMonitor) -> None:
    aws.sns.Topic("t")
    settle()
    assert new_stack.one("aws:sns/topic:Topic").outputs["arn"] is not None
    assert rpc.contains_unknowns(new_stack.one("aws:sns/topic:Topic").outputs)


# --- order and options ---------------------------------------------------------------------------------


def test_registrations_come_back_in_the_order_the_program_wrote_them(mocks: RecordingMonitor) -> None:
    later = pulumi.Output.from_input("x")
    holder: list[pulumi.Output[str]] = []
    first = aws.s3.Bucket("first", bucket=later.apply(lambda _: holder[0]))
    holder.append(aws.s3.Bucket("second").bucket)
    settle()
    assert [r.name for r in mocks.registrations if r.type == "aws:s3/bucket:Bucket"] == ["second", "first"]
    assert [r.name for r in mocks.in_program_order() if r.type == "aws:s3/bucket:Bucket"] == [
        "first",
        "second",
    ]
    assert resolve(first.bucket).startswith("second-")


def test_registrations_record_parent_and_protect(mocks: RecordingMonitor) -> None:
    class Box(pulumi.ComponentResource):
        def __init__(self) -> None:
            super().__init__("test:index:Box", "box")
            aws.sns.Topic("t", opts=pulumi.ResourceOptions(parent=self, protect=True))

    Box()
    settle()
    topic, box = mocks.one("aws:sns/topic:Topic"), mocks.one("test:index:Box")
    assert topic.parent == box.urn and topic.protect and not box.custom


def test_invented_values_are_told_apart_from_the_programs(mocks: RecordingMonitor) -> None:
    topic = aws.sns.Topic("t", name="alarms")
    settle()
    assert mocks.mocks.is_invented(resolve(topic.arn))
    assert mocks.mocks.is_invented({"url": f"https://x/{resolve(topic.id)}"})
    assert not mocks.mocks.is_invented(resolve(topic.name))


# --- stack files ---------------------------------------------------------------------------------------


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
