"""Hetero Pearson correlation on secret shares (``model = "pearson"``)."""
from vfl.pearson.family import FAMILIES, PearsonFamily
from vfl.pearson.model import ActivePearson, PassivePearson

__all__ = ["FAMILIES", "ActivePearson", "PassivePearson", "PearsonFamily"]
