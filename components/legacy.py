"""Where resources lived before the component split, so that existing stacks update in place.

Pulumi identifies a resource by its URN: its parent components' types, its own type and its
name. Moving a resource to another component, or renaming it, changes the URN, and the engine
would delete the old resource and create a new one -- for a file system or a log group, losing
its data. An alias tells the engine that the new URN is the resource it already knows under the
old one. Each component takes a ``Legacy`` describing its children's former parents and names;
it gives every child the matching aliases. A stack created after the split has no old URNs, and
an alias that matches nothing is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi


@dataclass(frozen=True)
class Legacy:
    """The former home of a component's children."""

    parents: tuple[str, ...] = ()
    """The old parent components, as ``<type>::<name>`` (``wwhd:index:WwhdService::wwhd``).
    Every child gets an alias under each of them; only the one it lived under matches."""
    names: Mapping[str, str] = field(default_factory=dict)
    """Children whose logical name changed: new name -> old name. Default: none."""

    def aliases(self, child: str) -> list[pulumi.Input[str | pulumi.Alias]]:
        """The aliases of the child resource named ``child``."""
        old_name = self.names.get(child)
        if old_name is None:
            return [pulumi.Alias(parent=parent_urn(parent)) for parent in self.parents]
        return [pulumi.Alias(name=old_name, parent=parent_urn(parent)) for parent in self.parents]

    def options(
        self,
        parent: pulumi.Resource,
        child: str,
        *,
        depends_on: pulumi.Input[Sequence[pulumi.Input[pulumi.Resource]]] | None = None,
        protect: bool | None = None,
        ignore_changes: list[str] | None = None,
        provider: pulumi.ProviderResource | None = None,
    ) -> pulumi.ResourceOptions:
        """The options of the child named ``child``: parented to ``parent`` with its aliases."""
        return pulumi.ResourceOptions(
            parent=parent,
            aliases=self.aliases(child) or None,
            depends_on=depends_on,
            protect=protect,
            ignore_changes=ignore_changes,
            provider=provider,
        )


NONE = Legacy()
"""No former home: a component created after the split."""


def parent_urn(parent: str) -> str:
    """The URN of a top-level component of this stack, from ``<type>::<name>``."""
    return f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{parent}"
