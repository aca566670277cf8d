"""The benchmark's bookkeeping around the CDK anchor: a machine without it still gets the
preview's figures, and the ratio pairs each preview run with the anchor run beside it. (What the
runs take is ``make bench``'s business, never a test's.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import bench


def _run(wall: float, synth: float = 1.0, lint: float = 1.0) -> tuple[float, dict]:
    doc = {"seconds": {"synth": synth, "lint": lint, "total": synth + lint}, "resources": 139,
           "nag": {"error": 28, "warning": 0}, "cfnLint": {"error": 0, "warning": 10, "informational": 0},
           "versions": {"node": "20.20.2", "aws-cdk-lib": "2.276.0", "cdk-nag": "2.38.2"}}  # fmt: skip
    return wall, doc


def test_without_node_the_anchor_is_skipped_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    assert bench.anchor_setup() == "node is not installed"


def test_without_its_packages_the_anchor_says_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bench.shutil, "which", lambda name: "node")
    monkeypatch.setattr(bench, "ANCHOR", tmp_path)
    assert bench.anchor_setup() == "its npm packages are not installed (make anchor)"
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / ".installed").touch()
    assert bench.anchor_setup() == "cfn-lint is not installed in its virtualenv (make anchor)"


def test_the_ratio_is_the_median_of_the_paired_runs_not_of_the_medians() -> None:
    # The machine slows down 3x after the second round: paired ratios stay 0.5, while the ratio of
    # the two medians would mix a slow preview with a fast anchor.
    previews = [1.0, 1.0, 3.0, 3.0, 3.0]
    anchors = [_run(2.0), _run(2.0), _run(6.0), _run(6.0), _run(6.0)]
    ok, figures = bench._anchor_figures(previews, anchors)
    assert figures["ratio"] == 0.5 and figures["ratioMin"] == 0.5 == figures["ratioMax"]
    assert figures["wall"] == 6.0 and (figures["min"], figures["max"]) == (2.0, 6.0)
    assert not ok and figures["ratioTarget"] == 0.45 and figures["issueSeconds"] == 2.2
    assert figures["resources"] == 139 and figures["cfnLint"]["warning"] == 10


def test_the_target_ratio_is_the_issues_one_second_over_the_anchors_two_point_two() -> None:
    ok, figures = bench._anchor_figures([0.9, 1.0, 1.1], [_run(2.2), _run(2.2), _run(2.2)])
    assert ok and figures["ratio"] == pytest.approx(1.0 / 2.2, abs=1e-3)
    assert pytest.approx(0.4545, abs=1e-4) == bench.ANCHOR_RATIO_TARGET
