"""Offline preview: see and check a Pulumi Python stack without the Pulumi CLI or cloud credentials.

``python -m tools.preview --stack NAME [--cwd DIR] [--policy-pack DIR]... [--policy-pack-config FILE]...
[--new-stack] [--json] [--wide] [--by-type] [--timeout SECONDS] [--timings] [--cost-advice]
[--cost-baseline FILE]`` (``./preview NAME`` at the
repository root adds the pack and the stack's policy config).

1. Reads ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml`` from ``--cwd`` into the SDK's config
   (``secure:`` values become placeholders marked secret) and runs the program in-process under
   the recording mocks of ``tools.mocks``, as an update of an existing stack or, with
   ``--new-stack``, as a stack that does not exist yet (outputs computed at creation unknown).
   An invoke the mocks cannot answer, or a program still running after ``--timeout``, is an
   error naming it (``program.py``).
2. Starts each policy pack exactly as the engine does (``python -u -m pulumi.policy <engine> .``
   in the pack directory) and drives it over the Analyzer gRPC interface: ``Analyze`` per resource
   with its checked inputs, ``AnalyzeStack`` with every resource's outputs, parents and
   dependencies (``analyzer.py``), each resource's ``Analyze`` as soon as it is registered. With a
   second core, a helper process of each pack shares the ``Analyze`` calls. No policy code runs
   in this process. Checks that could not
   decide (``undecided [<property>]: ...``, or the SDK's "can't run policy ... during preview")
   are counted apart from violations.
3. Prices the stack with the pack's own cost model when it ships one, over the resources of the
   same AnalyzeStack request, with its levers (``--cost-advice``, or a total above its ceiling)
   and the change from an earlier ``--json`` document (``--cost-baseline``) (``cost.py``).
4. Prints the resource tree, outputs, counts, violations and undecided checks by level, stand-in
   values and the cost summary in at most 100 columns (``render.py``), or one JSON document with
   ``--json``. The same inputs give the same bytes.

Exit codes: 0 no mandatory violation, 1 a mandatory violation or a mandatory check that could not
decide, 2 the program, its configuration or a policy pack failed (the message on stderr names the
problem).
"""

from .cli import main

__all__ = ["main"]
