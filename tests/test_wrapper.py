"""./preview, the wrapper CI and people run: it sets up the virtualenv as make does and passes the
preview's exit code through (0 pass, 1 mandatory violation, 2 error), which make cannot.

The tests point it at a stand-in virtualenv (VENV) whose python runs this interpreter and records
pip instead of installing anything, so the real environment is never touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WRAPPER = ROOT / "preview"
REQUIREMENTS = (
    "requirements.txt",
    "requirements-dev.txt",
    "policies/requirements.txt",
    "bootstrap/requirements.txt",
)


def _shim(pip_log: Path) -> str:
    """A venv's bin/python: `-m pip ...` is written to pip_log, anything else runs this interpreter."""
    return (
        "#!/bin/sh\n"
        f'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then shift 2; echo "pip $*" >> "{pip_log}"; exit 0; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )


def _write_executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A ready virtualenv: the stand-in python and an install stamp newer than every requirements file."""
    venv = tmp_path / "venv"
    _write_executable(venv / "bin" / "python", _shim(tmp_path / "pip.log"))
    stamp = venv / "bin" / ".installed"
    stamp.touch()
    newest = max((ROOT / f).stat().st_mtime for f in REQUIREMENTS)
    os.utime(stamp, (newest + 60, newest + 60))
    return venv


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WRAPPER), *args], cwd=ROOT, env=os.environ | env, capture_output=True, text=True, timeout=300
    )


def test_the_three_exit_codes_pass_through(venv: Path, tmp_path: Path) -> None:
    env = {"VENV": str(venv)}
    clean = run("dev", "--json", env=env)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.lstrip().startswith("{")  # stdout is the document alone
    violating = run("dev", "--cwd", str(ROOT / "tests" / "broken_program"), env=env)
    assert violating.returncode == 1, violating.stderr
    assert "Preview failed:" in violating.stdout
    broken = run("nosuch", env=env)
    assert broken.returncode == 2
    assert "Pulumi.nosuch.yaml: no such stack file" in broken.stderr
    assert not (tmp_path / "pip.log").exists()  # an up-to-date environment is left alone


def test_a_missing_virtualenv_is_created_and_installed_first(tmp_path: Path) -> None:
    venv, pip_log = tmp_path / "fresh", tmp_path / "pip.log"
    creator = tmp_path / "python3"  # stands for the interpreter that creates the virtualenv
    _write_executable(
        creator,
        f"#!{sys.executable}\n"
        "import sys, pathlib\n"
        "assert sys.argv[1:3] == ['-m', 'venv'], sys.argv\n"
        "python = pathlib.Path(sys.argv[3]) / 'bin' / 'python'\n"
        "python.parent.mkdir(parents=True)\n"
        f"python.write_text({_shim(pip_log)!r})\n"
        "python.chmod(0o755)\n",
    )
    result = run("nosuch", env={"VENV": str(venv), "PYTHON": str(creator)})
    assert result.returncode == 2, result.stderr  # then it ran the preview, which refused the stack
    assert (venv / "bin" / ".installed").exists()
    assert f"-r {ROOT / 'requirements-dev.txt'}" in pip_log.read_text()


def test_a_missing_stack_is_a_usage_error() -> None:
    result = subprocess.run([str(WRAPPER)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "usage: ./preview <stack>" in result.stderr


def test_no_make_target_wraps_the_preview() -> None:
    """make exits 2 whenever a recipe fails, so a make target around ./preview would turn a
    mandatory violation (1) into an error (2): the preview has no make target, and CI calls
    ./preview itself."""
    recipes = [line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("\t")]
    assert recipes and not [line for line in recipes if "preview" in line]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci and './preview "$stack"\n' in ci
    # Issue 19: CI decides on every stack as it is and as it would be before it exists.
    assert './preview "$stack" --new-stack' in ci
