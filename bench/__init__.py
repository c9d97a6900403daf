"""Benchmarks (``make bench``): speed and memory, measured, never asserted in tests."""
