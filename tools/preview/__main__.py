"""``python -m tools.preview``: see the package docstring."""

import os
import sys

from .cli import main

code = main()
sys.stdout.flush()
sys.stderr.flush()
# Every pack process is stopped and all output is written; skip the interpreter's teardown, which
# spends ~0.7 s freeing pulumi_aws's thousands of classes and shutting grpc's core down.
os._exit(code)
