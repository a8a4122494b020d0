"""Benchmarks of the hotline engine: ``python -m bench`` (see bench/README.md)."""
