"""Messages of hetero linear/logistic regression (both roles import this module)."""
from __future__ import annotations

import dataclasses
import enum

import numpy as np

from protocols.messages import Message
from protocols.paillier import EncryptedVector, PackedEncryptedVector, PublicKey


class LrKind(str, enum.Enum):
    SETUP = "lr.setup"
    PARTIAL_SCORES = "lr.partial_scores"
    RESIDUAL = "lr.residual"
    MASKED_GRADIENT = "lr.masked_gradient"
    DECRYPTED_MASKED_GRADIENT = "lr.decrypted_masked_gradient"
    EPOCH_END = "lr.epoch_end"
    SCORE_REQUEST = "lr.score_request"
    ENCRYPTED_FEATURES = "lr.encrypted_features"
    ENCRYPTED_FEATURE_CHUNK = "lr.encrypted_feature_chunk"
    ENCRYPTED_GRADIENT = "lr.encrypted_gradient"
    LBFGS_GRAM = "lr.lbfgs_gram"
    LBFGS_DIRECTION = "lr.lbfgs_direction"
    LBFGS_STEP = "lr.lbfgs_step"


@dataclasses.dataclass(frozen=True)
class Setup(Message):
    """Active → passive: the key and everything the passive must agree to before training."""
    KIND = LrKind.SETUP.value
    public_key: PublicKey | None    # the active's key ("label_key"); None with "feature_key"
    task: str                       # "logistic" or "linear"
    n_rows: int                     # rows of the aligned table the job trains on
    train_index: np.ndarray         # positions of training rows (validation: the rest listed below)
    val_index: np.ndarray
    epochs: int
    batch_size: int
    batch_seed: int                 # batches are a seeded permutation both sides compute
    learning_rate: float
    lr_schedule: str
    lr_decay: float
    penalty: str
    alpha: float
    residual_frac_bits: int
    protocol: str = "label_key"     # or "feature_key": every passive encrypts its features once, under its own key
    solver: str = "sgd"             # or "lbfgs": full-batch L-BFGS, ``epochs`` iterations at most
    gtol: float = 0.0               # lbfgs: stop when max |gradient| over every party is at most this
    feature_privacy: dict | None = None   # [privacy] feature_*: the noise every passive adds (vfl.privacy)


@dataclasses.dataclass(frozen=True)
class PartialScores(Message):
    """Passive → active: X_p·w_p for the requested rows (a documented leak, see docs/hetero_lr.md)."""
    KIND = LrKind.PARTIAL_SCORES.value
    scores: np.ndarray


@dataclasses.dataclass(frozen=True)
class Residual(Message):
    """Active → passive: [[d]] for the current batch, d = ¼z − ½y (logistic) or z − y (linear)."""
    KIND = LrKind.RESIDUAL.value
    residual: EncryptedVector


@dataclasses.dataclass(frozen=True)
class MaskedGradient(Message):
    """Passive → active: [[X_pᵀd + r]] packed; r statistically hides the gradient."""
    KIND = LrKind.MASKED_GRADIENT.value
    gradient: PackedEncryptedVector


@dataclasses.dataclass(frozen=True)
class DecryptedMaskedGradient(Message):
    """Active → passive: the decrypted X_pᵀd + r as decimal strings (exact big integers)."""
    KIND = LrKind.DECRYPTED_MASKED_GRADIENT.value
    values: tuple


@dataclasses.dataclass(frozen=True)
class EncryptedFeatures(Message):
    """Passive → active, once ("feature_key"): the header of its encrypted training features,
    fixed-point and packed ``per_ct`` to a plaintext in slots of ``slot_bits``, under the
    passive's own key; ``n_ciphertexts`` of them follow, in EncryptedFeatureChunk messages."""
    KIND = LrKind.ENCRYPTED_FEATURES.value
    public_key: PublicKey
    slot_bits: int
    per_ct: int
    n_ciphertexts: int              # rows × feature groups, row-major: row i's group g at i * groups + g


@dataclasses.dataclass(frozen=True)
class EncryptedFeatureChunk(Message):
    """Passive → active: the next ciphertexts of [[X_p]], in order (bounded message size)."""
    KIND = LrKind.ENCRYPTED_FEATURE_CHUNK.value
    features: EncryptedVector


@dataclasses.dataclass(frozen=True)
class EncryptedGradient(Message):
    """Active → passive ("feature_key"): [[Σ_i d_i·X_i]] over the batch, one ciphertext per
    feature group, under the passive's key; re-randomized before it leaves."""
    KIND = LrKind.ENCRYPTED_GRADIENT.value
    gradient: EncryptedVector


@dataclasses.dataclass(frozen=True)
class EpochEnd(Message):
    """Active → passive: continue or stop after this epoch."""
    KIND = LrKind.EPOCH_END.value
    epoch: int
    stop: bool


@dataclasses.dataclass(frozen=True)
class ScoreRequest(Message):
    """Active → passive: send partial scores for these rows of your table (prediction)."""
    KIND = LrKind.SCORE_REQUEST.value
    n_rows: int
    done: bool = False


@dataclasses.dataclass(frozen=True)
class LbfgsGram(Message):
    """Passive → active (L-BFGS): the dot products of this party's parts of [g, w, s_i…, y_i…]
    and its largest |gradient| entry (the stopping rule)."""
    KIND = LrKind.LBFGS_GRAM.value
    gram: np.ndarray
    grad_max: float


@dataclasses.dataclass(frozen=True)
class LbfgsDirection(Message):
    """Active → passive (L-BFGS): the direction as coefficients over that basis, or stop."""
    KIND = LrKind.LBFGS_DIRECTION.value
    iteration: int
    coefs: np.ndarray
    stop: bool


@dataclasses.dataclass(frozen=True)
class LbfgsStep(Message):
    """Active → passive (L-BFGS): the step size the active's line search chose (0: stop)."""
    KIND = LrKind.LBFGS_STEP.value
    iteration: int
    step: float
