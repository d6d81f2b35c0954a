"""Benchmarks: our engine and its baseline measured in the same run, reported as ratios."""
