"""Benchmarks: run all with `make bench` (python -m bench), or one with python bench/bench_NAME.py."""
