"""Drive a policy pack over the Analyzer gRPC interface, the way the Pulumi engine does.

The engine starts a Python pack as ``python -u -m pulumi.policy <engineAddress> .`` with the
pack directory as working directory and ``PULUMI_CONFIG``/``PULUMI_PROJECT``/``PULUMI_STACK``/
``PULUMI_DRY_RUN`` in the environment, reads the port from the first line of stdout, then calls
(pulumi/pulumi, sdk/go/common/resource/plugin/analyzer_plugin.go and resource/deploy/step_generator.go):

- ``Handshake`` (Python packs answer UNIMPLEMENTED: fall through), ``ConfigureStack``;
- ``GetAnalyzerInfo`` and ``GetPluginInfo``; the policy config is reconciled (schema defaults,
  the pack's initial config, the ``--policy-pack-config`` file, ``all`` first), validated against
  each policy's schema, and sent with ``Configure`` -- always, even without a config file;
- ``Remediate`` then ``Analyze`` for every registered resource, with its inputs (this module calls
  ``Remediate`` only when a policy is at the ``remediate`` level: otherwise the pack answers
  nothing);
- ``AnalyzeStack`` once, with every resource's outputs, parent, dependencies and property
  dependencies.

``pulumi.policy`` parses the engine address and never dials it (no engine in its runtime
settings, so ``pulumi.log`` writes to stderr); :class:`EngineServer` still serves a minimal Engine
service on 127.0.0.1 so a pack that logs through the engine is heard, not broken.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2, engine_pb2_grpc

from tools.mocks import to_struct

LEVELS = ("advisory", "mandatory", "remediate", "disabled")
_LEVEL_FROM_PROTO = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
_LEVEL_TO_PROTO = {v: k for k, v in _LEVEL_FROM_PROTO.items()}
_SEVERITY = {
    analyzer_pb2.POLICY_SEVERITY_UNSPECIFIED: "",
    analyzer_pb2.POLICY_SEVERITY_LOW: "low",
    analyzer_pb2.POLICY_SEVERITY_MEDIUM: "medium",
    analyzer_pb2.POLICY_SEVERITY_HIGH: "high",
    analyzer_pb2.POLICY_SEVERITY_CRITICAL: "critical",
}
_MAX_MESSAGE = 400 * 1024 * 1024  # what pulumi_policy accepts; a 5,000-resource stack is ~10 MB
_START_TIMEOUT_S = 60.0
# pulumi_policy serves with 4 worker threads; more in flight would only queue.
_ANALYZE_CONCURRENCY = 4


class PolicyPackError(Exception):
    """A pack that cannot start, a config file the engine would refuse, a failed RPC."""


# --- the resources handed to the pack -------------------------------------------------------


@dataclass
class AnalyzedResource:
    """One resource as the engine hands it to analyzers."""

    urn: str
    type: str
    name: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    parent: str = ""
    dependencies: Sequence[str] = ()
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)
    protect: bool = False
    provider_urn: str = ""


def _struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    # SkipInternalKeys: the engine drops "__"-prefixed keys (e.g. __defaults) before analyzers see them.
    return to_struct({k: v for k, v in props.items() if not str(k).startswith("__")})


def _options(r: AnalyzedResource) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(protect=r.protect, parent=r.parent)


# --- the policy pack config file --------------------------------------------------------------


@dataclass
class PolicyConfig:
    level: str | None
    properties: dict[str, Any]


def load_policy_config(path: Path) -> dict[str, PolicyConfig]:
    """Parse a ``--policy-pack-config`` file as the CLI does: ``{"all": level, "<policy>": level |
    {"enforcementLevel": level, <prop>: value}}``. Raises PolicyPackError naming the bad key."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyPackError(f"policy pack config {path}: {exc.strerror or exc}") from None
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise PolicyPackError(f"policy pack config {path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise PolicyPackError(f"policy pack config {path}: must be a JSON object")
    result: dict[str, PolicyConfig] = {}
    for key, value in doc.items():
        if isinstance(value, str):
            if value not in LEVELS:
                raise PolicyPackError(
                    f"policy pack config {path}: parsing enforcement level for {key!r}: "
                    f"{value!r} is not a valid enforcement level ({', '.join(LEVELS)})"
                )
            result[key] = PolicyConfig(value, {})
        elif isinstance(value, dict):
            props = dict(value)
            level = props.pop("enforcementLevel", None)
            if level is not None and level not in LEVELS:
                raise PolicyPackError(
                    f"policy pack config {path}: parsing enforcement level for {key!r}: "
                    f"{level!r} is not a valid enforcement level ({', '.join(LEVELS)})"
                )
            if level is None and not props:
                continue
            result[key] = PolicyConfig(level, props)
        else:
            raise PolicyPackError(
                f"policy pack config {path}: parsing {key!r}: {value!r} is not a valid value; "
                "must be a string or object"
            )
    return result


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _schema_errors(schema: Mapping[str, Any], value: Any, where: str) -> list[str]:
    """The subset of JSON Schema policy config schemas use (type, enum, bounds, items,
    properties, required); unknown keywords are ignored, as gojsonschema ignores annotations."""
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        ok = False
        for n in names:
            py = _JSON_TYPES.get(n, (object,))
            if isinstance(value, bool) and n not in ("boolean",):
                continue
            if (n == "integer" and isinstance(value, float) and value.is_integer()) or isinstance(value, py):
                ok = True
        if not ok:
            return [f"{where}: Invalid type. Expected: {' or '.join(names)}, given: {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: must be one of {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: must be greater than or equal to {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: must be less than or equal to {schema['maximum']}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors += _schema_errors(schema["items"], item, f"{where}.{i}")
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value and isinstance(sub, dict):
                errors += _schema_errors(sub, value[key], f"{where}.{key}" if where else key)
        for key in schema.get("required") or []:
            if key not in value:
                errors.append(f"{where or '(root)'}: {key} is required")
    return errors


# --- the minimal engine ---------------------------------------------------------------------


class _Engine(engine_pb2_grpc.EngineServicer):
    def __init__(self) -> None:
        self.logs: list[tuple[str, str]] = []
        self.root = ""

    def Log(self, request, context):  # noqa: N802 - gRPC method name
        level = engine_pb2.LogSeverity.Name(request.severity).lower()
        self.logs.append((level, request.message))
        return empty_pb2.Empty()

    def GetRootResource(self, request, context):  # noqa: N802
        return engine_pb2.GetRootResourceResponse(urn=self.root)

    def SetRootResource(self, request, context):  # noqa: N802
        self.root = request.urn
        return engine_pb2.SetRootResourceResponse()


class EngineServer:
    """A minimal Engine service on 127.0.0.1 that packs may call back (logging)."""

    def __init__(self) -> None:
        self.servicer = _Engine()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        engine_pb2_grpc.add_EngineServicer_to_server(self.servicer, self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.address = f"127.0.0.1:{port}"

    @property
    def logs(self) -> list[tuple[str, str]]:
        return self.servicer.logs

    def stop(self) -> None:
        self._server.stop(0)


# --- one policy pack --------------------------------------------------------------------------


_UNDECIDED = re.compile(r"^undecided \[(?P<prop>[^\]]*)\]: ")
# What pulumi_policy puts before the message of a policy that raised UnknownValueError.
CANNOT_RUN = re.compile(r"^can't run policy '[^']*' from policy pack '[^']*' during preview: ")


@dataclass
class Diagnostic:
    policy_pack: str
    policy_name: str
    enforcement_level: str
    severity: str
    message: str
    urn: str
    description: str = ""

    @property
    def reason(self) -> str:
        """The policy's own words: without the description pulumi_policy puts before a reported
        violation, or the SDK's "can't run policy" preamble."""
        text = self.message
        if self.description and text.startswith(self.description + "\n"):
            text = text[len(self.description) + 1 :]
        return CANNOT_RUN.sub("", text, count=1)

    @property
    def undecided_property(self) -> str | None:
        """For a check that could not decide, the property that was unknown, else None. Packs
        say ``undecided [<property>]: ...`` at the policy's level; a policy that raised the
        SDK's UnknownValueError comes back as the SDK's advisory "can't run policy ... during
        preview: <message>" (the property "?" when its message names none)."""
        found = _UNDECIDED.match(self.reason)
        if found:
            return found["prop"]
        return "?" if CANNOT_RUN.match(self.message) else None

    def to_json(self) -> dict[str, Any]:
        return {
            "policyPack": self.policy_pack,
            "policyName": self.policy_name,
            "enforcementLevel": self.enforcement_level,
            "severity": self.severity,
            "message": self.message,
            "urn": self.urn,
        }


@dataclass
class PolicyInfo:
    name: str
    level: str
    kind: str  # "resource" | "stack" | ""
    severity: str
    config: dict[str, Any]


@dataclass
class StackContext:
    """What the engine tells analyzers about the stack."""

    project: str
    stack: str
    config: Mapping[str, str]
    secret_keys: Sequence[str] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    organization: str = "organization"  # what the CLI passes for self-managed backends


class PolicyPack:
    """A policy pack process and its Analyzer client. Use as a context manager, or call
    :meth:`start`, :meth:`configure`, :meth:`analyze`, :meth:`analyze_stack`, :meth:`stop`."""

    def __init__(self, path: Path, context: StackContext, engine_address: str, python: str | None = None):
        self.path = path.resolve()
        self.context = context
        self.engine_address = engine_address
        self.python = python or sys.executable
        self.name = self.path.name
        self.version = ""
        self.policies: list[PolicyInfo] = []
        self.stderr: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None
        self._stub: analyzer_pb2_grpc.AnalyzerStub | None = None
        self._remediate = False
        self._info: analyzer_pb2.AnalyzerInfo | None = None

    # lifecycle -------------------------------------------------------------------------------

    def spawn(self, niceness: int = 0) -> None:
        """Start the pack process (returns at once; :meth:`connect` waits for its port).
        ``niceness`` > 0 lowers its CPU priority where the OS allows it. Default: 0, as started."""
        if not (self.path / "PulumiPolicy.yaml").is_file():
            raise PolicyPackError(f"policy pack {self.path}: no PulumiPolicy.yaml")
        env = dict(os.environ)
        env.update(
            PULUMI_CONFIG=json.dumps(dict(self.context.config)),
            PULUMI_PROJECT=self.context.project,
            PULUMI_STACK=self.context.stack,
            PULUMI_ORGANIZATION=self.context.organization,
            PULUMI_DRY_RUN="true",
        )
        self._proc = subprocess.Popen(
            [self.python, "-u", "-m", "pulumi.policy", self.engine_address, "."],
            cwd=self.path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if niceness and hasattr(os, "setpriority"):
            os.setpriority(os.PRIO_PROCESS, self._proc.pid, niceness)
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self.stderr.append(line.decode(errors="replace").rstrip("\n"))

    def _read_port(self) -> int:
        assert self._proc is not None and self._proc.stdout is not None
        box: list[bytes] = []
        reader = threading.Thread(target=lambda: box.append(self._proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(_START_TIMEOUT_S)
        line = box[0].strip() if box else b""
        if not line.isdigit():
            self._proc.poll()
            time.sleep(0.05)  # let the stderr drain catch the traceback
            tail = "\n".join(self.stderr[-15:]) or "(no output)"
            why = "exited" if self._proc.returncode is not None else "printed no port"
            raise PolicyPackError(f"policy pack {self.path} failed to start ({why}):\n{tail}")
        # Keep stdout drained so a chatty pack never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self._proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        return int(line)

    def connect(self, file_config: Mapping[str, PolicyConfig] | None = None) -> None:
        """Wait for the port, then handshake, describe and configure the pack as the engine does."""
        port = self._read_port()
        opts = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
        ]
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=opts)
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        try:
            self._stub.Handshake(
                analyzer_pb2.AnalyzerHandshakeRequest(
                    engine_address=self.engine_address,
                    root_directory=str(self.path),
                    program_directory=str(self.path),
                )
            )
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
                raise self._rpc_failed("Handshake", exc) from None
        ctx = self.context
        try:
            self._stub.ConfigureStack(
                analyzer_pb2.AnalyzerStackConfigureRequest(
                    stack=ctx.stack,
                    project=ctx.project,
                    organization=ctx.organization,
                    dry_run=True,
                    config=dict(ctx.config),
                    config_secret_keys=list(ctx.secret_keys),
                    tags=dict(ctx.tags),
                )
            )
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
                raise self._rpc_failed("ConfigureStack", exc) from None
        try:
            self._stub.GetPluginInfo(empty_pb2.Empty())
            info = self._stub.GetAnalyzerInfo(empty_pb2.Empty())
        except grpc.RpcError as exc:
            raise self._rpc_failed("GetAnalyzerInfo", exc) from None
        self.name = info.name or self.name
        self.version = _pack_version(self.path) or info.version
        self._info = info
        self.configure(dict(file_config or {}))

    def configure(self, file_config: Mapping[str, PolicyConfig]) -> None:
        """Reconcile the config like the engine (ReconcilePolicyPackConfig), validate, Configure.
        May be called again (a benchmark enabling one policy at a time)."""
        info = self._info
        assert info is not None, "connect() first"
        result: dict[str, PolicyConfig] = {}
        schemas: dict[str, dict[str, Any]] = {}
        kinds: dict[str, tuple[str, str]] = {}
        for p in info.policies:
            schema = (
                json_format.MessageToDict(p.configSchema.properties) if p.HasField("configSchema") else {}
            )
            required = list(p.configSchema.required) if p.HasField("configSchema") else []
            schemas[p.name] = {"type": "object", "properties": schema, "required": required}
            defaults = {k: v["default"] for k, v in schema.items() if isinstance(v, dict) and "default" in v}
            result[p.name] = PolicyConfig(_LEVEL_FROM_PROTO[p.enforcementLevel], defaults)
            kind = {analyzer_pb2.POLICY_TYPE_RESOURCE: "resource", analyzer_pb2.POLICY_TYPE_STACK: "stack"}
            kinds[p.name] = (kind.get(p.policy_type, ""), _SEVERITY.get(p.severity, ""))
        initial = {
            k: PolicyConfig(_LEVEL_FROM_PROTO[v.enforcementLevel], json_format.MessageToDict(v.properties))
            for k, v in info.initialConfig.items()
        }
        for layer in (initial, dict(file_config)):
            all_cfg = layer.get("all")
            if all_cfg is not None and all_cfg.level:
                for name, cfg in result.items():
                    result[name] = PolicyConfig(all_cfg.level, cfg.properties)
            for name, given in layer.items():
                current = result.get(name, PolicyConfig(None, {}))
                result[name] = PolicyConfig(
                    given.level or current.level, {**current.properties, **given.properties}
                )
        errors = []
        for name, schema in schemas.items():
            errors += [f"{name}: {e}" for e in _schema_errors(schema, result[name].properties, "")]
        if errors:
            raise PolicyPackError(f"policy pack {self.name}: validating policy config: " + "; ".join(errors))
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, cfg in result.items():
            if cfg.level is None:
                continue
            entry = request.policyConfig[name]
            entry.enforcementLevel = _LEVEL_TO_PROTO[cfg.level]
            entry.properties.update(cfg.properties)
        try:
            assert self._stub is not None
            self._stub.Configure(request)
        except grpc.RpcError as exc:
            raise self._rpc_failed("Configure", exc) from None
        self.policies = [
            PolicyInfo(
                p.name, result[p.name].level or "advisory", *kinds[p.name], dict(result[p.name].properties)
            )
            for p in info.policies
        ]
        self._remediate = any(p.level == "remediate" for p in self.policies)

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> PolicyPack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # analysis --------------------------------------------------------------------------------

    def _rpc_failed(self, what: str, exc: grpc.RpcError) -> PolicyPackError:
        details = exc.details() if hasattr(exc, "details") else str(exc)  # type: ignore[attr-defined]
        tail = "\n".join(self.stderr[-10:])
        return PolicyPackError(
            f"policy pack {self.name}: {what} failed: {details}" + (f"\n{tail}" if tail else "")
        )

    def _diagnostics(self, response: analyzer_pb2.AnalyzeResponse, urn: str | None) -> list[Diagnostic]:
        return [
            Diagnostic(
                policy_pack=d.policyPackName or self.name,
                policy_name=d.policyName,
                enforcement_level=_LEVEL_FROM_PROTO.get(d.enforcementLevel, "advisory"),
                severity=_SEVERITY.get(d.severity, ""),
                message=d.message,
                # Per-resource diagnostics: the engine always uses the analyzed resource's URN.
                urn=urn if urn is not None else d.urn,
                description=d.description,
            )
            for d in response.diagnostics
        ]

    def analyze(
        self, resources: Iterable[AnalyzedResource], providers: Mapping[str, AnalyzedResource] | None = None
    ) -> list[Diagnostic]:
        """Remediate (when a policy is at that level) then Analyze each resource's inputs. Calls
        overlap (the engine also analyzes resources as their registrations arrive): building the
        next request here runs while the pack evaluates the previous one. Results keep resource order."""
        assert self._stub is not None, "connect() first"
        items = list(resources)
        with futures.ThreadPoolExecutor(max_workers=_ANALYZE_CONCURRENCY) as pool:
            results = list(pool.map(lambda r: self._analyze_one(r, providers or {}), items))
        return [d for found in results for d in found]

    def _analyze_one(
        self, r: AnalyzedResource, providers: Mapping[str, AnalyzedResource]
    ) -> list[Diagnostic]:
        assert self._stub is not None
        found: list[Diagnostic] = []
        request = analyzer_pb2.AnalyzeRequest(
            type=r.type, name=r.name, urn=r.urn, properties=_struct(r.inputs), options=_options(r)
        )
        prov = providers.get(r.provider_urn)
        if prov is not None:
            request.provider.CopyFrom(
                analyzer_pb2.AnalyzerProviderResource(
                    type=prov.type, name=prov.name, urn=prov.urn, properties=_struct(prov.inputs)
                )
            )
        try:
            if self._remediate:
                for rem in self._stub.Remediate(request).remediations:
                    if rem.diagnostic:
                        found.append(
                            Diagnostic(
                                rem.policyPackName, rem.policyName, "advisory", "", rem.diagnostic, r.urn
                            )
                        )
                    elif rem.HasField("properties"):
                        request.properties.CopyFrom(rem.properties)
            response = self._stub.Analyze(request)
        except grpc.RpcError as exc:
            raise self._rpc_failed(f"Analyze({r.urn})", exc) from None
        return found + self._diagnostics(response, r.urn)

    def analyze_stack(
        self, resources: Sequence[AnalyzedResource], providers: Mapping[str, AnalyzedResource] | None = None
    ) -> list[Diagnostic]:
        """AnalyzeStack over every resource's outputs, with parents and dependencies."""
        return self.analyze_stack_request(stack_request(resources, providers))

    def analyze_stack_request(self, request: analyzer_pb2.AnalyzeStackRequest) -> list[Diagnostic]:
        """AnalyzeStack with a request built by :func:`stack_request` (shared with the cost model)."""
        assert self._stub is not None, "connect() first"
        try:
            response = self._stub.AnalyzeStack(request)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
                return []
            raise self._rpc_failed("AnalyzeStack", exc) from None
        return self._diagnostics(response, None)


class IncrementalAnalysis:
    """Policy packs analyzing resources while the program still registers them, as the engine
    does: each pack connects in the background (its process was started before the program, so
    its imports overlap the program's) and each resource's ``Analyze`` goes out as soon as the
    resource is registered. :meth:`finish` waits for them and runs ``AnalyzeStack``: the same
    calls, and the same diagnostics in the same order, as :meth:`PolicyPack.analyze` then
    :meth:`PolicyPack.analyze_stack_request` for each pack after the program. When the program
    fails, what is still queued fails fast once the packs are stopped; nothing waits for it.

    A pack may come with a helper: a second process of the same pack, configured alike. Once it
    is connected, the ``Analyze`` calls alternate between the two; a resource policy sees one
    resource at a time whichever process runs it, so the diagnostics are the same. The pack's
    info, ``AnalyzeStack`` and the cost settings stay the first process's. Most resources
    register in the program's last half second, faster than one process analyzes them; on two
    cores the helper halves what is still queued when the program ends. A helper that fails to
    start is left out."""

    def __init__(self, packs: Sequence[tuple[PolicyPack, Mapping[str, PolicyConfig], PolicyPack | None]]):
        self._providers: dict[str, AnalyzedResource] = {}
        self._lanes = [_Lane(pack, config, helper) for pack, config, helper in packs]

    def add(self, r: AnalyzedResource) -> None:
        """One resource, just registered (called from the program's event loop: returns at once)."""
        if r.type.startswith("pulumi:providers:"):
            self._providers[r.urn] = r
        for lane in self._lanes:
            lane.submit(r, self._providers)

    def connected(self) -> Sequence[PolicyPack]:
        """The packs, once each has connected and been configured (what :attr:`PolicyPack.policies`
        holds is only then known). Raises the first pack's PolicyPackError."""
        for lane in self._lanes:
            lane.connected.result()
        return [lane.pack for lane in self._lanes]

    def finish(
        self, resources: Sequence[AnalyzedResource], stack: analyzer_pb2.AnalyzeStackRequest
    ) -> list[Diagnostic]:
        """Every pack's diagnostics: ``Analyze``'s in the order of ``resources``, then
        ``AnalyzeStack``'s. Raises the first PolicyPackError, as the calls in order would."""
        found: list[Diagnostic] = []
        for lane in self._lanes:
            found += lane.collect(resources, self._providers)
            found += lane.pack.analyze_stack_request(stack)
        return found


class _Lane:
    """One pack of an :class:`IncrementalAnalysis`: its connection (and its helper's), then its
    ``Analyze`` calls."""

    def __init__(self, pack: PolicyPack, config: Mapping[str, PolicyConfig], helper: PolicyPack | None):
        self.pack = pack
        self._connector = futures.ThreadPoolExecutor(max_workers=2)
        self.connected = self._connector.submit(pack.connect, config)
        self._helper = helper
        self._helper_connected = None if helper is None else self._connector.submit(helper.connect, config)
        self._turn = itertools.count()
        self._pool = futures.ThreadPoolExecutor(max_workers=_ANALYZE_CONCURRENCY)
        self._pending: dict[str, list[futures.Future[list[Diagnostic]]]] = {}

    def submit(self, r: AnalyzedResource, providers: Mapping[str, AnalyzedResource]) -> None:
        self._pending.setdefault(r.urn, []).append(self._pool.submit(self._analyze, r, providers))

    def _analyze(self, r: AnalyzedResource, providers: Mapping[str, AnalyzedResource]) -> list[Diagnostic]:
        self.connected.result()
        helping = self._helper_connected
        if helping is not None and helping.done() and helping.exception() is None and next(self._turn) % 2:
            assert self._helper is not None
            return self._helper._analyze_one(r, providers)
        return self.pack._analyze_one(r, providers)

    def collect(
        self, resources: Sequence[AnalyzedResource], providers: Mapping[str, AnalyzedResource]
    ) -> list[Diagnostic]:
        self.connected.result()
        found: list[Diagnostic] = []
        for r in resources:
            queued = self._pending.get(r.urn)
            # A resource the program never reported (none should be) is analyzed now.
            found += queued.pop(0).result() if queued else self._analyze(r, providers)
        return found


def stack_request(
    resources: Sequence[AnalyzedResource], providers: Mapping[str, AnalyzedResource] | None = None
) -> analyzer_pb2.AnalyzeStackRequest:
    """The AnalyzeStack request: every resource's outputs, with parents and dependencies."""
    request = analyzer_pb2.AnalyzeStackRequest()
    for r in resources:
        item = request.resources.add(
            type=r.type,
            name=r.name,
            urn=r.urn,
            parent=r.parent,
            dependencies=list(r.dependencies),
            properties=_struct(r.outputs),
            options=_options(r),
        )
        for key, urns in r.property_dependencies.items():
            if urns:
                item.propertyDependencies[key].urns.extend(urns)
        prov = (providers or {}).get(r.provider_urn)
        if prov is not None:
            item.provider.CopyFrom(
                analyzer_pb2.AnalyzerProviderResource(
                    type=prov.type, name=prov.name, urn=prov.urn, properties=_struct(prov.inputs)
                )
            )
    return request


def stack_view(request: analyzer_pb2.AnalyzeStackRequest) -> list[dict[str, Any]]:
    """The resources of an AnalyzeStack request as JSON, exactly as the pack receives them (its
    SDK reads each ``properties`` with ``MessageToDict``): unknowns stay the unknown sentinel,
    secrets keep their wrapper, numbers are doubles."""
    return [
        {
            "type": r.type,
            "name": r.name,
            "urn": r.urn,
            "parent": r.parent,
            "dependencies": list(r.dependencies),
            "propertyDependencies": {k: list(v.urns) for k, v in r.propertyDependencies.items()},
            "protect": r.options.protect,
            "properties": json_format.MessageToDict(r.properties),
        }
        for r in request.resources
    ]


def _pack_version(path: Path) -> str:
    """The engine prefers PulumiPolicy.yaml's version over the pack's own."""
    try:
        import yaml

        doc = yaml.safe_load((path / "PulumiPolicy.yaml").read_text()) or {}
    except Exception:
        return ""
    return str(doc.get("version") or "") if isinstance(doc, dict) else ""
