"""Messages of hetero WOE/IV binning."""
from __future__ import annotations

import dataclasses

import numpy as np

from protocols.messages import Message
from protocols.paillier import EncryptedVector, PublicKey


@dataclasses.dataclass(frozen=True)
class BinningSetup(Message):
    """Active → passives: the key, the rows and the binning rules; whether WOE comes back."""

    KIND = "binning.setup"
    public_key: PublicKey
    n_rows: int
    n_bins: int
    method: str
    min_bin_size: int
    share_woe: bool
    monotone: bool


@dataclasses.dataclass(frozen=True)
class EncryptedLabels(Message):
    """Active → passives: [[y_i]] per training row (0 or 1)."""

    KIND = "binning.labels"
    labels: EncryptedVector


@dataclasses.dataclass(frozen=True)
class BinSums(Message):
    """Passive → active: per column, its bins' row counts and [[Σ y]] per bin (re-randomized),
    and how many of its leading bins are ordered (numeric bins; 0 for a categorical column)."""

    KIND = "binning.sums"
    bins_per_column: np.ndarray          # int64, one per column
    ordered: np.ndarray                  # int64, one per column
    counts: np.ndarray                   # int64, every column's bins in order
    events: EncryptedVector              # the same order


@dataclasses.dataclass(frozen=True)
class BinWoe(Message):
    """Active → passive, when the job merges bins for monotone WOE or shares WOE: the new bin of
    each of its bins (every column's in order), and only where the job shares it, WOE per new
    bin and IV per column (empty otherwise)."""

    KIND = "binning.woe"
    merge: np.ndarray                    # int64, one per bin the passive sent
    woe: np.ndarray
    iv: np.ndarray
