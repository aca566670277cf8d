"""Shared fixtures: fresh recording mocks per test, and the program run per stack."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest

from tools.mocks import ProgramRun, RecordingMocks, RecordingMonitor, install_mocks, run_program

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def mocks() -> Iterator[RecordingMonitor]:
    """Fresh mocks for a test that builds components itself; returns the recording monitor.
    Call ``tools.mocks.settle()`` before reading ``registrations``."""
    monitor = install_mocks(RecordingMocks(), project="wwhd", stack="test")
    pulumi.runtime.set_all_config({}, [])
    yield monitor


@pytest.fixture
def new_stack() -> RecordingMonitor:
    """Mocks answering as the engine does for a stack that does not exist yet: computed
    outputs unknown, invokes answered."""
    monitor = install_mocks(RecordingMocks(new_stack=True), project="wwhd", stack="test")
    pulumi.runtime.set_all_config({}, [])
    return monitor


RunStack = Callable[..., ProgramRun]


@pytest.fixture
def run_stack() -> RunStack:
    """Run the real program for a stack file, with sections of its config replaced:
    ``run_stack("dev", service={"cpu": 1024, ...})`` (a section given replaces the file's
    section entirely; use ``merge=True`` to merge keys into it instead)."""

    def run(stack: str, merge: bool = False, **sections: Any) -> ProgramRun:
        overrides = {}
        if sections:
            from tools.mocks import load_stack_config

            current = load_stack_config(ROOT, stack).config
            for key, value in sections.items():
                full = f"wwhd:{key}"
                if merge and isinstance(value, dict) and full in current:
                    value = json.loads(current[full]) | value
                overrides[full] = value if isinstance(value, str) else json.dumps(value)
        return run_program(ROOT, stack, overrides)

    return run
