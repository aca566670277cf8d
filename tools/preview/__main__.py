"""``python -m tools.preview``: see the package docstring."""

import gc
import os
import sys

# The preview is one short-lived process that imports thousands of SDK classes and builds a few
# hundred resources: the cyclic collector ran ~550 times for prod and took 6-14% of the run, to
# free ~1% of its memory (peak RSS 129 MB with it, 131 MB without). The process ends below.
gc.disable()

from .cli import main  # noqa: E402  (after the collector is off: the imports are most of the work)

code = main()
sys.stdout.flush()
sys.stderr.flush()
# Every pack process is stopped and all output is written; skip the interpreter's teardown, which
# spends ~0.7 s freeing pulumi_aws's thousands of classes and shutting grpc's core down.
os._exit(code)
