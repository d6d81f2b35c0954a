"""Hetero WOE/IV binning (``model = "binning"``)."""
from vfl.binning.family import FAMILIES, BinningFamily
from vfl.binning.model import ActiveBinning, PassiveBinning

__all__ = ["FAMILIES", "ActiveBinning", "BinningFamily", "PassiveBinning"]
