"""Run a Pulumi Python program offline: recording mocks, stack files, and the program itself.

The tests and the offline preview share this module, so what a test proves about a
registration is what the preview shows and the policy pack analyses.

- ``RecordingMocks`` answers resource registrations with realistic camelCase outputs (an id,
  an ARN and the name-like attributes other resources consume) and answers the invokes
  programs use; an invoke it does not know raises, naming the token.
- ``RecordingMonitor`` records each registration with what ``MockResourceArgs`` lacks:
  parent, dependencies, property dependencies, provider, protect.
- ``load_stack_config`` reads ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml`` the way the CLI
  hands them to a program; ``run_program`` runs a program directory under the mocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import runpy
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

ACCOUNT_ID = "123456789012"
SECRET_PLACEHOLDER = "offline-secret-placeholder"

# Ids that look like AWS's, so validations reading a prefix (subnet-, sg-) behave.
_ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/natGateway:NatGateway": "nat-",
    "aws:ec2/eip:Eip": "eipalloc-",
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


def _hex(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


@dataclass
class Registration:
    """One resource registration as the engine would see it."""

    urn: str
    type: str
    name: str
    custom: bool
    remote: bool
    parent: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    id: str | None
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    provider: str
    protect: bool
    retain_on_delete: bool


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks with realistic outputs; ``invokes`` maps extra tokens to answer functions."""

    def __init__(
        self,
        region: str = "us-west-2",
        invokes: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]] | None = None,
    ):
        self.region = region
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.invokes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": self._caller_identity,
            "aws:index/getRegion:getRegion": self._region,
            "aws:index/getPartition:getPartition": self._partition,
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._availability_zones,
            "aws:iam/getPolicyDocument:getPolicyDocument": self._policy_document,
            "aws:elb/getServiceAccount:getServiceAccount": self._elb_service_account,
            **(invokes or {}),
        }

    # --- resources -------------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-provider-id", dict(args.inputs)
        if args.typ == "awsx:ec2:Vpc":
            return None, self._awsx_vpc(args)
        if not args.custom:
            return None, {}
        if args.typ == "random:index/randomPassword:RandomPassword":
            # A fixed, obviously fake value: secrets generated at deploy time stay resolvable.
            return _hex(args.name), dict(args.inputs) | {"id": _hex(args.name), "result": "offline-generated"}
        rid = _ID_PREFIXES.get(args.typ, "") + _hex(args.typ, args.name)
        outputs = dict(args.inputs)
        outputs.setdefault("id", rid)
        outputs.setdefault("name", args.inputs.get("name") or f"{args.name}-{_hex(args.name, length=7)}")
        outputs.setdefault("arn", self._arn(args.typ, outputs["name"], rid))
        outputs |= self._typed_outputs(args.typ, args.name, outputs)
        return rid, outputs

    def _arn(self, typ: str, name: str, rid: str) -> str:
        service = typ.split(":")[1].split("/")[0]
        kind = typ.rsplit(":", 1)[1]
        kind = kind[0].lower() + kind[1:]
        if service == "s3":
            return f"arn:aws:s3:::{name}"
        if service == "iam":
            return f"arn:aws:iam::{ACCOUNT_ID}:{kind.lower()}/{name}"
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{kind}/{rid}"

    def _typed_outputs(self, typ: str, logical: str, o: dict[str, Any]) -> dict[str, Any]:
        """Outputs other resources consume, computed the way AWS would."""
        name, rid, region = o["name"], o["id"], self.region
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
            case "aws:ecr/repository:Repository":
                return {"repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{name}"}
            case "aws:kms/key:Key":
                return {"keyId": rid, "arn": f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{rid}"}
            case "aws:efs/fileSystem:FileSystem" | "aws:efs/accessPoint:AccessPoint":
                kind = "file-system" if typ.endswith("FileSystem") else "access-point"
                return {"arn": f"arn:aws:elasticfilesystem:{region}:{ACCOUNT_ID}:{kind}/{rid}"}
            case "aws:rds/instance:Instance":
                address = f"{name}.{_hex(logical, length=12)}.{region}.rds.amazonaws.com"
                secret = f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:rds!db-{rid}"
                return {
                    "address": address,
                    "endpoint": f"{address}:{int(o.get('port') or 5432)}",
                    "port": int(o.get("port") or 5432),
                    "resourceId": f"db-{rid.upper()}",
                    "identifier": o.get("identifier") or name,
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
            case "aws:backup/vault:Vault" | "aws:backup/plan:Plan":
                return {"arn": f"arn:aws:backup:{region}:{ACCOUNT_ID}:{typ.rsplit(':', 1)[1].lower()}:{name}"}
        return {}

    def _awsx_vpc(self, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
        """awsx's Vpc is a remote component: answer with its declared outputs only (echoing
        inputs back trips the SDK's type checks) and empty lists for its child resources."""
        azs = int(args.inputs.get("numberOfAvailabilityZones") or 3)
        return {
            "vpcId": "vpc-" + _hex(args.name),
            "publicSubnetIds": [f"subnet-{_hex(args.name, 'public', str(i))}" for i in range(azs)],
            "privateSubnetIds": [f"subnet-{_hex(args.name, 'private', str(i))}" for i in range(azs)],
            "isolatedSubnetIds": [],
            "subnets": [],
            "routeTables": [],
            "routeTableAssociations": [],
            "routes": [],
            "natGateways": [],
            "eips": [],
            "vpcEndpoints": [],
        }

    # --- invokes ---------------------------------------------------------------------------

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        self.calls.append((args.token, dict(args.args)))
        answer = self.invokes.get(args.token)
        if answer is None:
            raise NotImplementedError(f"offline mocks cannot answer the invoke {args.token}")
        return answer(dict(args.args))

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
            raise NotImplementedError(f"offline mocks know no ELB log account for {region}")
        return {"id": accounts[region], "arn": f"arn:aws:iam::{accounts[region]}:root", "region": region}

    def _caller_identity(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "accountId": ACCOUNT_ID,
            "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline",
            "userId": "AIDAOFFLINE",
            "id": ACCOUNT_ID,
        }

    def _region(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.region,
            "name": self.region,
            "region": self.region,
            "endpoint": f"ec2.{self.region}.amazonaws.com",
            "description": self.region,
        }

    def _partition(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "aws",
            "partition": "aws",
            "dnsSuffix": "amazonaws.com",
            "reverseDnsPrefix": "com.amazonaws",
        }

    def _availability_zones(self, _: dict[str, Any]) -> dict[str, Any]:
        names = [f"{self.region}{s}" for s in "abcd"]
        return {
            "id": self.region,
            "names": names,
            "zoneIds": [f"usw2-az{i}" for i in range(1, 5)],
            "groupNames": [self.region] * 4,
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


STACK_TYPE = "pulumi:pulumi:Stack"


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that keeps every registration, in order, with its options."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.outputs: dict[str, dict[str, Any]] = {}

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

    def RegisterResource(self, request):  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        outputs = rpc.deserialize_properties(response.object) if response.object else {}
        self.registrations.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                custom=request.custom,
                remote=request.remote,
                parent=request.parent,
                inputs=rpc.deserialize_properties(request.object),
                outputs=outputs,
                id=response.id or None,
                dependencies=list(request.dependencies),
                property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                provider=request.provider,
                protect=request.protect,
                retain_on_delete=request.retainOnDelete,
            )
        )
        return response

    def RegisterResourceOutputs(self, request):  # noqa: N802 - the gRPC method name
        self.outputs[request.urn] = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)

    # Queries used by tests ------------------------------------------------------------------

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


def install_mocks(mocks: RecordingMocks, project: str, stack: str, preview: bool = True) -> RecordingMonitor:
    """Reset the SDK's globals and install fresh mocks for one program run."""
    settings.reset_options(project=project, stack=stack, preview=preview)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
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


@dataclass
class ProgramRun:
    """The result of one offline run of a program."""

    project: str
    stack: str
    registrations: list[Registration]
    outputs: dict[str, Any]
    monitor: RecordingMonitor
    mocks: RecordingMocks


def run_program(
    cwd: Path,
    stack: str,
    overrides: Mapping[str, str] | None = None,
    mocks: RecordingMocks | None = None,
) -> ProgramRun:
    """Run the program in ``cwd`` for ``stack`` under recording mocks and return what it
    registered and exported. ``overrides`` replaces namespaced config values. Exceptions
    from the program propagate (``pulumi.RunError`` for a clean, traceback-free failure)."""
    files = load_stack_config(cwd, stack)
    config = files.config | dict(overrides or {})
    region = config.get("aws:region", "us-west-2")
    mocks = mocks or RecordingMocks(region=region)
    monitor = install_mocks(mocks, files.project, stack)
    pulumi.runtime.set_all_config(config, files.secret_keys)
    with _program_environment(cwd):
        runpy.run_path(str(files.main), run_name="__main__")
        settle()
    root = settings.get_root_resource()
    exported = getattr(root, "outputs", {}) if root is not None else {}
    outputs = {k: resolve(v) for k, v in exported.items()}
    return ProgramRun(files.project, stack, monitor.registrations, outputs, monitor, mocks)
