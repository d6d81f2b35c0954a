"""Hetero (vertically split) linear and logistic regression; the label party holds the key."""
from vfl.linear.family import FAMILIES
from vfl.linear.model import (
                              ActiveLinearRegression,
                              ActiveLogisticRegression,
                              PassiveLinearModel,
                              PassiveLinearRegression,
                              PassiveLogisticRegression,
)

__all__ = ["ActiveLogisticRegression", "ActiveLinearRegression", "PassiveLinearModel",
           "PassiveLogisticRegression", "PassiveLinearRegression", "FAMILIES"]
