"""Offline tooling: running the program under mocks, the offline preview, benchmarks."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository's root: the Pulumi project, whatever the working directory."""
BENCH_RESULTS = ROOT / "docs" / "bench.json"
"""The figures ``make bench`` (``tools.bench``) writes and the README's benchmark section
(``tools.readme``) renders."""
