"""Run a Pulumi Python program offline: recording mocks, stack files, and the program itself.

The tests and the offline preview share this module, so what a test proves about a
registration is what the preview shows and the policy pack analyses.

- ``RecordingMocks`` answers resource registrations the way pulumi-aws would during a preview:
  inputs after the provider's Check (auto-names included), plus, for an update of an existing
  stack, realistic camelCase outputs (an id, an ARN and the name-like attributes other
  resources consume), or, for a brand-new stack (``new_stack=True``), every computed attribute
  unknown, as the engine has them before creation. It answers the invokes programs commonly
  make; answers made up offline are recorded as stand-ins, and an invoke it does not know
  raises, naming the token.
- ``RecordingMonitor`` records each registration with what ``MockResourceArgs`` lacks (parent,
  dependencies, provider, protect) and the order in which the program constructed resources.
  It runs on the program's event loop (no worker threads), so the same program always
  registers in the same order.
- ``load_stack_config`` reads ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml`` the way the CLI
  hands them to a program; ``run_program`` runs a program directory under the mocks.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import functools
import hashlib
import importlib
import inspect
import json
import logging
import os
import re
import runpy
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import struct_pb2
from pulumi import _types
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import provider_pb2, resource_pb2
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from tools.sdk_imports import import_by_name

ACCOUNT_ID = "123456789012"
SECRET_PLACEHOLDER = "offline-secret-placeholder"
STACK_TYPE = "pulumi:pulumi:Stack"
AWSX_VPC = "awsx:ec2:Vpc"
STACK_REFERENCE = "pulumi:pulumi:StackReference"

# Ids that look like AWS's, so validations reading a prefix (subnet-, sg-) behave.
_ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/natGateway:NatGateway": "nat-",
    "aws:ec2/eip:Eip": "eipalloc-",
    "aws:ec2/instance:Instance": "i-",
    "aws:ebs/volume:Volume": "vol-",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt-",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce-",
    "aws:ec2/flowLog:FlowLog": "fl-",
    "aws:efs/fileSystem:FileSystem": "fs-",
    "aws:efs/accessPoint:AccessPoint": "fsap-",
    "aws:efs/mountTarget:MountTarget": "fsmt-",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr-",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr-",
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": "ns-",
    "aws:servicediscovery/service:Service": "srv-",
}

# Resources whose AWS id is their name or ARN. A resource object passed as an input
# (``role=role``) reaches the provider as its id, so the id must be what AWS would use.
_ID_IS = {
    "aws:iam/role:Role": "name",
    "aws:iam/user:User": "name",
    "aws:iam/group:Group": "name",
    "aws:iam/instanceProfile:InstanceProfile": "name",
    "aws:iam/policy:Policy": "arn",
    "aws:lambda/function:Function": "name",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:s3/bucket:Bucket": "bucket",
    "aws:s3/bucketV2:BucketV2": "bucket",
    "aws:sns/topic:Topic": "arn",
    "aws:secretsmanager/secret:Secret": "arn",
    "aws:ecs/cluster:Cluster": "arn",
    "aws:lb/loadBalancer:LoadBalancer": "arn",
    "aws:lb/targetGroup:TargetGroup": "arn",
}


@dataclass(frozen=True)
class AutoName:
    """The input pulumi-aws fills from the logical name during Check: ``<name>-<7 hex>``."""

    prop: str
    max_length: int = 255
    lower: bool = False
    prefix: str = ""


# pulumi-aws auto-names the input ``name`` of every resource that has one (optional or
# required), unless its provider mapping says otherwise (pulumi-aws provider/autonaming.go and
# resources.go). The exceptions below are those mappings; ``None`` marks a ``name`` that is not
# auto-named. Length caps are AWS's own name limits, which the provider's auto-namer respects.
_AUTONAME: dict[str, AutoName | None] = {
    "aws:s3/bucket:Bucket": AutoName("bucket", 63, lower=True),
    "aws:s3/bucketV2:BucketV2": AutoName("bucket", 63, lower=True),
    "aws:rds/instance:Instance": AutoName("identifier", 63, lower=True),
    "aws:efs/fileSystem:FileSystem": AutoName("creationToken"),
    "aws:lambda/function:Function": AutoName("name", 64),
    "aws:lambda/permission:Permission": AutoName("statementId", 100),
    "aws:iam/role:Role": AutoName("name", 64),
    "aws:lb/loadBalancer:LoadBalancer": AutoName("name", 32),
    "aws:lb/targetGroup:TargetGroup": AutoName("name", 32),
    "aws:kms/alias:Alias": AutoName("name", 238, prefix="alias/"),
    "aws:mq/broker:Broker": AutoName("brokerName", 55),
    "aws:opensearch/domain:Domain": AutoName("domainName", 28, lower=True),
    "aws:elasticsearch/domain:Domain": AutoName("domainName", 28, lower=True),
    "aws:eks/nodeGroup:NodeGroup": AutoName("nodeGroupName"),
    "aws:eks/fargateProfile:FargateProfile": AutoName("fargateProfileName"),
    "aws:route53/record:Record": None,  # its name is the record's DNS name
}


def _hex(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _camel(snake: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), snake)


# --- the engine's wire format ----------------------------------------------------------------

_SIG = rpc._special_sig_key
_SECRET_SIG = rpc._special_secret_sig
_ASSET_SIG = rpc._special_asset_sig
_ARCHIVE_SIG = rpc._special_archive_sig


def to_wire(value: Any) -> Any:
    """A plain value as the engine marshals it (KeepUnknowns, KeepSecrets): secrets keep their
    signature wrapper, unknowns become the unknown sentinel, assets their signature form."""
    if isinstance(value, dict):
        if value.get(_SIG) == _SECRET_SIG:
            return {_SIG: _SECRET_SIG, "value": to_wire(value.get("value"))}
        return {str(k): to_wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, pulumi.output.Unknown):
        return rpc.UNKNOWN
    if isinstance(value, pulumi.Asset):
        for attr in ("path", "text", "uri"):
            if hasattr(value, attr):
                return {_SIG: _ASSET_SIG, attr: getattr(value, attr)}
    if isinstance(value, pulumi.Archive):
        if isinstance(value, pulumi.AssetArchive):
            return {_SIG: _ARCHIVE_SIG, "assets": {k: to_wire(v) for k, v in value.assets.items()}}
        for attr in ("path", "uri"):
            if hasattr(value, attr):
                return {_SIG: _ARCHIVE_SIG, attr: getattr(value, attr)}
    return str(value)


def to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(to_wire(dict(props)))
    return s


def is_unknown(value: Any) -> bool:
    """True when the value is, or contains, a value not known before deployment."""
    return rpc.contains_unknowns(value)


# --- what a resource type declares -------------------------------------------------------------


@dataclass(frozen=True)
class ResourceProperties:
    """Property names (camelCase) of a resource type, from its Python SDK class."""

    inputs: frozenset[str]
    outputs: frozenset[str]

    @property
    def computed(self) -> frozenset[str]:
        """Outputs the provider computes (id, arn, dnsName, ...): unknown before creation."""
        return self.outputs - self.inputs


@functools.cache
def resource_properties(typ: str) -> ResourceProperties | None:
    """Inputs and outputs of ``typ`` as its installed SDK declares them (the package registers
    each token's class with the runtime), or None for a package that is not installed."""
    parts = typ.split(":")
    if len(parts) != 3:
        return None
    module = rpc.get_resource_module(parts[0], parts[1], "")
    info = getattr(module, "mod_info", None)
    if not isinstance(info, dict) or typ not in info.get("classes", {}):
        return None
    cls = getattr(importlib.import_module(info["fqn"]), info["classes"][typ], None)
    if cls is None:
        return None
    to_pulumi = {py: name for name, py in _types.resource_pulumi_to_py_names(cls).items()}
    params = inspect.signature(cls._internal_init).parameters
    inputs = {
        to_pulumi.get(p, _camel(p))
        for p in params
        if p not in ("__self__", "resource_name", "opts", "__props__")
    }
    return ResourceProperties(frozenset(inputs), frozenset(_types.resource_types(cls)))


def autoname_rule(typ: str) -> AutoName | None:
    """The property pulumi-aws auto-names for ``typ``, if any (see ``_AUTONAME``)."""
    if typ in _AUTONAME:
        return _AUTONAME[typ]
    props = resource_properties(typ)
    return (
        AutoName("name") if typ.startswith("aws:") and props is not None and "name" in props.inputs else None
    )


def auto_name(rule: AutoName, logical: str) -> str:
    """``<logical>-<7 hex>``, the prefix cut so the whole fits the cap (the bridge's NewUniqueName)."""
    suffix = _hex(logical, length=7)
    stem = logical[: max(rule.max_length - len(rule.prefix) - 8, 1)]
    name = f"{stem}-{suffix}"
    return rule.prefix + (name.lower() if rule.lower else name)


# --- the awsx VPC's children, from its inputs ----------------------------------------------------


@dataclass(frozen=True)
class VpcPlan:
    """What ``awsx.ec2.Vpc`` creates from its inputs (pulumi-awsx awsx/ec2/vpc.ts): per AZ one
    subnet per non-Unused subnet spec, each with its route table and association; one NAT
    gateway (with an EIP unless allocation ids are given) per AZ or one in all, in a public
    subnet; one internet gateway; one endpoint per endpoint spec."""

    azs: int
    subnets: dict[str, int]  # "public" / "private" / "isolated" -> count over all AZs
    nat_strategy: str
    nat_gateways: int
    eips: int
    vpc_endpoints: int

    @property
    def subnet_total(self) -> int:
        return sum(self.subnets.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "availabilityZones": self.azs,
            "subnets": dict(self.subnets),
            "natGatewayStrategy": self.nat_strategy,
            "natGateways": self.nat_gateways,
            "elasticIps": self.eips,
            "routeTables": self.subnet_total,
            "internetGateways": 1,
            "vpcEndpoints": self.vpc_endpoints,
        }


def awsx_vpc_plan(inputs: Mapping[str, Any]) -> VpcPlan:
    """The children of an ``awsx:ec2:Vpc`` registered with ``inputs`` (camelCase). Unknown or
    missing values take awsx's defaults: 3 AZs, one public and one private subnet per AZ,
    strategy OnePerAz."""
    names = inputs.get("availabilityZoneNames")
    count = inputs.get("numberOfAvailabilityZones")
    if isinstance(names, list) and names:
        azs = len(names)
    elif isinstance(count, (int, float)) and not isinstance(count, bool):
        azs = int(count)
    else:
        azs = 3
    specs = inputs.get("subnetSpecs")
    kinds: list[str] = []
    if isinstance(specs, list) and specs:
        kinds = [str(s.get("type", "")).lower() for s in specs if isinstance(s, dict)]
    kinds = [k for k in kinds if k in ("public", "private", "isolated")] if kinds else ["public", "private"]
    per_az = Counter(kinds)
    subnets = {k: per_az[k] * azs for k in ("public", "private", "isolated") if per_az[k]}
    nat = inputs.get("natGateways")
    strategy = nat.get("strategy") if isinstance(nat, dict) else None
    strategy = (
        strategy if isinstance(strategy, str) and strategy in ("None", "Single", "OnePerAz") else "OnePerAz"
    )
    nat_count = 0 if strategy == "None" or not per_az["public"] else (1 if strategy == "Single" else azs)
    given_eips = nat.get("elasticIpAllocationIds") if isinstance(nat, dict) else None
    endpoints = inputs.get("vpcEndpointSpecs")
    return VpcPlan(
        azs=azs,
        subnets=subnets,
        nat_strategy=strategy,
        nat_gateways=nat_count,
        eips=0 if given_eips else nat_count,
        vpc_endpoints=len(endpoints) if isinstance(endpoints, list) else 0,
    )


# --- registrations ------------------------------------------------------------------------------


@dataclass
class Registration:
    """One resource registration as the engine would see it. ``inputs`` are the program's;
    ``checked_inputs`` are what the provider's Check returns (auto-names filled in), which is
    what the engine hands analyzers."""

    urn: str
    type: str
    name: str
    parent: str
    provider: str
    dependencies: list[str]
    inputs: dict[str, Any]
    checked_inputs: dict[str, Any]
    custom: bool = True
    remote: bool = False
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    retain_on_delete: bool = False
    # The mocks' answer, once given.
    id: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


Answer = Callable[[dict[str, Any]], dict[str, Any]]


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks with realistic outputs; ``invokes`` maps extra tokens to answer functions.

    ``new_stack=True`` answers as the engine does when previewing a stack that does not exist:
    the inputs after Check and every computed output unknown (ids, ARNs, DNS names, ...), remote
    components with only unknown outputs."""

    def __init__(
        self,
        region: str = "us-west-2",
        invokes: Mapping[str, Answer] | None = None,
        new_stack: bool = False,
    ):
        self.region = region
        self.new_stack = new_stack
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # Invokes the program made that no answer exists for (the preview names them once).
        self.unanswered: list[tuple[str, str]] = []  # (token, reason)
        # Answers made up offline, per token, in call order: AWS answers these from the account.
        self.stand_ins: dict[str, list[dict[str, Any]]] = {}
        # Strings the mocks invented (ids, ARNs, DNS names, stand-in answers): a value that
        # contains one is mock-supplied, not something the program or its configuration decided.
        self.invented: set[str] = set()
        self.invokes: dict[str, Answer] = {
            "aws:index/getCallerIdentity:getCallerIdentity": self._caller_identity,
            "aws:index/getRegion:getRegion": self._region,
            "aws:index/getPartition:getPartition": self._partition,
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._availability_zones,
            "aws:iam/getPolicyDocument:getPolicyDocument": self._policy_document,
            "aws:elb/getServiceAccount:getServiceAccount": self._elb_service_account,
            "aws:ec2/getVpc:getVpc": self._vpc,
            "aws:ec2/getSubnets:getSubnets": self._subnets,
            "aws:ec2/getSubnetIds:getSubnetIds": self._subnets,
            "aws:ec2/getSubnet:getSubnet": self._subnet,
            "aws:ec2/getAmi:getAmi": self._ami,
            "aws:ec2/getAmiIds:getAmiIds": self._ami_ids,
            "aws:ec2/getSecurityGroup:getSecurityGroup": self._security_group,
            "aws:ec2/getSecurityGroups:getSecurityGroups": self._security_groups,
            "aws:ec2/getRouteTable:getRouteTable": self._route_table,
            "aws:ssm/getParameter:getParameter": self._ssm_parameter,
            "aws:route53/getZone:getZone": self._hosted_zone,
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": self._ecr_token,
            "aws:ecr/getCredentials:getCredentials": self._ecr_token,
            **(invokes or {}),
        }
        # Answers computed from the region or the arguments are facts; these are made up.
        self.stand_in_tokens = {
            "aws:index/getCallerIdentity:getCallerIdentity",
            "aws:index/getAvailabilityZones:getAvailabilityZones",
            "aws:ec2/getVpc:getVpc",
            "aws:ec2/getSubnets:getSubnets",
            "aws:ec2/getSubnetIds:getSubnetIds",
            "aws:ec2/getSubnet:getSubnet",
            "aws:ec2/getAmi:getAmi",
            "aws:ec2/getAmiIds:getAmiIds",
            "aws:ec2/getSecurityGroup:getSecurityGroup",
            "aws:ec2/getSecurityGroups:getSecurityGroups",
            "aws:ec2/getRouteTable:getRouteTable",
            "aws:ssm/getParameter:getParameter",
            "aws:route53/getZone:getZone",
            "aws:ecr/getAuthorizationToken:getAuthorizationToken",
            "aws:ecr/getCredentials:getCredentials",
        }

    # --- resources -------------------------------------------------------------------------

    def check(self, typ: str, logical: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The inputs after the provider's Check: the auto-named property filled in unless the
        program set it (or a ``namePrefix``, which the provider completes at creation)."""
        checked = dict(inputs)
        rule = autoname_rule(typ)
        if rule is not None and rule.prop not in checked and "namePrefix" not in checked:
            checked[rule.prop] = auto_name(rule, logical)
            # Real auto-names end in a random suffix: a value built from one is mock-supplied.
            self._remember(checked[rule.prop])
        return checked

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-provider-id", dict(args.inputs)
        if args.typ == AWSX_VPC:
            return None, self._awsx_vpc(args)
        if args.typ == STACK_REFERENCE:
            # Another stack's outputs live in its state, which the preview cannot read: unknown,
            # as the engine has them for a stack that does not exist yet (never made up).
            name = str(args.inputs.get("name") or args.name)
            return name, {"name": name, "outputs": rpc.UNKNOWN, "secretOutputNames": rpc.UNKNOWN}
        if not args.custom:
            return None, {}
        checked = self.check(args.typ, args.name, args.inputs)
        if self.new_stack and not args.resource_id:
            # Before creation the engine knows the checked inputs; every computed output (and
            # the id) is unknown. An imported or read resource exists: its outputs are known.
            props = resource_properties(args.typ)
            computed = props.computed if props is not None else frozenset({"arn"})
            unknown = {k: rpc.UNKNOWN for k in sorted(computed) if k not in checked}
            return "", checked | unknown | {"id": rpc.UNKNOWN}
        if args.typ == "random:index/randomPassword:RandomPassword":
            # A fixed, obviously fake value: secrets generated at deploy time stay resolvable.
            rid = _hex(args.name)
            return rid, checked | {"id": rid, "result": "offline-generated"}
        generated = _ID_PREFIXES.get(args.typ, "") + _hex(args.typ, args.name)
        outputs = dict(checked)
        outputs.setdefault("id", generated)
        named = [v for v in (checked.get("name"), checked.get("bucket")) if isinstance(v, str) and v]
        name = named[0] if named else args.name
        outputs.setdefault("arn", self._arn(args.typ, name, generated))
        outputs |= self._typed_outputs(args.typ, args.name, name, outputs)
        rid = str(outputs.get(_ID_IS.get(args.typ, "")) or generated)
        outputs["id"] = rid
        for key, value in outputs.items():
            if key not in args.inputs or args.inputs[key] != value:
                self._remember(value)
        return rid, outputs

    def _remember(self, value: Any) -> None:
        """Note the invented strings in ``value`` (long enough, and with a digit, to be an id,
        an ARN, a DNS name or a suffixed name rather than an ordinary word)."""
        if isinstance(value, str):
            if len(value) >= 8 and any(c.isdigit() for c in value):
                self.invented.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                self._remember(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                self._remember(v)

    def is_invented(self, value: Any) -> bool:
        """True when ``value`` holds a string the mocks made up (or one built from it)."""
        if isinstance(value, str):
            return any(token in value for token in self.invented)
        if isinstance(value, dict):
            return any(self.is_invented(v) for v in value.values())
        if isinstance(value, (list, tuple)):
            return any(self.is_invented(v) for v in value)
        return False

    def _arn(self, typ: str, name: str, rid: str) -> str:
        service = typ.split(":")[1].split("/")[0]
        kind = typ.rsplit(":", 1)[1]
        kind = kind[0].lower() + kind[1:]
        if service == "s3":
            return f"arn:aws:s3:::{name}"
        if service == "iam":
            return f"arn:aws:iam::{ACCOUNT_ID}:{kind.lower()}/{name}"
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{kind}/{rid}"

    def _typed_outputs(self, typ: str, logical: str, name: str, o: dict[str, Any]) -> dict[str, Any]:
        """Outputs other resources consume, computed the way AWS would."""
        rid, region = o["id"], self.region
        match typ:
            case "aws:lb/loadBalancer:LoadBalancer":
                suffix = f"app/{name}/{_hex(logical, length=16)}"
                return {
                    "arn": f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT_ID}:loadbalancer/{suffix}",
                    "arnSuffix": suffix,
                    "dnsName": f"{name}-{_hex(logical, length=9)}.{region}.elb.amazonaws.com",
                    "zoneId": "Z1H1FL5HABSF5",
                }
            case "aws:lb/targetGroup:TargetGroup":
                suffix = f"targetgroup/{name}/{_hex(logical, length=16)}"
                return {
                    "arn": f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT_ID}:{suffix}",
                    "arnSuffix": suffix,
                }
            case "aws:ec2/instance:Instance":
                # Its interface is what a route to the instance targets (a NAT instance).
                return {"primaryNetworkInterfaceId": f"eni-{_hex(logical, 'eni')}"}
            case "aws:ecr/repository:Repository":
                return {
                    "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{name}",
                    "registryId": ACCOUNT_ID,
                }
            case "aws:kms/key:Key":
                return {"keyId": rid, "arn": f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{rid}"}
            case "aws:efs/fileSystem:FileSystem" | "aws:efs/accessPoint:AccessPoint":
                kind = "file-system" if typ.endswith("FileSystem") else "access-point"
                return {"arn": f"arn:aws:elasticfilesystem:{region}:{ACCOUNT_ID}:{kind}/{rid}"}
            case "aws:rds/instance:Instance":
                identifier = str(o.get("identifier") or name)
                address = f"{identifier}.{_hex(logical, length=12)}.{region}.rds.amazonaws.com"
                secret = f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:rds!db-{rid}"
                return {
                    "address": address,
                    "endpoint": f"{address}:{int(o.get('port') or 5432)}",
                    "port": int(o.get("port") or 5432),
                    "resourceId": f"db-{rid.upper()}",
                    "identifier": identifier,
                    "masterUserSecrets": [{"secretArn": secret, "secretStatus": "active"}],
                }
            case "aws:secretsmanager/secret:Secret":
                return {"arn": f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:{name}-AbCdEf"}
            case "aws:s3/bucket:Bucket" | "aws:s3/bucketV2:BucketV2":
                bucket = o.get("bucket") or name
                return {
                    "bucket": bucket,
                    "arn": f"arn:aws:s3:::{bucket}",
                    "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com",
                }
            case "aws:ecs/cluster:Cluster" | "aws:ecs/service:Service":
                return {"arn": f"arn:aws:ecs:{region}:{ACCOUNT_ID}:{typ.rsplit(':', 1)[1].lower()}/{name}"}
            case "aws:ecs/taskDefinition:TaskDefinition":
                family = o.get("family", name)
                return {
                    "arn": f"arn:aws:ecs:{region}:{ACCOUNT_ID}:task-definition/{family}:1",
                    "revision": 1,
                }
            case "aws:sns/topic:Topic":
                return {"arn": f"arn:aws:sns:{region}:{ACCOUNT_ID}:{name}"}
            case "aws:cloudwatch/logGroup:LogGroup":
                return {"arn": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{name}"}
            case "aws:lambda/function:Function":
                arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"
                return {
                    "arn": arn,
                    "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations",
                }
            case "aws:acm/certificate:Certificate":
                domain = o.get("domainName", "example.com")
                return {
                    "arn": f"arn:aws:acm:{region}:{ACCOUNT_ID}:certificate/{_hex(logical, length=8)}",
                    "domainValidationOptions": [
                        {
                            "domainName": domain,
                            "resourceRecordName": f"_{_hex(domain, length=12)}.{domain}.",
                            "resourceRecordType": "CNAME",
                            "resourceRecordValue": f"_{_hex(logical, length=12)}.acm-validations.aws.",
                        }
                    ],
                }
            case "aws:cloudwatch/dashboard:Dashboard":
                return {
                    "dashboardArn": f"arn:aws:cloudwatch::{ACCOUNT_ID}:dashboard/{o.get('dashboardName', name)}"
                }
            case "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace":
                return {"hostedZone": f"Z{_hex(logical, length=12).upper()}"}
            case "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
                host = str(o.get("url", "")).removeprefix("https://")
                return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{host}"}
            case "docker:index/image:Image":
                # The image as pushed: the container definitions built from it pin it by digest.
                image = str(o.get("imageName") or name)
                repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
                return {
                    "baseImageName": image,
                    "registryServer": image.split("/", 1)[0] if "/" in image else "docker.io",
                    "repoDigest": f"{repository}@sha256:{_hex(typ, logical, length=64)}",
                }
            case "docker-build:index:Image":
                digest = f"sha256:{_hex(typ, logical, length=64)}"
                tags = o.get("tags") or []
                pushed = bool(o.get("push")) and bool(tags) and isinstance(tags[0], str)
                return {
                    "digest": digest,
                    "contextHash": _hex(typ, logical, "context", length=64),
                    # A pushed image's ref is its first tag with the build's digest; otherwise empty.
                    "ref": f"{tags[0]}@{digest}" if pushed else "",
                }
            case "aws:backup/vault:Vault" | "aws:backup/plan:Plan":
                return {"arn": f"arn:aws:backup:{region}:{ACCOUNT_ID}:{typ.rsplit(':', 1)[1].lower()}:{name}"}
        return {}

    def _awsx_vpc(self, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
        """awsx's Vpc is a remote component: answer with its declared outputs only (echoing
        inputs back trips the SDK's type checks), subnet ids per type and AZ as its inputs ask
        for, and empty lists for its child resources, which the mocks cannot create. On a new
        stack every output is unknown."""
        if self.new_stack:
            props = resource_properties(AWSX_VPC)
            return {k: rpc.UNKNOWN for k in sorted(props.outputs)} if props else {"vpcId": rpc.UNKNOWN}
        plan = awsx_vpc_plan(args.inputs)
        ids = {
            kind: [f"subnet-{_hex(args.name, kind, str(i))}" for i in range(plan.subnets.get(kind, 0))]
            for kind in ("public", "private", "isolated")
        }
        outputs = {
            "vpcId": "vpc-" + _hex(args.name),
            "publicSubnetIds": ids["public"],
            "privateSubnetIds": ids["private"],
            "isolatedSubnetIds": ids["isolated"],
            "subnets": [],
            "routeTables": [],
            "routeTableAssociations": [],
            "routes": [],
            "natGateways": [],
            "eips": [],
            "vpcEndpoints": [],
        }
        self._remember(outputs)
        return outputs

    # --- invokes ---------------------------------------------------------------------------

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        given = dict(args.args)
        self.calls.append((args.token, given))
        answer = self.invokes.get(args.token)
        try:
            if answer is None:
                raise NotImplementedError("")
            result = answer(given)
        except NotImplementedError as exc:
            # Answers raise NotImplementedError with the reason only; the token is named here, once.
            self.unanswered.append((args.token, str(exc)))
            why = f": {exc}" if str(exc) else ""
            raise NotImplementedError(f"offline mocks cannot answer the invoke {args.token}{why}") from None
        if args.token in self.stand_in_tokens:
            self.stand_ins.setdefault(args.token, []).append(result)
            self._remember({k: v for k, v in result.items() if given.get(k) != v})
        return result

    def _elb_service_account(self, args: dict[str, Any]) -> dict[str, Any]:
        """The regional ELB log-delivery account AWS documents for regions older than 2022."""
        accounts = {
            "us-east-1": "127311923021",
            "us-east-2": "033677994240",
            "us-west-1": "027434742980",
            "us-west-2": "797873946194",
            "eu-west-1": "156460612806",
            "eu-central-1": "054676820928",
        }
        region = args.get("region") or self.region
        if region not in accounts:
            raise NotImplementedError(f"no ELB log-delivery account is known for region {region}")
        return {"id": accounts[region], "arn": f"arn:aws:iam::{accounts[region]}:root", "region": region}

    def _caller_identity(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "accountId": ACCOUNT_ID,
            "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline",
            "userId": "AIDAOFFLINE",
            "id": ACCOUNT_ID,
        }

    def _region(self, args: dict[str, Any]) -> dict[str, Any]:
        region = args.get("region") or args.get("name") or self.region
        return {
            "id": region,
            "name": region,
            "region": region,
            "endpoint": f"ec2.{region}.amazonaws.com",
            "description": region,
        }

    def _partition(self, _: dict[str, Any]) -> dict[str, Any]:
        if self.region.startswith("cn-"):
            partition, suffix = "aws-cn", "amazonaws.com.cn"
        elif self.region.startswith("us-gov-"):
            partition, suffix = "aws-us-gov", "amazonaws.com"
        else:
            partition, suffix = "aws", "amazonaws.com"
        return {
            "id": partition,
            "partition": partition,
            "dnsSuffix": suffix,
            "reverseDnsPrefix": ".".join(reversed(suffix.split("."))),
        }

    def _zone_names(self) -> list[str]:
        # us-east-1 has six zones, us-west-2 four; three is the common case elsewhere.
        count = {"us-east-1": 6, "us-west-2": 4}.get(self.region, 3)
        return [f"{self.region}{letter}" for letter in "abcdef"[:count]]

    def _availability_zones(self, _: dict[str, Any]) -> dict[str, Any]:
        names = self._zone_names()
        area, direction, number = [*self.region.split("-"), "", "", ""][:3]
        short = {"northeast": "ne", "southeast": "se", "northwest": "nw", "southwest": "sw"}
        zone_prefix = f"{area}{short.get(direction, direction[:1])}{number}"
        return {
            "id": self.region,
            "names": names,
            "zoneIds": [f"{zone_prefix}-az{i}" for i in range(1, len(names) + 1)],
            "groupNames": [self.region] * len(names),
            "state": "available",
        }

    def _policy_document(self, args: dict[str, Any]) -> dict[str, Any]:
        """Render ``aws.iam.get_policy_document`` the way the provider does."""
        statements = []
        for s in args.get("statements") or []:
            out: dict[str, Any] = {}
            if s.get("sid"):
                out["Sid"] = s["sid"]
            out["Effect"] = s.get("effect") or "Allow"
            for key, name in (("actions", "Action"), ("notActions", "NotAction"),
                              ("resources", "Resource"), ("notResources", "NotResource")):  # fmt: skip
                if s.get(key):
                    values = sorted(s[key])
                    out[name] = values[0] if len(values) == 1 else values
            for key, name in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
                if s.get(key):
                    principal: dict[str, Any] = {}
                    for p in s[key]:
                        ids = sorted(p["identifiers"])
                        principal[p["type"]] = ids[0] if len(ids) == 1 else ids
                    out[name] = "*" if principal == {"*": "*"} else principal
            if s.get("conditions"):
                cond: dict[str, dict[str, Any]] = {}
                for c in s["conditions"]:
                    values = c["values"]
                    cond.setdefault(c["test"], {})[c["variable"]] = values[0] if len(values) == 1 else values
                out["Condition"] = cond
            statements.append(out)
        document = {"Version": args.get("version") or "2012-10-17", "Statement": statements}
        text = json.dumps(document, indent=2)
        return {"id": _hex(text), "json": text, "minifiedJson": json.dumps(document, separators=(",", ":"))}

    # Stand-ins: what an account would answer, made up. The preview lists every one it used.

    @staticmethod
    def _filter(args: dict[str, Any], name: str) -> list[str]:
        for f in args.get("filters") or []:
            if isinstance(f, dict) and f.get("name") == name:
                return [str(v) for v in f.get("values") or []]
        return []

    def _default_vpc_id(self) -> str:
        return "vpc-" + _hex(self.region, "default-vpc")

    def _vpc(self, args: dict[str, Any]) -> dict[str, Any]:
        """The default VPC (172.31.0.0/16, as AWS creates it) or the one asked for by id."""
        default = bool(args.get("default")) or not (args.get("id") or args.get("filters") or args.get("tags"))
        vpc_id = args.get("id") or (
            self._default_vpc_id() if default else "vpc-" + _hex(json.dumps(args, sort_keys=True))
        )
        cidr = args.get("cidrBlock") or ("172.31.0.0/16" if default else "10.0.0.0/16")
        return {
            "id": vpc_id,
            "arn": f"arn:aws:ec2:{self.region}:{ACCOUNT_ID}:vpc/{vpc_id}",
            "cidrBlock": cidr,
            "cidrBlockAssociations": [
                {"associationId": "vpc-cidr-assoc-" + _hex(vpc_id), "cidrBlock": cidr, "state": "associated"}
            ],
            "default": default,
            "dhcpOptionsId": "dopt-" + _hex(vpc_id),
            "enableDnsHostnames": default,
            "enableDnsSupport": True,
            "instanceTenancy": "default",
            "mainRouteTableId": "rtb-" + _hex(vpc_id, "main"),
            "ownerId": ACCOUNT_ID,
            "state": "available",
            "tags": args.get("tags") or {},
        }

    def _subnet_ids(self, args: dict[str, Any]) -> list[str]:
        vpc = args.get("vpcId") or next(iter(self._filter(args, "vpc-id")), self._default_vpc_id())
        zones = self._filter(args, "availability-zone") or self._zone_names()
        return [f"subnet-{_hex(vpc, zone)}" for zone in zones]

    def _subnets(self, args: dict[str, Any]) -> dict[str, Any]:
        """One subnet per AZ of the VPC asked for, as a default VPC has."""
        return {"id": self.region, "ids": self._subnet_ids(args), "filters": args.get("filters")}

    def _subnet(self, args: dict[str, Any]) -> dict[str, Any]:
        subnet_id = args.get("id") or self._subnet_ids(args)[0]
        zone = args.get("availabilityZone") or self._zone_names()[0]
        return {
            "id": subnet_id,
            "arn": f"arn:aws:ec2:{self.region}:{ACCOUNT_ID}:subnet/{subnet_id}",
            "availabilityZone": zone,
            "cidrBlock": args.get("cidrBlock") or "172.31.0.0/20",
            "defaultForAz": True,
            "mapPublicIpOnLaunch": True,
            "ownerId": ACCOUNT_ID,
            "state": "available",
            "vpcId": args.get("vpcId") or self._default_vpc_id(),
        }

    def _ecr_token(self, args: dict[str, Any]) -> dict[str, Any]:
        """Registry credentials (getAuthorizationToken and the older getCredentials): the token is
        base64 of ``AWS:<password>``, as ECR's; the password is a placeholder that logs in nowhere."""
        registry = str(args.get("registryId") or ACCOUNT_ID)
        token = base64.b64encode(f"AWS:{SECRET_PLACEHOLDER}".encode()).decode()
        return {
            "id": registry,
            "registryId": registry,
            "authorizationToken": token,
            "userName": "AWS",
            "password": SECRET_PLACEHOLDER,
            "proxyEndpoint": f"https://{registry}.dkr.ecr.{args.get('region') or self.region}.amazonaws.com",
            "expiresAt": "2099-12-31T00:00:00Z",
            "region": args.get("region") or self.region,
        }

    def _ami(self, args: dict[str, Any]) -> dict[str, Any]:
        """An image matching the filters: its architecture from them, its name saying it is a stand-in."""
        pattern = next(iter(self._filter(args, "name")), args.get("nameRegex") or "*")
        arch = next(iter(self._filter(args, "architecture")), "")
        if not arch:
            arch = "arm64" if re.search(r"arm64|aarch64", pattern) else "x86_64"
        image = "ami-" + _hex(json.dumps(args, sort_keys=True))
        owners = args.get("owners") or ["amazon"]
        return {
            "id": image,
            "imageId": image,
            "architecture": arch,
            "name": f"offline-stand-in ({pattern})",
            "description": "Offline preview stand-in: AWS picks the real image at deployment.",
            "ownerId": owners[0],
            "imageOwnerAlias": owners[0] if not str(owners[0]).isdigit() else None,
            "rootDeviceName": "/dev/xvda",
            "rootDeviceType": "ebs",
            "virtualizationType": "hvm",
            "state": "available",
            "mostRecent": bool(args.get("mostRecent")),
        }

    def _ami_ids(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.region, "ids": [self._ami(args)["id"]]}

    def _security_group(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("name") or next(iter(self._filter(args, "group-name")), "default")
        vpc = args.get("vpcId") or next(iter(self._filter(args, "vpc-id")), self._default_vpc_id())
        group = args.get("id") or "sg-" + _hex(vpc, name)
        return {
            "id": group,
            "arn": f"arn:aws:ec2:{self.region}:{ACCOUNT_ID}:security-group/{group}",
            "name": name,
            "description": "Offline preview stand-in for an existing security group.",
            "vpcId": vpc,
            "tags": args.get("tags") or {},
        }

    def _security_groups(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self._security_group(args)
        return {"id": self.region, "ids": [group["id"]], "vpcIds": [group["vpcId"]], "arns": [group["arn"]]}

    def _route_table(self, args: dict[str, Any]) -> dict[str, Any]:
        """The route table associated with the subnet asked for (or the table asked for by id),
        holding only its local route: what the account has is not known offline."""
        subnet = args.get("subnetId")
        table = args.get("routeTableId") or (f"rtb-{_hex('route-table', subnet)}" if subnet else None)
        if table is None:
            raise NotImplementedError("only look-ups by subnetId or routeTableId have stand-ins")
        associations = (
            [
                {
                    "routeTableAssociationId": f"rtbassoc-{_hex(table, subnet)}",
                    "routeTableId": table,
                    "subnetId": subnet,
                    "gatewayId": "",
                    "main": False,
                }
            ]
            if subnet
            else []
        )
        return {
            "id": table,
            "routeTableId": table,
            "arn": f"arn:aws:ec2:{self.region}:{ACCOUNT_ID}:route-table/{table}",
            "associations": associations,
            "ownerId": ACCOUNT_ID,
            "region": self.region,
            "routes": [],
            "subnetId": subnet or "",
            "gatewayId": "",
            "tags": {},
            "vpcId": args.get("vpcId") or self._default_vpc_id(),
        }

    def _ssm_parameter(self, args: dict[str, Any]) -> dict[str, Any]:
        """AWS's public parameters (``/aws/service/...``): image ids and the ECS-optimized AMI
        records. A parameter of the account has a value the preview cannot know."""
        name = str(args.get("name") or "")
        if not name.startswith("/aws/service/"):
            raise NotImplementedError(
                f"parameter {name!r} belongs to the account; only AWS public parameters (/aws/service/...) have stand-ins"
            )
        image = "ami-" + _hex(name)
        if name.endswith("/image_id") or "/ami-" in name or name.endswith("_64") or name.endswith("-arm64"):
            value = image
        elif "/ecs/optimized-ami/" in name and name.endswith("/recommended"):
            value = json.dumps(
                {
                    "image_id": image,
                    "image_name": f"offline-stand-in ({name})",
                    "os": "Amazon Linux",
                    "schema_version": 1,
                }
            )
        else:
            raise NotImplementedError(f"no stand-in for the public parameter {name!r}")
        return {
            "id": name,
            "name": name,
            "value": value,
            "insecureValue": value,
            "type": "String",
            "version": 1,
            "arn": f"arn:aws:ssm:{self.region}::parameter{name}",
            "withDecryption": bool(args.get("withDecryption", True)),
        }

    def _hosted_zone(self, args: dict[str, Any]) -> dict[str, Any]:
        zone = args.get("zoneId") or ("Z" + _hex(str(args.get("name")), length=13).upper())
        name = str(args.get("name") or "example.com").rstrip(".")
        return {
            "id": zone,
            "zoneId": zone,
            "arn": f"arn:aws:route53:::hostedzone/{zone}",
            "name": name,
            "privateZone": bool(args.get("privateZone")),
            "comment": "Offline preview stand-in for an existing hosted zone.",
            "callerReference": _hex(zone),
            "nameServers": [
                f"ns-{i}.awsdns-0{i}.{tld}" for i, tld in enumerate(("com", "net", "org", "co.uk"))
            ],
            "resourceRecordSetCount": 2,
            "primaryNameServer": "ns-0.awsdns-00.com",
            "tags": args.get("tags") or {},
        }


# --- the monitor -----------------------------------------------------------------------------------


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs each call at once in the calling thread. The SDK hands every monitor call to the
    event loop's default executor; with worker threads, calls finish in whatever order the
    threads get scheduled, and so would the registrations. Inline, the order follows the program."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the awaiting coroutine, as a worker thread would
            future.set_exception(exc)
        return future


_CONSTRUCTED = re.compile(
    r"^(?:registering|reading) resource: ty=(?P<type>.*?), name=(?P<name>.*), (?:custom|id)="
)


class _EngineLog(logging.Logger):
    """What the program logs to the engine. The SDK logs each resource it constructs, at
    construction, before its inputs resolve: that gives the program's own order and, for a
    program that never finishes, the resources still waiting.

    The SDK's mock engine calls ``debug``/``info``/``warning``/``error`` with one message each (a
    few hundred for a stack of this size); they are recorded here directly rather than through
    the logging machinery (a record and a handler call each: 0.5% of prod's program run)."""

    def __init__(self) -> None:
        super().__init__("pulumi-engine", logging.DEBUG)
        self.constructed: list[tuple[str, str]] = []
        self.messages: list[tuple[str, str]] = []

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        found = _CONSTRUCTED.match(str(msg))
        if found:
            self.constructed.append((found["type"], found["name"]))

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.messages.append(("info", str(msg)))

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.messages.append(("warning", str(msg)))

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.messages.append(("error", str(msg)))


def _invoke_response(result: Mapping[str, Any], failures: Sequence[tuple[str, str]] = ()) -> Any:
    response = resource_pb2.ResourceInvokeResponse(
        failures=[provider_pb2.CheckFailure(property=p, reason=r) for p, r in failures]
    )
    getattr(response, "return").CopyFrom(to_struct(result))  # "return" is a keyword in Python
    return response


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that keeps every registration, in order, with its options."""

    def __init__(self, mocks: RecordingMocks):
        super().__init__(mocks)
        self.mocks: RecordingMocks = mocks
        self.registrations: list[Registration] = []
        self.outputs: dict[str, dict[str, Any]] = {}
        self.log = _EngineLog()
        # Called with each registration once answered, as the engine hands a resource to its
        # analyzers while the program still runs.
        self.on_register: Callable[[Registration], None] | None = None

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The URN the engine gives: the parent's whole qualified type chain, then ``$`` and the
        type, with the root stack contributing nothing. (The SDK's mock keeps only the parent's
        last type and prefixes top-level resources with ``pulumi:pulumi:Stack$``, so its URNs
        would not match a real state file or an import file.)"""
        if parent:
            qualified = parent.split("::")[2]
            if qualified != STACK_TYPE:
                type_ = f"{qualified}${type_}"
        return f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{type_}::{name}"

    def GetDeploymentInfo(self, request):  # noqa: N802 - the gRPC method name
        """Everything the SDK's mock supports except resource references: pulumi-aws does not
        accept them, so the engine sends its provider a resource's id (custom) or URN
        (component), and that is what the SDK then serializes. (With references on, the mock
        would rebuild each referenced resource while deserializing, on a different event loop.)"""
        info = super().GetDeploymentInfo(request)
        kept = [
            f
            for f in info.supportedFeatures
            if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES
        ]
        return resource_pb2.DeploymentInfo(supportedFeatures=kept)

    def SupportsFeature(self, request):  # noqa: N802 - the gRPC method name
        supported = request.id not in ("outputValues", "resourceReferences")
        return type("SupportsFeatureResponse", (object,), {"hasSupport": supported})

    def RegisterResource(self, request):  # noqa: N802 - the gRPC method name
        registration = self._record(
            request,
            rpc.deserialize_properties(request.object),
            custom=request.custom,
            remote=request.remote,
            property_dependencies={k: sorted(set(v.urns)) for k, v in request.propertyDependencies.items()},
            protect=request.protect,
            retain_on_delete=request.retainOnDelete,
        )
        if request.type == STACK_TYPE:
            self._registered(registration)
            return resource_pb2.RegisterResourceResponse(urn=registration.urn)
        rid, wire = self._answer(registration, request.importId)
        self._registered(registration)
        return resource_pb2.RegisterResourceResponse(urn=registration.urn, id=rid, object=wire)

    def ReadResource(self, request):  # noqa: N802 - the gRPC method name
        """``Resource.get(name, id)``: an existing resource, answered like a registration with
        known outputs; they are stand-ins (AWS would read them from the account)."""
        registration = self._record(request, rpc.deserialize_properties(request.properties))
        rid, wire = self._answer(registration, request.id)
        self.mocks.stand_ins.setdefault(f"read {request.type}", []).append(registration.outputs)
        self._registered(registration)
        return resource_pb2.ReadResourceResponse(urn=registration.urn, id=rid, properties=wire)

    def _record(self, request: Any, inputs: dict[str, Any], **options: Any) -> Registration:
        """Record a RegisterResource or ReadResource request (both name the resource's type, name,
        parent, provider and dependencies) in the order it arrived; ``options`` are the fields only
        a registration carries (a read is a custom resource with no options)."""
        registration = Registration(
            urn=self.make_urn(request.parent, request.type, request.name),
            type=request.type,
            name=request.name,
            parent=request.parent,
            provider=request.provider,
            dependencies=sorted(set(request.dependencies)),
            inputs=inputs,
            checked_inputs=inputs,
            **options,
        )
        self.registrations.append(registration)
        return registration

    def _registered(self, registration: Registration) -> None:
        if self.on_register is not None:
            self.on_register(registration)

    def _answer(self, registration: Registration, existing_id: str) -> tuple[str, struct_pb2.Struct]:
        """The mocks' id and outputs for a registration (``existing_id``: the id of a resource read
        or imported, which exists and keeps it), recorded on it; returns them as sent."""
        args = pulumi.runtime.MockResourceArgs(
            typ=registration.type,
            name=registration.name,
            inputs=registration.inputs,
            provider=registration.provider,
            resource_id=existing_id,
            custom=registration.custom,
        )
        rid, state = self.mocks.new_resource(args)
        if existing_id:
            rid, state = existing_id, state | {"id": existing_id}
        if registration.custom and not registration.type.startswith("pulumi:providers:"):
            registration.checked_inputs = self.mocks.check(
                registration.type, registration.name, registration.inputs
            )
        wire = to_struct(state)
        registration.outputs = rpc.deserialize_properties(wire)
        registration.id = rid or None
        self.resources[registration.urn] = pulumi_mocks.MockMonitor.ResourceRegistration(
            registration.urn, rid or "", state
        )
        return rid or "", wire

    def Invoke(self, request):  # noqa: N802 - the gRPC method name
        args = rpc.deserialize_properties(request.args)
        if request.tok == "pulumi:pulumi:getResource":
            found = self.resources.get(args["urn"])
            if found is None:
                raise Exception(f"unknown resource {args['urn']}")
            return _invoke_response(found._asdict())
        if is_unknown(args):
            # As the engine: an invoke whose arguments are not known yet has an unknown result.
            return resource_pb2.ResourceInvokeResponse(unknown=True)
        answer = self.mocks.call(
            pulumi.runtime.MockCallArgs(token=request.tok, args=args, provider=request.provider)
        )
        result, failures = (answer, None) if isinstance(answer, dict) else answer
        return _invoke_response(result, failures or ())

    def RegisterResourceOutputs(self, request):  # noqa: N802 - the gRPC method name
        self.outputs[request.urn] = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)

    # Queries used by tests and the preview ------------------------------------------------------

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == typ]

    def one(self, typ: str, name: str | None = None) -> Registration:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(typ)]
            raise AssertionError(f"expected one {typ} named {name!r}, found {names}")
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)

    def in_program_order(self) -> list[Registration]:
        """The registrations in the order the program constructed the resources."""
        position: dict[tuple[str, str], list[int]] = {}
        for i, key in enumerate(self.log.constructed):
            position.setdefault(key, []).append(i)
        rank: dict[int, int] = {}
        late = len(self.log.constructed)
        for j, r in enumerate(self.registrations):
            slots = position.get((r.type, r.name))
            rank[id(r)] = slots.pop(0) if slots else late + j
        return sorted(self.registrations, key=lambda r: rank[id(r)])

    def pending(self) -> list[tuple[str, str]]:
        """(type, name) of resources constructed but never registered: still waiting for inputs."""
        remaining = Counter((r.type, r.name) for r in self.registrations)
        waiting = []
        for key in self.log.constructed:
            if remaining[key]:
                remaining[key] -= 1
            else:
                waiting.append(key)
        return waiting


_previous_loop: asyncio.AbstractEventLoop | None = None


def _retire(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what an earlier run left pending (a program that failed or timed out half-way),
    let the cancellations finish, and close its loop: nothing of it runs into the next run."""
    if loop.is_running() or loop.is_closed():
        return
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=1))
    loop.close()


def install_mocks(mocks: RecordingMocks, project: str, stack: str, preview: bool = True) -> RecordingMonitor:
    """Reset the SDK's globals and install fresh mocks for one program run, on a fresh event
    loop whose executor runs the monitor inline (registrations in program order; nothing left
    over from an earlier run)."""
    global _previous_loop
    if _previous_loop is not None:
        _retire(_previous_loop)
    settings.reset_options(project=project, stack=stack, preview=preview)
    loop = _previous_loop = asyncio.new_event_loop()
    loop.set_default_executor(_InlineExecutor(max_workers=1))
    asyncio.set_event_loop(loop)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=preview, monitor=monitor, logger=monitor.log
    )
    return monitor


def settle() -> None:
    """Wait until every registration and output of the program has resolved."""
    _sync_await(wait_for_rpcs())


def resolve(value: Any) -> Any:
    """The plain value of an Output (or input) after the program ran."""
    return _sync_await(pulumi.Output.from_input(value).future())


# --- stack files ---------------------------------------------------------------------------


@dataclass
class StackFiles:
    """What the CLI would hand a program: its project, namespaced config and secret keys."""

    project: str
    main: Path
    config: dict[str, str]
    secret_keys: list[str] = field(default_factory=list)


def _config_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _without_secure(value: Any) -> tuple[Any, bool]:
    """Replace ``secure:`` ciphertexts (which cannot be decrypted offline) by a placeholder."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        pairs = {k: _without_secure(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_without_secure(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def load_stack_config(cwd: Path, stack: str) -> StackFiles:
    """Read ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml`` into the SDK's config form: keys
    namespaced (the project's name when none is given), every value a string (JSON for
    objects and lists), project defaults applied, ``secure:`` values replaced and marked
    secret. Raises ``ValueError`` naming the file and key on malformed input."""
    project_file = cwd / "Pulumi.yaml"
    try:
        project_doc = yaml.safe_load(project_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{project_file}: {exc}") from None
    if not isinstance(project_doc, dict) or "name" not in project_doc:
        raise ValueError(f"{project_file}: not a Pulumi project file (no name)")
    project = str(project_doc["name"])
    runtime = project_doc.get("runtime")
    runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if runtime_name != "python":
        raise ValueError(f"{project_file}: runtime is {runtime_name!r}; only python runs offline")
    main = cwd / str(project_doc.get("main", "."))
    if main.is_dir():
        main = main / "__main__.py"

    config: dict[str, str] = {}
    for key, decl in (project_doc.get("config") or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        default = decl.get("default") if isinstance(decl, dict) else decl
        if default is not None:
            config[full] = _config_text(default)

    stack_file = cwd / f"Pulumi.{stack}.yaml"
    try:
        stack_doc = yaml.safe_load(stack_file.read_text()) or {}
    except OSError:
        raise ValueError(f"{stack_file}: no such stack file") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{stack_file}: not valid YAML ({exc})") from None
    if not isinstance(stack_doc, dict) or not isinstance(stack_doc.get("config") or {}, dict):
        raise ValueError(f"{stack_file}: 'config' must be a mapping of keys to values")

    secret_keys: list[str] = []
    for key, value in (stack_doc.get("config") or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        plain, secret = _without_secure(value)
        config[full] = _config_text(plain)
        if secret:
            secret_keys.append(full)
    return StackFiles(project=project, main=main, config=config, secret_keys=secret_keys)


@contextmanager
def _program_environment(cwd: Path) -> Iterator[None]:
    """Run with the program's directory as cwd and first on sys.path, as the language host does."""
    old_cwd, old_path = os.getcwd(), list(sys.path)
    os.chdir(cwd)
    sys.path.insert(0, str(cwd))
    try:
        yield
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path


# --- running a program -----------------------------------------------------------------------------


class ProgramTimeoutError(Exception):
    """The program did not finish in time; ``pending`` names the resources still waiting."""

    def __init__(self, seconds: float, pending: list[tuple[str, str]]):
        self.seconds = seconds
        self.pending = pending
        super().__init__(f"the program did not finish within {seconds:g} s")


class _Alarm(BaseException):
    """Not an Exception: a program's own ``except Exception`` must not swallow the deadline."""


@contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Raise ``_Alarm`` in the program after ``seconds``. A program stuck waiting for a value
    that never resolves sleeps in the event loop's select() at 0% CPU; a signal wakes it. Only
    the main thread receives signals: elsewhere the program runs without a deadline."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum: int, frame: Any) -> None:
        raise _Alarm

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class StackOutput:
    """One export: its value (None while unknown), whether it is known, whether it is secret."""

    value: Any
    known: bool
    secret: bool


@dataclass
class ProgramRun:
    """The result of one offline run of a program."""

    project: str
    stack: str
    registrations: list[Registration]
    stack_outputs: dict[str, StackOutput]
    monitor: RecordingMonitor
    mocks: RecordingMocks

    @property
    def outputs(self) -> dict[str, Any]:
        """The exports' plain values (None for one not known before deployment)."""
        return {k: o.value if o.known else None for k, o in self.stack_outputs.items()}


def _stack_output(value: Any) -> StackOutput:
    output = pulumi.Output.from_input(value)
    plain = _sync_await(output.future(with_unknowns=True))
    known = _sync_await(output.is_known()) and not is_unknown(plain)
    return StackOutput(plain, known, _sync_await(output.is_secret()))


def run_program(
    cwd: Path,
    stack: str,
    overrides: Mapping[str, str] | None = None,
    mocks: RecordingMocks | None = None,
    timeout: float | None = None,
    on_register: Callable[[Registration], None] | None = None,
) -> ProgramRun:
    """Run the program in ``cwd`` for ``stack`` under recording mocks and return what it
    registered and exported, in the order the program constructed it. ``overrides`` replaces
    namespaced config values. Exceptions from the program propagate (``pulumi.RunError`` for a
    clean, traceback-free failure); ``ProgramTimeoutError`` when it has not finished after
    ``timeout`` seconds. ``on_register`` is called with each registration as soon as it is
    answered, in the program's event loop (keep it short)."""
    files = load_stack_config(cwd, stack)
    config = files.config | dict(overrides or {})
    region = config.get("aws:region", "us-west-2")
    mocks = mocks or RecordingMocks(region=region)
    monitor = install_mocks(mocks, files.project, stack)
    monitor.on_register = on_register
    pulumi.runtime.set_all_config(config, files.secret_keys)
    # The same classes, without importing the ~600 pulumi_aws modules the program never names.
    import_by_name("pulumi_aws")
    try:
        with _program_environment(cwd), _deadline(timeout):
            runpy.run_path(str(files.main), run_name="__main__")
            settle()
    except _Alarm:
        raise ProgramTimeoutError(timeout or 0, monitor.pending()) from None
    root = settings.get_root_resource()
    exported = getattr(root, "outputs", {}) if root is not None else {}
    outputs = {k: _stack_output(v) for k, v in exported.items()}
    return ProgramRun(files.project, stack, monitor.in_program_order(), outputs, monitor, mocks)
