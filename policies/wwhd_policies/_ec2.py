"""EC2 shapes the compute policies and the cost model share: the launch resources (instances, launch
templates and configurations, Auto Scaling groups), the EBS volumes they create, the public IPs they
ask for, and which volumes a backup snapshots."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from . import _aws as aws
from ._util import Res, Stack, any_of, as_list, is_unknown

INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
LAUNCH_CONFIGURATION = "aws:ec2/launchConfiguration:LaunchConfiguration"
AUTOSCALING_GROUP = "aws:autoscaling/group:Group"
EBS_VOLUME = "aws:ebs/volume:Volume"
DLM_POLICY = "aws:dlm/lifecyclePolicy:LifecyclePolicy"


@dataclass(frozen=True)
class Device:
    """One EBS volume a resource creates: its label in messages, the property that describes it,
    and its EBS settings (None: the AMI's root volume, which the resource does not describe)."""

    label: str
    prop: str
    ebs: Any


def block_devices(r: Res) -> list[Device] | None:
    """Every volume a resource creates: an aws.ebs.Volume's own props, an instance's or launch
    configuration's root and EBS block devices, a launch template's block device mappings. A
    launch resource that maps no volume gets the AMI's root volume. None when the list is unknown."""
    if r.type == EBS_VOLUME:
        return [Device(r.label(), "encrypted", r.props)]
    if r.type == LAUNCH_TEMPLATE:
        mappings = r.get("blockDeviceMappings")
        if is_unknown(mappings):
            return None
        found = [
            Device(
                f"{r.label()} {m.get('deviceName') or 'block device'}", "blockDeviceMappings", m.get("ebs")
            )
            for m in as_list(mappings)
            if isinstance(m, dict) and not m.get("noDevice") and not m.get("virtualName")
        ]
        return found or [Device(f"{r.label()} root volume (from the AMI)", "blockDeviceMappings", None)]
    root, extra = r.get("rootBlockDevice"), r.get("ebsBlockDevices")
    if is_unknown(root) or is_unknown(extra):
        return None
    found = [Device(f"{r.label()} root volume", "rootBlockDevice", root if isinstance(root, dict) else None)]
    found += [
        Device(f"{r.label()} {d.get('deviceName') or 'EBS block device'}", "ebsBlockDevices", d)
        for d in as_list(extra)
        if isinstance(d, dict)
    ]
    return found


def public_ip_requests(r: Res) -> list[Any]:
    """The associatePublicIpAddress values a launch resource sets (a launch template's are strings)."""
    if r.type == LAUNCH_TEMPLATE:
        nics = r.get("networkInterfaces")
        if is_unknown(nics):
            return [nics]
        return [n.get("associatePublicIpAddress") for n in as_list(nics) if isinstance(n, dict)]
    return [r.get("associatePublicIpAddress")]


def template_ref(r: Res) -> Any:
    spec = r.get("launchTemplate")
    return (spec.get("id") or spec.get("name")) if isinstance(spec, dict) else spec


# --- EBS backups ----------------------------------------------------------------------------

_EBS_WILDCARD = re.compile(r"arn:aws[\w-]*:ec2:[^:]*:[^:]*:volume/\*")
_TAG_PREFIX = "aws:ResourceTag/"


class BackupCoverage:
    """Which EBS volumes an AWS Backup selection or an enabled DLM policy snapshots.

    A selection picks resources by ARN (a known value, a wildcard, or while the ARN is unknown the
    engine's property dependencies of `resources`), or by tags (selectionTags, OR-ed); its
    `condition` and `notResources` then narrow what it picked. A DLM policy of resource type VOLUME
    picks volumes carrying one of its target tags. Shared by `ebs-volume-backed-up` and the cost
    model, which prices the snapshots of covered volumes."""

    def __init__(self, stack: Stack) -> None:
        self.selections = stack.of_type(aws.BACKUP_SELECTION)
        self.dlm = stack.of_type(DLM_POLICY)

    def selections_covering(self, volume: Res) -> list[Res]:
        """The AWS Backup selections known to pick `volume`."""
        return [sel for sel in self.selections if _selection_covers(sel, volume) is True]

    def covers(self, volume: Res) -> bool | None:
        """True when something snapshots `volume`, None when that cannot be known yet."""
        verdicts = [_selection_covers(sel, volume) for sel in self.selections]
        verdicts += [_dlm_covers(p, volume) for p in self.dlm]
        return any_of(verdicts)


def volume_tags(volume: Res) -> dict[str, Any] | None:
    """A volume's tags ({} when it has none); None while they are unknown."""
    tags = volume.get("tags")
    if is_unknown(tags):
        return None
    return tags if isinstance(tags, dict) else {}


def _selection_covers(sel: Res, volume: Res) -> bool | None:
    picked = _picked_by_resources(sel, volume)
    tags = volume_tags(volume)
    by_tags: bool | None = False
    for cond in as_list(sel.get("selectionTags")):
        if not isinstance(cond, dict):
            continue
        if tags is None or is_unknown(cond.get("value")):
            by_tags = None if by_tags is False else by_tags
        elif tags.get(str(cond.get("key"))) == cond.get("value"):
            by_tags = True
    if picked is True or by_tags is True:
        return _narrowed(sel, volume, tags)
    return None if None in (picked, by_tags) else False


def _picked_by_resources(sel: Res, volume: Res) -> bool | None:
    deps = sel.property_dependencies.get("resources", [])
    resources = sel.get("resources")
    refs = [resources] if is_unknown(resources) else as_list(resources)
    arn = volume.get("arn")
    known_arn = isinstance(arn, str) and not is_unknown(arn)
    verdict: bool | None = False
    for ref in refs:
        if is_unknown(ref):
            # An unknown entry is an ARN of something it depends on; with no dependency at all it
            # could be anything.
            if volume.urn in deps:
                return True
            if not deps:
                verdict = None
        elif isinstance(ref, str):
            if ref == "*" or _EBS_WILDCARD.fullmatch(ref):
                return True
            if known_arn and (ref == arn or ("*" in ref and fnmatch.fnmatchcase(arn, ref))):
                return True
            if ref == volume.get("id"):
                return True
    return verdict


def _narrowed(sel: Res, volume: Res, tags: dict[str, Any] | None) -> bool | None:
    """Whether `condition` and `notResources` keep a volume the selection picked."""
    arn = volume.get("arn")
    for ref in as_list(sel.get("notResources")):
        if is_unknown(ref) or is_unknown(arn):
            return None
        if isinstance(ref, str) and isinstance(arn, str) and fnmatch.fnmatchcase(arn, ref):
            return False
    for condition in as_list(sel.get("condition")):
        if not isinstance(condition, dict):
            continue
        for kind, negate, like in (
            ("stringEquals", False, False),
            ("stringNotEquals", True, False),
            ("stringLikes", False, True),
            ("stringNotLikes", True, True),
        ):
            for c in as_list(condition.get(kind)):
                if not isinstance(c, dict) or not str(c.get("key", "")).startswith(_TAG_PREFIX):
                    continue
                if tags is None or is_unknown(c.get("value")):
                    return None
                actual = tags.get(str(c["key"])[len(_TAG_PREFIX) :])
                want = str(c.get("value"))
                match = actual is not None and (
                    fnmatch.fnmatchcase(str(actual), want) if like else actual == want
                )
                if match == negate:
                    return False
    return True


def _dlm_covers(policy: Res, volume: Res) -> bool | None:
    state, details = policy.get("state"), policy.get("policyDetails")
    if is_unknown(state) or is_unknown(details):
        return None
    if state == "DISABLED" or not isinstance(details, dict):
        return False
    if "VOLUME" not in (as_list(details.get("resourceTypes")) or ["VOLUME"]):
        return False
    targets, tags = details.get("targetTags"), volume_tags(volume)
    if is_unknown(targets) or tags is None:
        return None
    return isinstance(targets, dict) and any(tags.get(k) == v for k, v in targets.items())
