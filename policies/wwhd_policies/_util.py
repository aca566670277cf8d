"""Plumbing shared by every policy: plain values, unknowns, findings, the stack index.

pulumi_policy hands policies proxies that raise on unknown values the moment they are read.
The policies here first copy the properties into plain dicts and lists (keeping the unknown
sentinels as strings) so that one rule can tell "unknown" from "missing": an unknown KMS key
is a key that will exist, an unknown CPU size cannot be judged.

This module imports nothing from the SDK (its types only for the type checker): the cost model
builds on it, and the offline preview imports the cost model in a process of its own, where
loading pulumi_policy (with pulumi and grpc) would cost more than the estimate.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs

# The engine's sentinels for values unknown during preview, as pulumi_policy.proxy defines them
# (UNKNOWN_*_VALUE; a test holds them equal). They are protocol constants, like the secret
# signature below.
UNKNOWNS = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)
_SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

# What makes most preview-time unknowns decidable (style guide: documents and container
# definitions built from values known before creation).
KNOWN_BEFORE_CREATION = (
    "build it from values known before creation (names you set, account and region from invokes)"
)
# ... and what makes an unknown setting (a flag, a size) decidable.
LITERAL = "set it from a value known before creation (a literal or the stack configuration)"


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in UNKNOWNS


def plain(value: Any) -> Any:
    """Copy a (possibly proxied, possibly secret-wrapped) property tree into plain dicts/lists.

    Unknown sentinels stay as they are; reading them never raises here. Exact type checks come
    first: the SDK's trees are dicts, lists and scalars, and the abstract-base-class checks of
    the general case cost several times more per value."""
    t = type(value)
    if t in _SCALARS:
        return value
    if t is dict:
        if value.get(_SECRET_SIG_KEY) == _SECRET_SIG and "value" in value:
            return plain(value["value"])
        return {k if type(k) is str else str(k): plain(v) for k, v in value.items()}
    if t is list:
        return [plain(v) for v in value]
    if t.__module__ == _PROXY_MODULE and t.__name__ in _PROXY_NAMES:
        # The SDK's proxies answer "__target" with the raw container, without the unknown check
        # (reading their items would raise on an unknown). Known by name: no proxy exists unless
        # the SDK made it.
        return plain(value["__target"])
    if isinstance(value, Mapping):
        if value.get(_SECRET_SIG_KEY) == _SECRET_SIG and "value" in value:
            return plain(value["value"])
        return {str(k): plain(value[k]) for k in value}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    if type(value).__name__ == "Secret" and hasattr(value, "value"):
        return plain(getattr(value, "value"))  # noqa: B009 - pulumi_policy's Secret wrapper
    return value


_PROXY_MODULE, _PROXY_NAMES = "pulumi_policy.proxy", ("_DictProxy", "_ListProxy")
_SCALARS = (str, int, float, bool, type(None))


class Res:
    """A resource as the policies see it: plain camelCase props and the graph around it.

    Built from the SDK's resources, the plain copy of the props and the urn lists of the
    dependencies are made on first read: a stack policy sees every resource of the stack but
    reads the properties of the few types it checks, and copying 5,000 property trees per stack
    policy was most of its cost."""

    __slots__ = ("_deps", "_prop_deps", "_props", "_source", "name", "parent", "protect", "type", "urn")

    def __init__(
        self,
        type: str,
        name: str,
        urn: str,
        props: dict[str, Any] | None = None,
        parent: str | None = None,
        protect: bool = False,
        dependencies: list[str] | None = None,
        property_dependencies: dict[str, list[str]] | None = None,
        source: PolicyResource | None = None,
    ) -> None:
        self.type = type
        self.name = name
        self.urn = urn
        self.parent = parent
        self.protect = protect
        # With a source, these stay None until first read (the properties below).
        lazy = source is not None
        self._props = None if lazy else (props or {})
        self._deps = None if lazy else (dependencies or [])
        self._prop_deps = None if lazy else (property_dependencies or {})
        self._source = source

    @property
    def props(self) -> dict[str, Any]:
        if self._props is None:
            assert self._source is not None
            self._props = plain(self._source.props)
        return self._props

    @property
    def dependencies(self) -> list[str]:
        if self._deps is None:
            assert self._source is not None
            self._deps = [d.urn for d in self._source.dependencies]
        return self._deps

    @property
    def property_dependencies(self) -> dict[str, list[str]]:
        if self._prop_deps is None:
            assert self._source is not None
            self._prop_deps = {k: [d.urn for d in v] for k, v in self._source.property_dependencies.items()}
        return self._prop_deps

    def get(self, key: str, default: Any = None) -> Any:
        return self.props.get(key, default)

    def label(self) -> str:
        return f"{self.type.rsplit(':', 1)[-1]} '{self.name}'"

    def __repr__(self) -> str:
        return f"Res({self.type}, {self.name!r})"

    @staticmethod
    def from_args(args: ResourceValidationArgs) -> Res:
        return Res._of(args, getattr(args.opts, "parent", None), props=plain(args.props))

    @staticmethod
    def from_policy_resource(r: PolicyResource) -> Res:
        parent = r.parent.urn if r.parent is not None else getattr(r.opts, "parent", None)
        return Res._of(r, parent, source=r)

    @staticmethod
    def _of(sdk: ResourceValidationArgs | PolicyResource, parent: str | None, **kwargs: Any) -> Res:
        """From what the SDK's two resource types share (type, name, urn, options)."""
        protect = bool(getattr(sdk.opts, "protect", False))
        return Res(sdk.resource_type, sdk.name, sdk.urn, parent=parent, protect=protect, **kwargs)


IDENTITY_KEYS = ("id", "arn", "name", "bucket", "keyId", "identifier", "family", "vpcId")


class Stack:
    """Every resource of a stack, with look-ups by type and by reference.

    The indexes (by type, parent, urn and identity value) are built once, so a look-up costs
    what it returns, not a scan of the stack: a stack policy stays linear in the stack size.
    Results keep the stack's order, as a scan would give them."""

    def __init__(self, resources: Iterable[Res]) -> None:
        self.resources = list(resources)
        self.by_urn = {r.urn: r for r in self.resources}
        self._pos: dict[int, int] = {}
        self._by_type: dict[str, list[Res]] = {}
        self._by_parent: dict[str, list[Res]] = {}
        for i, r in enumerate(self.resources):
            self._pos[id(r)] = i
            self._by_type.setdefault(r.type, []).append(r)
            if isinstance(r.parent, str):
                self._by_parent.setdefault(r.parent, []).append(r)
        # type -> its identity index (see _identity_index); built on the first resolve() to it.
        self._identities: dict[str, tuple[dict[str, list[Res]], dict[str, list[Res]]]] = {}
        self._memo: dict[Any, Any] = {}

    @staticmethod
    def from_args(args: StackValidationArgs) -> Stack:
        return Stack(Res.from_policy_resource(r) for r in args.resources)

    def ordered(self, resources: Iterable[Res]) -> list[Res]:
        """These resources (of this stack) once each, in stack order."""
        unique = {id(r): r for r in resources}
        return sorted(unique.values(), key=lambda r: self._pos.get(id(r), -1))

    def of_type(self, *types: str) -> list[Res]:
        lists = [self._by_type[t] for t in dict.fromkeys(types) if t in self._by_type]
        if not lists:
            return []
        if len(lists) == 1:
            return list(lists[0])
        return self.ordered(r for rs in lists for r in rs)

    def children(self, parent: Res) -> list[Res]:
        return self.children_of(parent.urn)

    def children_of(self, urn: str) -> list[Res]:
        return list(self._by_parent.get(urn, ()))

    def memo(self, key: Any, build: Callable[[], Any]) -> Any:
        """A value derived from this stack (an index a policy needs), built once per stack."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def resolve(self, src: Res, key: str, value: Any, types: Sequence[str]) -> list[Res] | None:
        """Which resources of `types` does `src.props[key]` (here: `value`) point at?

        A known value is matched against the identity outputs (id, arn, name, ...) of the
        candidates, ARNs also with a ":<revision>" suffix dropped. An unknown value (or one
        that matches nothing) falls back to the engine's property dependencies for `key`.
        Returns None when the reference cannot be resolved at all."""
        if not is_unknown(value) and value is not None:
            hits = self._identity_hits(str(value), types)
            if hits:
                return hits
        dep_urns = src.property_dependencies.get(key, [])
        hits = [self.by_urn[u] for u in dep_urns if u in self.by_urn and self.by_urn[u].type in types]
        return hits or None

    def _identity_hits(self, text: str, types: Sequence[str]) -> list[Res]:
        """The resources of `types` whose identity matches `text` (`_identity_match`), in order."""
        base = text.rsplit(":", 1)[0]
        candidates: list[Res] = []
        for t in dict.fromkeys(types):
            exact, revisions = self._identity_index(t)
            candidates += exact.get(text, ())
            candidates += revisions.get(base, ())
        if not candidates:
            return []
        # The index narrows the candidates; _identity_match gives the verdict (revision rules).
        return [c for c in self.ordered(candidates) if _identity_match(c, text)]

    def _identity_index(self, typ: str) -> tuple[dict[str, list[Res]], dict[str, list[Res]]]:
        """For one type: identity value -> resources, and task definition ARN without its
        revision -> resources. Built on the first look-up of that type only."""
        if typ not in self._identities:
            exact: dict[str, list[Res]] = {}
            revisions: dict[str, list[Res]] = {}
            for r in self._by_type.get(typ, ()):
                values = {r.urn}
                for k in IDENTITY_KEYS:
                    v = r.props.get(k)
                    if isinstance(v, str) and not is_unknown(v) and v:
                        values.add(v)
                        if k == "arn" and "task-definition/" in v:
                            revisions.setdefault(v.rsplit(":", 1)[0], []).append(r)
                for v in values:
                    exact.setdefault(v, []).append(r)
            self._identities[typ] = (exact, revisions)
        return self._identities[typ]


def _identity_match(res: Res, text: str) -> bool:
    for key in IDENTITY_KEYS:
        v = res.props.get(key)
        if isinstance(v, str) and not is_unknown(v) and v:
            if v == text:
                return True
            if key == "arn" and text.startswith(v.rsplit(":", 1)[0] + ":") and "task-definition/" in v:
                # Task definition ARNs carry a revision: family:1 vs family:2.
                return text.rsplit(":", 1)[0] == v.rsplit(":", 1)[0]
    return res.urn == text


def stack_name() -> str:
    """The stack name, from the engine's environment, falling back to the runtime settings."""
    env = os.environ.get("PULUMI_STACK")
    if env:
        return env
    try:
        import pulumi

        return pulumi.get_stack()
    except Exception:
        return ""


def stack_config(key: str) -> Any:
    """A value of the stack's configuration (`aws:region`, `aws:allowedAccountIds`), which the engine
    passes the pack as JSON in PULUMI_CONFIG; None when unset. Values are strings; lists and
    objects arrive as JSON text and are parsed."""
    try:
        cfg = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
    except ValueError:
        return None
    value = cfg.get(key) if isinstance(cfg, dict) else None
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def as_int(value: Any) -> int | None:
    """Integers arrive as floats or strings ("512"); None when absent or not a number."""
    if value is None or is_unknown(value) or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def as_float(value: Any) -> float | None:
    if value is None or is_unknown(value) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def parse_json(value: Any) -> Any:
    """JSON documents (container definitions, IAM policies) arrive as strings or as data."""
    if isinstance(value, str):
        if is_unknown(value):
            return value
        return json.loads(value)
    return value


def any_of(verdicts: Iterable[bool | None]) -> bool | None:
    """True when one verdict is, else None when one cannot be known yet, else False."""
    listed = list(verdicts)
    if True in listed:
        return True
    return None if None in listed else False


def all_of(verdicts: Iterable[bool | None]) -> bool | None:
    """False when one verdict is, else None when one cannot be known yet, else True."""
    listed = list(verdicts)
    if False in listed:
        return False
    return None if None in listed else True


def contains_unknown(value: Any) -> bool:
    if is_unknown(value):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]
