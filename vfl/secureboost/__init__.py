"""Hetero SecureBoost (vertical gradient-boosted trees); the label party holds the key.

Protocol, leaks and what is implemented: docs/secureboost.md.
"""
from vfl.secureboost.family import FAMILIES
from vfl.secureboost.model import ActiveSecureBoostClassifier, ActiveSecureBoostRegressor, PassiveSecureBoost

__all__ = ["ActiveSecureBoostClassifier", "ActiveSecureBoostRegressor", "PassiveSecureBoost", "FAMILIES"]
