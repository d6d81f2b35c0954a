"""Hetero SecureBoost (vertical gradient-boosted trees); the label party holds the key.

Protocol, leaks and what is implemented: docs/secureboost.md.
"""
from vfl.secureboost.model import ActiveSecureBoostClassifier, PassiveSecureBoost

__all__ = ["ActiveSecureBoostClassifier", "PassiveSecureBoost"]
