"""Benchmark harness for otel_audit: ratios against a baseline measured in the same run.

Entry point: ``python -m bench.run`` (or ``make bench``); method in ``bench/README.md``.
"""
