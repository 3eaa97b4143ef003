"""Reproducible benchmarks: `python -m bench` lists them; figures go to docs/performance.md."""
