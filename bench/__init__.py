"""Benchmarks on the local cloud: API requests and wall time per scenario (not tests)."""
