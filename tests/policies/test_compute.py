"""Compute policies: EBS encryption, IMDSv2, no public IPs, private placement, EBS backups, and
instance roles under iam-no-wildcard-actions."""

from __future__ import annotations

import json

import pytest
from pulumi_policy.proxy import UnknownValueError
from wwhd_policies import _ec2, compute, security

from .conftest import UNKNOWN, R, check_resource, check_stack, urn

LT = _ec2.LAUNCH_TEMPLATE
INSTANCE = _ec2.INSTANCE
VOLUME = _ec2.EBS_VOLUME
ASG = _ec2.AUTOSCALING_GROUP

GOOD_TEMPLATE = {
    "instanceType": "t4g.small",
    "metadataOptions": {"httpTokens": "required", "httpEndpoint": "enabled"},
    "networkInterfaces": [{"associatePublicIpAddress": "false"}],
    "blockDeviceMappings": [
        {"deviceName": "/dev/xvda", "ebs": {"volumeSize": 30, "volumeType": "gp3", "encrypted": "true"}}
    ],
}


# --- ebs-encrypted -----------------------------------------------------------------------------


def test_encrypted_volume_and_launch_template_pass() -> None:
    assert check_resource(compute.ebs_encrypted, VOLUME, {"size": 20, "encrypted": True}) == []
    assert check_resource(compute.ebs_encrypted, LT, GOOD_TEMPLATE) == []
    instance = {
        "rootBlockDevice": {"encrypted": True},
        "ebsBlockDevices": [{"deviceName": "/dev/sdf", "encrypted": True}],
    }
    assert check_resource(compute.ebs_encrypted, INSTANCE, instance) == []


def test_unset_or_false_encryption_violates() -> None:
    found = check_resource(compute.ebs_encrypted, VOLUME, {"size": 20}, name="data")
    assert found == [
        "Volume 'data' is not encrypted (encrypted is unset: it depends on the account's encryption-by-default)."
    ]
    mapping = {"deviceName": "/dev/xvda", "ebs": {"encrypted": "false"}}
    found = check_resource(
        compute.ebs_encrypted, LT, {**GOOD_TEMPLATE, "blockDeviceMappings": [mapping]}, name="lt"
    )
    assert found == ["LaunchTemplate 'lt' /dev/xvda is not encrypted."]


def test_a_launch_template_that_maps_no_volume_leaves_the_ami_root_unencrypted() -> None:
    template = {k: v for k, v in GOOD_TEMPLATE.items() if k != "blockDeviceMappings"}
    found = check_resource(compute.ebs_encrypted, LT, template, name="lt")
    assert len(found) == 1 and "root volume (from the AMI)" in found[0]
    assert len(check_resource(compute.ebs_encrypted, INSTANCE, {"instanceType": "t4g.nano"})) == 1


def test_customer_key_required_when_configured() -> None:
    config = {"requireCustomerKey": True}
    assert len(check_resource(compute.ebs_encrypted, VOLUME, {"encrypted": True}, config)) == 1
    assert (
        check_resource(compute.ebs_encrypted, VOLUME, {"encrypted": True, "kmsKeyId": UNKNOWN}, config) == []
    )


def test_unknown_encryption_cannot_be_decided() -> None:
    [message] = check_resource(compute.ebs_encrypted, VOLUME, {"encrypted": UNKNOWN}, name="data")
    assert message.startswith("undecided [encrypted]: Volume 'data': encrypted is unknown before creation; ")
    with pytest.raises(UnknownValueError, match="encrypted is unknown"):
        check_resource(compute.ebs_encrypted, VOLUME, {"encrypted": UNKNOWN}, {"undecided": "advisory"})


# --- ec2-imdsv2-required -------------------------------------------------------------------------


def test_imdsv2_required_or_metadata_off_passes() -> None:
    assert check_resource(compute.ec2_imdsv2_required, LT, GOOD_TEMPLATE) == []
    off = {"metadataOptions": {"httpEndpoint": "disabled"}}
    assert check_resource(compute.ec2_imdsv2_required, INSTANCE, off) == []


def test_imdsv1_allowed_or_unset_violates() -> None:
    optional = {"metadataOptions": {"httpTokens": "optional"}}
    assert check_resource(compute.ec2_imdsv2_required, LT, optional, name="lt") == [
        "LaunchTemplate 'lt' allows IMDSv1 (httpTokens 'optional')."
    ]
    found = check_resource(compute.ec2_imdsv2_required, _ec2.LAUNCH_CONFIGURATION, {})
    assert len(found) == 1 and "httpTokens unset" in found[0]


def test_imdsv2_unknown_cannot_be_decided() -> None:
    [message] = check_resource(compute.ec2_imdsv2_required, LT, {"metadataOptions": UNKNOWN}, name="lt")
    assert message.startswith("undecided [metadataOptions]: LaunchTemplate 'lt': ")


# --- ec2-no-public-ip ---------------------------------------------------------------------------


def test_no_public_ip_passes() -> None:
    assert check_resource(compute.ec2_no_public_ip, LT, GOOD_TEMPLATE) == []
    assert check_resource(compute.ec2_no_public_ip, INSTANCE, {"associatePublicIpAddress": False}) == []
    # Unset: the subnet decides, which ec2-private-subnets judges.
    assert check_resource(compute.ec2_no_public_ip, _ec2.LAUNCH_CONFIGURATION, {}) == []


def test_public_ip_violates() -> None:
    template = {**GOOD_TEMPLATE, "networkInterfaces": [{"associatePublicIpAddress": "true"}]}
    assert check_resource(compute.ec2_no_public_ip, LT, template, name="lt") == [
        "LaunchTemplate 'lt' gives its instances a public IPv4 address."
    ]
    assert len(check_resource(compute.ec2_no_public_ip, INSTANCE, {"associatePublicIpAddress": True})) == 1


# --- ec2-private-subnets ------------------------------------------------------------------------

VPC = R(
    "awsx:ec2:Vpc",
    "vpc",
    {"vpcId": "vpc-1", "privateSubnetIds": ["subnet-priv-a"], "publicSubnetIds": ["subnet-pub-a"]},
)


def test_group_and_instance_in_private_subnets_pass() -> None:
    stack = [
        VPC,
        R(ASG, "asg", {"vpcZoneIdentifiers": ["subnet-priv-a"]}),
        R(INSTANCE, "box", {"subnetId": "subnet-priv-a"}),
    ]
    assert check_stack(compute.ec2_private_subnets, stack) == []


def test_public_subnet_or_default_vpc_violates() -> None:
    stack = [
        VPC,
        R(ASG, "asg", {"vpcZoneIdentifiers": ["subnet-pub-a"]}),
        R(INSTANCE, "box", {}),
        R(ASG, "bare", {}),
    ]
    found = check_stack(compute.ec2_private_subnets, stack)
    assert [u for _, u in found] == [urn(INSTANCE, "box"), urn(ASG, "asg"), urn(ASG, "bare")]
    assert "default VPC" in found[0][0] and "public subnet" in found[1][0]


def test_unknown_subnets_cannot_be_decided() -> None:
    [(message, where)] = check_stack(
        compute.ec2_private_subnets, [R(ASG, "asg", {"vpcZoneIdentifiers": UNKNOWN})]
    )
    assert where == urn(ASG, "asg")
    assert message.startswith("undecided [vpcZoneIdentifiers]: Group 'asg': its subnet ids are unknown")
    # Its launch settings are not in the stack either: nothing says it is unreachable.
    assert "launch settings" in message


# --- ebs-volume-backed-up -----------------------------------------------------------------------

DATA = R(VOLUME, "data", {"size": 20, "encrypted": True, "arn": UNKNOWN, "tags": {"app": "qdrant"}})


def test_volume_selected_by_arn_through_dependencies_passes() -> None:
    selection = R(
        compute.aws.BACKUP_SELECTION, "sel", {"resources": [UNKNOWN]}, prop_deps={"resources": ["data"]}
    )
    assert check_stack(compute.ebs_volume_backed_up, [DATA, selection]) == []


def test_volume_selected_by_tag_wildcard_or_dlm_passes() -> None:
    by_tag = R(
        compute.aws.BACKUP_SELECTION,
        "sel",
        {"selectionTags": [{"type": "STRINGEQUALS", "key": "app", "value": "qdrant"}]},
    )
    wildcard = R(compute.aws.BACKUP_SELECTION, "all", {"resources": ["arn:aws:ec2:*:*:volume/*"]})
    dlm = R(
        _ec2.DLM_POLICY,
        "dlm",
        {"state": "ENABLED", "policyDetails": {"resourceTypes": ["VOLUME"], "targetTags": {"app": "qdrant"}}},
    )
    for cover in (by_tag, wildcard, dlm):
        assert check_stack(compute.ebs_volume_backed_up, [DATA, cover]) == [], cover.name


def test_volume_nobody_backs_up_violates() -> None:
    efs_only = R(
        compute.aws.BACKUP_SELECTION,
        "efs",
        {"resources": [UNKNOWN]},
        prop_deps={"resources": ["fs"]},
    )
    stack = [R("aws:efs/fileSystem:FileSystem", "fs", {}), DATA, efs_only]
    found = check_stack(compute.ebs_volume_backed_up, stack)
    assert found == [
        ("Volume 'data' is not snapshotted by any AWS Backup selection or DLM policy.", urn(VOLUME, "data"))
    ]
    disabled = R(
        _ec2.DLM_POLICY,
        "dlm",
        {"state": "DISABLED", "policyDetails": {"targetTags": {"app": "qdrant"}}},
    )
    assert len(check_stack(compute.ebs_volume_backed_up, [DATA, disabled])) == 1


def test_a_condition_that_excludes_the_volume_violates() -> None:
    narrowed = R(
        compute.aws.BACKUP_SELECTION,
        "sel",
        {
            "resources": ["*"],
            "condition": [{"stringEquals": [{"key": "aws:ResourceTag/app", "value": "postgres"}]}],
        },
    )
    assert len(check_stack(compute.ebs_volume_backed_up, [DATA, narrowed])) == 1


def test_exempt_tag_and_undecidable_selection() -> None:
    scratch = R(VOLUME, "scratch", {"size": 10, "tags": {"wwhd:stateless": "true"}})
    assert check_stack(compute.ebs_volume_backed_up, [scratch]) == []
    opaque = R(compute.aws.BACKUP_SELECTION, "sel", {"resources": UNKNOWN})
    [(message, where)] = check_stack(compute.ebs_volume_backed_up, [DATA, opaque])
    assert where == urn(VOLUME, "data") and message.startswith("undecided [resources]: Volume 'data': ")


# --- instance roles -----------------------------------------------------------------------------


def _role_policy(actions: list[str]) -> dict:
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    return {"role": "qdrant-instance", "policy": json.dumps(doc)}


def test_instance_role_wildcards_are_caught_by_iam_no_wildcard_actions() -> None:
    """The role behind an instance profile is an ordinary role: the IAM rule covers it, so the
    compute module adds no rule of its own."""
    policy = "aws:iam/rolePolicy:RolePolicy"
    assert len(check_resource(security.iam_no_wildcard_actions, policy, _role_policy(["ec2:*"]))) == 1
    scoped = _role_policy(["ec2:AttachVolume", "ec2:DescribeVolumes"])
    assert check_resource(security.iam_no_wildcard_actions, policy, scoped) == []


def test_an_instance_takes_unset_settings_from_its_launch_template() -> None:
    from_template = {"launchTemplate": {"id": "lt-1"}}
    assert check_resource(compute.ebs_encrypted, INSTANCE, from_template) == []
    assert check_resource(compute.ec2_imdsv2_required, INSTANCE, from_template) == []
    template = R(LT, "lt", {"id": "lt-1", "networkInterfaces": [{"subnetId": "subnet-priv-a"}]})
    placed = R(INSTANCE, "box", from_template)
    assert check_stack(compute.ec2_private_subnets, [VPC, template, placed]) == []
    unplaced = R(LT, "lt", {"id": "lt-1"})
    found = check_stack(compute.ec2_private_subnets, [VPC, unplaced, placed])
    assert [u for _, u in found] == [urn(INSTANCE, "box")] and "default VPC" in found[0][0]


# --- NAT instances (over the Analyzer gRPC interface) -------------------------------------------

PUBLIC_VPC = R(
    "awsx:ec2:Vpc",
    "vpc",
    {"vpcId": "vpc-1", "privateSubnetIds": ["subnet-priv-a"], "publicSubnetIds": ["subnet-pub-a"]},
)
PUBLIC_INSTANCE = {"subnetId": "subnet-pub-a", "associatePublicIpAddress": True, "instanceType": "t4g.nano"}


def test_a_nat_instance_is_public_by_design(pack) -> None:
    nat = R(INSTANCE, "nat", {**PUBLIC_INSTANCE, "sourceDestCheck": False})
    for policy in ("ec2-no-public-ip", "ec2-private-subnets"):
        assert pack.run(policy, [PUBLIC_VPC, nat]) == [], policy


def test_a_public_instance_that_forwards_nothing_violates(pack) -> None:
    for props in (PUBLIC_INSTANCE, {**PUBLIC_INSTANCE, "sourceDestCheck": True}):
        box = R(INSTANCE, "box", props)
        [public_ip] = pack.run("ec2-no-public-ip", [PUBLIC_VPC, box])
        assert public_ip.text == "Instance 'box' gives its instances a public IPv4 address."
        [placed] = pack.run("ec2-private-subnets", [PUBLIC_VPC, box])
        assert placed.name == "box" and "is placed in a public subnet" in placed.text


def test_a_source_dest_check_unknown_before_creation_is_undecided(pack) -> None:
    box = R(INSTANCE, "box", {**PUBLIC_INSTANCE, "sourceDestCheck": UNKNOWN})
    for policy in ("ec2-no-public-ip", "ec2-private-subnets"):
        [found] = pack.run(policy, [PUBLIC_VPC, box])
        assert found.undecided and found.text.startswith("undecided [sourceDestCheck]: "), found


def _nat_group(source_dest_check: object) -> list[R]:
    """A NAT instance the fck-nat way: an interface with the check off, attached by the launch
    template (ids unknown before creation, linked by property dependencies), in a public subnet."""
    eni = R(
        compute.NETWORK_INTERFACE,
        "nat-eni",
        {"id": UNKNOWN, "subnetId": "subnet-pub-a", "sourceDestCheck": source_dest_check},
    )
    template = R(
        LT,
        "nat-template",
        {
            "id": UNKNOWN,
            "instanceType": "t4g.nano",
            "networkInterfaces": [{"deviceIndex": 0, "networkInterfaceId": UNKNOWN}],
        },
        prop_deps={"networkInterfaces": ["nat-eni"]},
    )
    group = R(
        ASG,
        "nat",
        {"vpcZoneIdentifiers": ["subnet-pub-a"], "launchTemplate": {"id": UNKNOWN}},
        prop_deps={"launchTemplate": ["nat-template"]},
    )
    return [PUBLIC_VPC, eni, template, group]


def test_a_template_attaching_a_forwarding_interface_launches_nat_instances(pack) -> None:
    assert pack.run("ec2-private-subnets", _nat_group(False)) == []
    [placed] = pack.run("ec2-private-subnets", _nat_group(True))
    assert placed.urn == urn(ASG, "nat") and "is placed in a public subnet" in placed.text
