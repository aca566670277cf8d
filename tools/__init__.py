"""Offline tooling: running the program under mocks, the offline preview, benchmarks."""
