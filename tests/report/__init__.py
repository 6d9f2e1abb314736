"""Tests of the paper-study benchmark (benchmarks/paper.py, benchmarks/gpu.sh) and ``driftcal report``."""
