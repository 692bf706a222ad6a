"""Reproducible benchmarks of nocert (issue 7). Each module runs with one command, e.g.
``.venv/bin/python -m bench.lifecycle --seconds 30 --clients 16``; figures go to BENCHMARKS.md."""
