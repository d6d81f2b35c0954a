"""Messages of hetero SecureBoost (both roles import this module)."""
from __future__ import annotations

import dataclasses
import enum

import numpy as np

from protocols.messages import Message
from protocols.paillier import AdditivePublicKey, PackedEncryptedVector


class SbtKind(str, enum.Enum):
    SETUP = "sbt.setup"
    GRAD_HESS = "sbt.grad_hess"
    NODES = "sbt.nodes"
    HISTOGRAMS = "sbt.histograms"
    SPLITS = "sbt.splits"
    LEFT_ROWS = "sbt.left_rows"
    FIT_END = "sbt.fit_end"
    ROUTE_REQUEST = "sbt.route_request"
    ROUTES = "sbt.routes"


@dataclasses.dataclass(frozen=True)
class Setup(Message):
    """Active → passive: the key (Paillier or Okamoto–Uchiyama) and the public parameters of the job."""
    KIND = SbtKind.SETUP.value
    public_key: AdditivePublicKey
    n_rows: int
    n_estimators: int
    max_depth: int
    max_bins: int
    frac_bits: int                  # fixed-point scale of g and h
    n_outputs: int = 1              # K: (g, h) pairs per row (softmax: one per class)
    sample_rows: int = 0            # |S|: rows whose g, h every tree sends (subsample, GOSS, holdout)


@dataclasses.dataclass(frozen=True)
class GradHess(Message):
    """Active → passive: one packed ciphertext per sampled row, [[g_i1, h_i1, …, g_iK, h_iK]],
    and the passive's columns this tree may split on."""
    KIND = SbtKind.GRAD_HESS.value
    tree: int
    gh: PackedEncryptedVector
    rows: np.ndarray                # int64, ascending: the job rows the ciphertexts belong to
    features: np.ndarray            # int64, ascending: the passive's own column indices


@dataclasses.dataclass(frozen=True)
class Nodes(Message):
    """Active → passive: the nodes to split at this depth and the node of every row in them
    (``-1``: the row is in no such node). No nodes: the tree is finished."""
    KIND = SbtKind.NODES.value
    tree: int
    depth: int
    node_ids: np.ndarray            # int64, heap numbering (children of k: 2k+1, 2k+2)
    node_of_row: np.ndarray         # int32, one per training row


@dataclasses.dataclass(frozen=True)
class Histograms(Message):
    """Passive → active, one block of the tree's columns at a time: per (node, feature) of the
    nodes it sums (the root; deeper, the smaller child of each parent of the nodes to split),
    the padded sums of the non-missing rows, then the left-child sums of the parent's
    candidates in bin order, all packed and compressed; and per node to split and feature,
    which of its parent's candidates are its own."""
    KIND = SbtKind.HISTOGRAMS.value
    tree: int
    depth: int
    node_ids: np.ndarray            # int64: the nodes whose sums follow (depth 0: the root)
    first: int                      # this block's first column, by position among the tree's columns
    sizes: np.ndarray               # int64 (len(node_ids), block columns): entries per (node, feature)
    masks: np.ndarray               # bool: per node to split (ascending) and block column, over the parent's candidates
    sums: PackedEncryptedVector | None


@dataclasses.dataclass(frozen=True)
class Splits(Message):
    """Active → passive: the nodes this passive won, with the winning entry of each."""
    KIND = SbtKind.SPLITS.value
    tree: int
    depth: int
    node_ids: np.ndarray            # int64
    features: np.ndarray            # int64: the passive's own column index
    entries: np.ndarray             # int64: 0 = "non-missing left", j >= 1 = the node's j-th candidate bin
    default_left: np.ndarray        # bool: where rows with a missing value go


@dataclasses.dataclass(frozen=True)
class LeftRows(Message):
    """Passive → active: for each won node (in order), which of its rows (ascending) go left."""
    KIND = SbtKind.LEFT_ROWS.value
    tree: int
    depth: int
    left: np.ndarray                # bool, concatenated over the nodes


@dataclasses.dataclass(frozen=True)
class FitEnd(Message):
    """Active → passive: training is over; the model keeps trees ``0 .. n_trees − 1`` (early
    stopping may drop trees already grown)."""
    KIND = SbtKind.FIT_END.value
    n_trees: int


@dataclasses.dataclass(frozen=True)
class RouteRequest(Message):
    """Active → passive: evaluate all your split nodes on your ``n_rows`` aligned rows."""
    KIND = SbtKind.ROUTE_REQUEST.value
    n_rows: int


@dataclasses.dataclass(frozen=True)
class Routes(Message):
    """Passive → active: one bit per (owned node, row): 1 = the row goes left at that node."""
    KIND = SbtKind.ROUTES.value
    nodes: np.ndarray               # int64 (k, 2): (tree, node)
    bits: np.ndarray                # uint8 (k, ceil(n_rows / 8)), numpy.packbits along rows
