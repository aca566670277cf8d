"""Offline preview: see and check a Pulumi Python stack without the Pulumi CLI or cloud credentials.

``python -m tools.preview --stack NAME [--cwd DIR] [--policy-pack DIR]... [--policy-pack-config FILE]... [--json]``

1. Reads ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml`` from ``--cwd`` into the SDK's config
   (``secure:`` values become placeholders marked secret) and runs the program in-process under
   the recording mocks of ``tools.mocks``; an invoke the mocks cannot answer is an error naming it.
2. Starts each policy pack exactly as the engine does (``python -u -m pulumi.policy <engine> .``
   in the pack directory) and drives it over the Analyzer gRPC interface: ``Analyze`` per resource
   with its inputs, ``AnalyzeStack`` with every resource's outputs, parents and dependencies
   (``analyzer.py``). No policy code runs in this process.
3. Prices the stack with the pack's own cost model when it ships one (``cost.py``).
4. Prints the resource tree, outputs, counts, violations by level and the cost summary
   (``render.py``), or one JSON document with ``--json``.

Exit codes: 0 no mandatory violation, 1 at least one, 2 the program, its configuration or a
policy pack failed (the message on stderr names the problem).
"""

from .cli import main

__all__ = ["main"]
