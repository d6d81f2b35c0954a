"""Benchmarks: each measures this engine beside its baseline in the same run and reports ratios.

May import every layer (``protocols``, ``vfl``, ``parties``); only the CLI's ``vfl bench``
command reaches this package, and it imports one benchmark module at a time.
"""
