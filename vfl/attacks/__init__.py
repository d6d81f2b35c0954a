"""Attacks run against our own protocols by an honest-but-curious party, to measure what the
leakage tables say in numbers (docs/privacy.md). Each reports its leak as the gain over an
attacker that uses no protocol output."""
