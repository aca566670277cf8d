"""The envelope of every IAM, key, bucket and trust policy document, shared by the program and
the bootstrap.

A document is data: a list of statements under the policy language's one current version.
Writing the envelope once keeps the version in one place and leaves each caller with only its
statements. The bootstrap imports this module from the repository root, as it imports
``config_errors.py``; it therefore imports nothing of the program.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

POLICY_VERSION = "2012-10-17"
"""The IAM policy language version. Without it IAM reads a document as the 2008 version, in
which policy variables (``${aws:username}``) are plain text."""


def policy_document(*statements: Mapping[str, Any]) -> dict[str, Any]:
    """``{"Version": ..., "Statement": [...]}`` holding ``statements`` in order."""
    return {"Version": POLICY_VERSION, "Statement": list(statements)}
