"""Reproducible benchmarks; `python -m bench --help` lists them. Figures go to docs/performance.md."""
