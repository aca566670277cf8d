"""Every component registers under its token, parents its children to itself and registers
exactly its typed attributes, once, by the same names (components/component.py)."""

from __future__ import annotations

import types
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pytest

from components.component import WwhdComponent
from tools.mocks import RecordingMonitor, resolve, settle

PROBE = "wwhd:index:Probe"


@dataclass(frozen=True)
class ProbeArgs:
    bucket: str


@dataclass(frozen=True)
class Coordinates:
    namespace: str
    arn: pulumi.Output[str]


class Probe(WwhdComponent[ProbeArgs], token=PROBE, internal=("reference",)):
    first: str
    """An output."""
    reference: object
    """A Python object handed to other components."""
    coordinates: Coordinates
    """A dataclass output holding an Output."""
    maybe: str | None
    """An output that is not there."""

    def _build(self, name: str, args: ProbeArgs) -> None:
        bucket = aws.s3.Bucket(f"{name}-bucket", bucket=args.bucket, opts=self._child)
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=self._child,
        )
        self.first, self.reference, self.maybe = "a", object(), None
        self.coordinates = Coordinates("WWHD/dev", bucket.arn)


def test_registers_under_its_token_with_its_children_parented_to_it(mocks: RecordingMonitor) -> None:
    Probe("probe", ProbeArgs("wwhd-probe"))
    settle()
    (component,) = mocks.of_type(PROBE)
    children = [r for r in mocks.registrations if r.parent == component.urn]
    assert component.urn.endswith(f"::{PROBE}::probe")
    assert sorted(r.name for r in children) == ["probe-bucket", "probe-versioning"]


def test_every_annotated_attribute_but_the_internal_ones_is_registered(
    mocks: RecordingMonitor,
) -> None:
    probe = Probe("probe", ProbeArgs("wwhd-probe"))
    settle()
    (component,) = mocks.of_type(PROBE)
    outputs = mocks.outputs[component.urn]
    bucket_arn = resolve(probe.coordinates.arn)
    assert bucket_arn
    assert outputs == {"first": "a", "coordinates": {"namespace": "WWHD/dev", "arn": bucket_arn}}


def test_a_component_names_its_token() -> None:
    with pytest.raises(TypeError, match="token"):
        types.new_class("Nameless", (WwhdComponent[ProbeArgs],))


def test_a_component_builds_something() -> None:
    class Empty(WwhdComponent[ProbeArgs], token="wwhd:index:Empty"):
        pass

    with pytest.raises(TypeError, match="_build"):
        Empty("empty", ProbeArgs("x"))  # pyright: ignore[reportAbstractUsage]
