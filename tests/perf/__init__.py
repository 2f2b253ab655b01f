"""Benchmarks, run by `make bench` (``python -m tests.perf [NAME ...]``), not by pytest.

Each ``bench_<name>.py`` module has ``main(argv) -> int`` and prints its
figures as ratios against a baseline measured in the same run; results are
also written as JSON under ``tests/perf/results/`` (not in git).  See README.md.
"""
