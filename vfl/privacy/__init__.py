"""Label differential privacy for the families that opt in (``ModelFamily.label_privacy``).

A job's ``[privacy]`` section::

    [privacy]
    label_epsilon = 2.0                    # ε of the labels' release (> 0)
    mechanism = "randomized_response"      # or "rr_with_prior", "gradient_noise"
    prior_share = 0.5                      # rr_with_prior: training rows that train the prior
    delta = 1e-6                           # gradient_noise: the δ of (ε, δ)

Two ways to protect the labels:

- **Randomized response** (``randomized_response``, ``rr_with_prior``): pure ε-DP, δ = 0.
The active party randomizes the training rows' labels once, before training starts
(:mod:`protocols.dp.labels`); training sees only the randomized labels, so every message the
passives receive, and the model itself, is post-processing of an ε-label-DP release: no more ε
is spent by more trees, epochs or rounds. A run that is resumed reuses the labels it drew
(kept with its checkpoints), never new ones. The held-out rows keep their true labels: only the
active uses them, to measure the model.

``rr_with_prior`` (Ghazi et al. 2021): the training rows are split in two. The first part's
labels go through plain randomized response; a model of the active's own columns, trained on
those randomized labels, gives each row of the second part a prior, and the second part goes
through RR with that prior. Each row is released once by an ε-DP mechanism, so the whole is
ε-label-DP.

With ``[privacy]`` the held-out split is not stratified by label: the passives learn which rows
are held out, and a split that balances the classes would tell them something of the labels.

- **Noise on the label gradients** (``gradient_noise``, families with ``gradient_privacy``:
  SecureBoost). The labels stay as they are; every round (tree) the active adds discrete
  Gaussian noise to each training row's label gradient g = p − y before anything uses it —
  its own histograms, GOSS, what it encrypts for the passives, the leaf values. Replacing one
  label moves that row's g by 1 in one class coordinate, or in two for softmax. The noise σ is
  calibrated so that all rounds together are (ε, δ)-label-DP, and the starting score does not
  look at the labels. Early stopping is off, because it would choose the tree count from true labels.
  Each round's noise is drawn once and kept with the run's checkpoints, so a resumed run adds the same noise.

The ε is accounted with Google's ``dp-accounting`` (privacy loss distributions, a label
replaced by another): :func:`account`, :func:`gaussian_epsilon`.

**The passives' columns** (``feature_epsilon``, families with ``feature_privacy``: hetero
logistic regression, SGD)::

    [privacy]
    feature_epsilon = 4.0      # each passive's rows are (ε, δ)-DP against what the active receives
    feature_delta = 1e-6       # optional
    feature_clip = 1.0         # optional: rows clipped to L2 norm feature_clip·√(columns), standardized
    weight_clip = 1.0          # optional: a passive's weights kept within L2 norm weight_clip

Every passive clips its standardized rows, adds discrete Gaussian noise to each partial score it
sends and to its own batch gradient before it updates its weights, and projects its weights back
into the ``weight_clip`` ball (:class:`FeatureNoise`). Per epoch a training row is in one batch:
its score and that batch's gradient are its two releases; 2·epochs Gaussian releases are
accounted by dp-accounting's Rényi accountant (:meth:`FeaturePrivacy.multiplier`). Either part of
``[privacy]`` may stand alone, or both together.
"""
from __future__ import annotations

import dataclasses
import io
import os
import pathlib

import numpy as np

from protocols.dp import discrete_gaussians, keep_probability, randomized_response, rr_with_prior, uniform

MECHANISMS = ("randomized_response", "rr_with_prior", "gradient_noise")
MAX_EPSILON = 50.0
DEFAULT_DELTA = 1e-6
GRID = 256              # gradient noise is drawn in units of 1/GRID of a label (a label moves g by GRID units)
_KEYS = {"label_epsilon", "mechanism", "prior_share", "delta"}
FEATURE_KEYS = {"feature_epsilon", "feature_delta", "feature_clip", "weight_clip"}


@dataclasses.dataclass(frozen=True)
class LabelPrivacy:
    label_epsilon: float
    mechanism: str = "randomized_response"
    prior_share: float = 0.5
    delta: float = 0.0

    @classmethod
    def from_section(cls, table, family) -> "LabelPrivacy":
        """The ``[privacy]`` table of a job for ``family``; ``ValueError`` naming what is wrong."""
        if not isinstance(table, dict):
            raise ValueError("[privacy] must be a table")
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise ValueError(f"[privacy] has unknown keys {unknown} (known: {sorted(_KEYS)})")
        if family.data.label not in ("binary", "classes"):
            raise ValueError(f"label privacy by randomized response needs class labels; {family.name} has "
                             f"{family.data.label or 'no'} labels")
        if not getattr(family, "label_privacy", False):
            raise ValueError(f"{family.name} does not offer label privacy (a [privacy] section)")
        eps = table.get("label_epsilon")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps <= MAX_EPSILON:
            raise ValueError(f"[privacy] label_epsilon must be a number in (0, {MAX_EPSILON:g}], got {eps!r}")
        mechanism = table.get("mechanism", "randomized_response")
        if mechanism not in MECHANISMS:
            raise ValueError(f"[privacy] mechanism must be one of {list(MECHANISMS)}, got {mechanism!r}")
        share = table.get("prior_share", 0.5)
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
            raise ValueError(f"[privacy] prior_share must be a number in (0, 1), got {share!r}")
        if "prior_share" in table and mechanism != "rr_with_prior":
            raise ValueError("[privacy] prior_share is for mechanism = \"rr_with_prior\" only")
        delta = 0.0
        if mechanism == "gradient_noise":
            if not getattr(family, "gradient_privacy", False):
                raise ValueError(f"{family.name} does not offer mechanism = \"gradient_noise\" (noise on its label "
                                 "gradients); randomized_response and rr_with_prior work with every family")
            delta = table.get("delta", DEFAULT_DELTA)
            if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 < delta <= 1e-3:
                raise ValueError(f"[privacy] delta must be a number in (0, 0.001], got {delta!r}")
        elif "delta" in table:
            raise ValueError(f"[privacy] delta is for mechanism = \"gradient_noise\"; {mechanism} is pure ε-DP "
                             "(δ = 0)")
        return cls(float(eps), mechanism, float(share), float(delta))

    def to_section(self) -> dict:
        out = {"label_epsilon": self.label_epsilon, "mechanism": self.mechanism}
        if self.mechanism == "gradient_noise":
            return {**out, "delta": self.delta}
        return {**out, "prior_share": self.prior_share} if self.mechanism == "rr_with_prior" else out

    @property
    def randomizes_labels(self) -> bool:
        return self.mechanism != "gradient_noise"

    def gradient_noise(self, rounds: int, outputs: int, directory=None) -> "GradientNoise":
        """The noise of a run of ``rounds`` rounds with ``outputs`` gradient coordinates per row,
        calibrated to this ε and δ; ``directory``: where the run keeps what it drew."""
        releases = rounds * (1 if outputs == 1 else 2)
        return GradientNoise(calibrate_sigma(self.label_epsilon, self.delta, releases), rounds, releases, directory)

    def randomize(self, y: np.ndarray, n_classes: int, x=None) -> np.ndarray:
        """The released labels of the training rows ``y`` (0..n_classes−1). ``x``: the active's
        own columns of the same rows (a frame), for ``rr_with_prior``'s prior."""
        y = np.asarray(y).astype(np.int64)
        if self.mechanism == "randomized_response" or len(y) < 4:
            return randomized_response(y, n_classes, self.label_epsilon)
        first = uniform(len(y)) < self.prior_share        # which rows train the prior: never by their labels
        if first.all() or not first.any():
            return randomized_response(y, n_classes, self.label_epsilon)
        out = np.empty_like(y)
        out[first] = randomized_response(y[first], n_classes, self.label_epsilon)
        prior = _prior(x, first, out[first], n_classes)
        out[~first] = rr_with_prior(y[~first], prior, self.label_epsilon)
        return out

    def report(self, n_classes: int, n_rows: int, noise: "GradientNoise | None" = None) -> dict:
        """What the job report states: ε, δ, the mechanism and its accounting."""
        if noise is not None:
            return {"label_epsilon": self.label_epsilon, "delta": self.delta, "mechanism": self.mechanism,
                    "rows": int(n_rows), "classes": int(n_classes), "noise_sigma": noise.sigma,
                    "rounds": noise.rounds,
                    "accounting": {"library": "dp-accounting (PLD)", "neighbours": "one label replaced by another",
                                   "epsilon": gaussian_epsilon(noise.sigma, noise.releases, self.delta),
                                   "delta": self.delta, "releases": noise.releases},
                    "composition": f"discrete Gaussian noise (σ = {noise.sigma:.4g} labels) on every training row's "
                                   f"label gradient, {noise.releases} releases composed; no sampling amplification"}
        return {"label_epsilon": self.label_epsilon, "delta": 0.0, "mechanism": self.mechanism,
                "rows_randomized": int(n_rows), "classes": int(n_classes),
                "keep_probability": float(keep_probability(self.label_epsilon, n_classes)),
                **({"prior_share": self.prior_share} if self.mechanism == "rr_with_prior" else {}),
                "accounting": account(self.label_epsilon),
                "composition": "one release of each training label; training is post-processing"}


def account(epsilon: float, releases: int = 1, delta: float = 0.0) -> dict:
    """ε at ``delta`` of ``releases`` label releases, each ε-label-DP, composed by
    dp-accounting's privacy-loss-distribution (PLD) accountant.

    Neighbours: one row's label replaced by another. Randomized response over k classes, with or
    without a prior, is pure ε-DP under that relation (the largest ratio of two labels' output
    probabilities is e^ε); binary RR is exactly the worst-case ε-DP mechanism whose PLD
    dp-accounting builds from (ε, 0), and for more classes that PLD is an upper bound.
    (dp-accounting's own randomized-response event compares a label with a "special" input
    that answers uniformly, a different neighbour relation, so it is not used here.)
    """
    from dp_accounting.pld import common, privacy_loss_distribution

    pld = privacy_loss_distribution.from_privacy_parameters(common.DifferentialPrivacyParameters(epsilon, 0.0))
    if releases > 1:
        pld = pld.self_compose(releases)
    return {"library": "dp-accounting (PLD)", "neighbours": "one label replaced by another",
            "epsilon": float(pld.get_epsilon_for_delta(delta)), "delta": float(delta), "releases": int(releases)}


def compose(epsilons, delta: float = 0.0) -> float:
    """The ε at ``delta`` of releasing the same labels once by each of the ε-label-DP
    mechanisms in ``epsilons`` (one per job): what a dataset's ledger has spent.

    At δ = 0 this is their sum, which is exact: pure ε-DP mechanisms compose by adding their ε,
    and binary randomized response attains it. With δ > 0 the privacy-loss distributions are
    composed by dp-accounting, which is tighter once there are many releases."""
    epsilons = [float(e) for e in epsilons]
    if not epsilons:
        return 0.0
    if delta == 0:
        return float(sum(epsilons))
    from dp_accounting.pld import common, privacy_loss_distribution

    pld = None
    for eps in epsilons:
        one = privacy_loss_distribution.from_privacy_parameters(common.DifferentialPrivacyParameters(eps, 0.0))
        pld = one if pld is None else pld.compose(one)
    return float(min(sum(epsilons), pld.get_epsilon_for_delta(delta)))


def gaussian_epsilon(sigma: float, releases: int, delta: float) -> float:
    """ε at ``delta`` of ``releases`` discrete Gaussian releases of σ = ``sigma`` label units
    (sensitivity one label), by dp-accounting's PLD of the discrete Gaussian, composed. The
    training uses no Poisson sampling, so no amplification by sampling is claimed."""
    from dp_accounting.pld import privacy_loss_distribution

    pld = privacy_loss_distribution.from_discrete_gaussian_mechanism(sigma * GRID, sensitivity=GRID)
    return float(pld.self_compose(releases).get_epsilon_for_delta(delta)) if releases > 1 else \
        float(pld.get_epsilon_for_delta(delta))


def calibrate_sigma(epsilon: float, delta: float, releases: int) -> float:
    """The smallest σ (to 1%, on a grid of 1/1000 label) whose ``releases`` discrete Gaussian
    releases stay within (``epsilon``, ``delta``) by :func:`gaussian_epsilon`.

    The search starts from the continuous Gaussian's exact answer (``releases`` of them are one
    Gaussian of sensitivity √releases, Balle and Wang 2018) and steps up 1% at a time until
    the discrete mechanism's own accounting agrees."""
    from scipy.stats import norm

    def continuous_delta(sigma):
        s = sigma / np.sqrt(releases)
        return norm.cdf(0.5 / s - epsilon * s) - np.exp(epsilon) * norm.cdf(-0.5 / s - epsilon * s)
    low, high = 1e-3, 1e4
    if continuous_delta(high) > delta:
        raise ValueError(f"no noise up to σ = 10⁴ makes {releases} releases ({epsilon:g}, {delta:g})-DP")
    while high / low > 1.001:
        mid = (low * high) ** 0.5
        low, high = (mid, high) if continuous_delta(mid) > delta else (low, mid)
    sigma = float(np.ceil(high * 1000) / 1000)
    while gaussian_epsilon(sigma, releases, delta) > epsilon:
        sigma = float(np.ceil(sigma * 1.01 * 1000) / 1000)
    return sigma


class GradientNoise:
    """One run's noise on the label gradients: σ in label units, each round's noise drawn once
    (exactly, from :mod:`secrets`) and, with a ``directory``, kept there before it is used, so a
    resumed run adds the same noise to the same round."""

    def __init__(self, sigma: float, rounds: int, releases: int, directory=None):
        self.sigma, self.rounds, self.releases = float(sigma), int(rounds), int(releases)
        self.directory = None if directory is None else pathlib.Path(directory)

    def draw(self, round_: int, shape: tuple[int, ...]) -> np.ndarray:
        """The noise of round ``round_`` (floats, multiples of 1/GRID)."""
        path = None if self.directory is None else self.directory / f"gradient_noise_{int(round_)}.npy"
        return _kept_draw(path, self.sigma * GRID, shape).astype(np.float64) / GRID


def _kept_draw(path: pathlib.Path | None, sigma_units: float, shape: tuple[int, ...]) -> np.ndarray:
    """Discrete Gaussian integers of σ = ``sigma_units``, drawn once: read from ``path`` when a
    resumed run drew them already, else drawn and written there before anyone uses them."""
    from vfl.files import write_private
    if path is not None and path.exists():
        units = np.load(path, allow_pickle=False)
        if units.shape != tuple(shape):
            raise ValueError(f"{path} holds noise of shape {units.shape}, this round needs {tuple(shape)}")
        return units
    units = discrete_gaussians(sigma_units, int(np.prod(shape))).reshape(shape)
    if path is not None:
        buffer = io.BytesIO()
        np.save(buffer, units, allow_pickle=False)
        write_private(path, buffer.getvalue())
    return units


def parse_privacy(table, family) -> tuple["LabelPrivacy | None", "FeaturePrivacy | None"]:
    """A job's ``[privacy]`` table: its label part and its feature part (either may be absent,
    not both); ``ValueError`` naming what is wrong."""
    if not isinstance(table, dict):
        raise ValueError("[privacy] must be a table")
    unknown = sorted(set(table) - _KEYS - FEATURE_KEYS)
    if unknown:
        raise ValueError(f"[privacy] has unknown keys {unknown} (known: {sorted(_KEYS | FEATURE_KEYS)})")
    labels = {k: v for k, v in table.items() if k in _KEYS}
    features = {k: v for k, v in table.items() if k in FEATURE_KEYS}
    if not labels and not features:
        raise ValueError("[privacy] sets neither label_epsilon nor feature_epsilon")
    return (LabelPrivacy.from_section(labels, family) if labels else None,
            FeaturePrivacy.from_section(features, family) if features else None)


def privacy_section(labels: "LabelPrivacy | None", features: "FeaturePrivacy | None") -> dict:
    """The ``[privacy]`` table of both parts (what :func:`parse_privacy` reads back)."""
    return {**(labels.to_section() if labels else {}), **(features.to_section() if features else {})}


def _number(table: dict, key: str, default, low: float, high: float, *, low_open: bool = True) -> float:
    value = table.get(key, default)
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and \
        (low < value if low_open else low <= value) and value <= high
    if not ok:
        raise ValueError(f"[privacy] {key} must be a number in {'(' if low_open else '['}{low:g}, {high:g}], "
                         f"got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class FeaturePrivacy:
    """Row-level DP of every passive's columns against what the active receives (hetero LR, SGD).

    Neighbours: one training row's values of a passive's columns replaced by any others. What
    depends on them: the row's noisy partial score each epoch (a scalar, sensitivity
    2·C·W with C = ``feature_clip``·√(columns) the rows' L2 clip and W = ``weight_clip`` the
    weights' L2 bound), and, through the passive's weights, the scores of every other row — so the
    passive also noises its batch gradient Σ d_i·x_i (sensitivity 2·C, as |d_i| < 1 for the exact
    logistic residual) before it updates its weights. A row is in one batch per epoch: 2 releases
    per epoch, each a Gaussian of noise multiplier σ/sensitivity = :meth:`multiplier`.
    """
    feature_epsilon: float
    feature_delta: float = DEFAULT_DELTA
    feature_clip: float = 1.0
    weight_clip: float = 1.0

    @classmethod
    def from_section(cls, table: dict, family) -> "FeaturePrivacy":
        if not getattr(family, "feature_privacy", False):
            raise ValueError(f"{family.name} does not offer feature privacy ([privacy] feature_epsilon); "
                             "hetero logistic regression with solver = \"sgd\" does")
        if "feature_epsilon" not in table:
            raise ValueError("[privacy] feature_delta, feature_clip and weight_clip need feature_epsilon")
        return cls(_number(table, "feature_epsilon", None, 0, MAX_EPSILON),
                   _number(table, "feature_delta", DEFAULT_DELTA, 0, 1e-3),
                   _number(table, "feature_clip", 1.0, 0.01, 100, low_open=False),
                   _number(table, "weight_clip", 1.0, 0, 1000))

    def to_section(self) -> dict:
        return dataclasses.asdict(self)

    def check_model(self, hyperparameters: dict, test_size: float | None = None) -> None:
        """The training this DP is stated for: mini-batch SGD on the exact logistic residual, and
        (a job's ``test_size``) held-out rows whose statistics standardize the passives' columns."""
        if test_size is not None and not test_size:
            raise ValueError("[privacy] feature_epsilon needs [evaluation] test_size > 0: the passives standardize "
                             "their columns with the held-out rows' statistics (the training rows' would make "
                             "every score depend on every training row)")
        if hyperparameters.get("solver") != "sgd":
            raise ValueError("[privacy] feature_epsilon needs solver = \"sgd\" in [model] (L-BFGS's line "
                             "search has the passives score every row along every direction)")
        if hyperparameters.get("approximation", "none") != "none":
            raise ValueError("[privacy] feature_epsilon needs approximation = \"none\" (the exact logistic "
                             "residual is bounded by 1, which bounds what one row adds to a gradient)")

    def multiplier(self, epochs: int) -> float:
        """σ / sensitivity of every release: the smallest (to 0.1%) whose 2·``epochs`` Gaussian
        releases stay within (ε, δ) by dp-accounting's Rényi accountant."""
        from dp_accounting import dp_event
        from dp_accounting.rdp import rdp_privacy_accountant

        def epsilon(m: float) -> float:
            accountant = rdp_privacy_accountant.RdpAccountant()
            accountant.compose(dp_event.GaussianDpEvent(m), 2 * int(epochs))
            return accountant.get_epsilon(self.feature_delta)
        low, high = 1e-3, 1e4
        if epsilon(high) > self.feature_epsilon:
            raise ValueError(f"no noise makes {epochs} epochs ({self.feature_epsilon:g}, {self.feature_delta:g})-DP")
        while high / low > 1.001:
            mid = (low * high) ** 0.5
            low, high = (mid, high) if epsilon(mid) > self.feature_epsilon else (low, mid)
        return high

    def report(self, epochs: int) -> dict:
        m = self.multiplier(epochs)
        return {**self.to_section(), "noise_multiplier": m, "releases_per_row": 2 * int(epochs),
                "accounting": {"library": "dp-accounting (RDP)",
                               "neighbours": "one row's values of a passive's columns replaced",
                               "epsilon": self.feature_epsilon, "delta": self.feature_delta},
                "composition": f"discrete Gaussian noise (σ = {m:.4g} × sensitivity) on each partial score and "
                               "each batch gradient of every passive, 2 releases per row per epoch composed; "
                               "no sampling amplification (the active knows every batch)"}


def clip_rows(x: np.ndarray, clip: float) -> np.ndarray:
    """Each row of ``x`` scaled down to L2 norm ``clip`` where it is longer."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x * np.minimum(1.0, clip / np.maximum(norms, 1e-300))


class FeatureNoise:
    """One passive's side of :class:`FeaturePrivacy` in a run of ``epochs`` epochs over
    ``n_features`` columns: the clips, and each epoch's noise drawn once (exactly, from
    :mod:`secrets`) and, with a ``directory``, kept there before it is used. ``reference``: the
    rows (held out, not protected) whose mean and scale standardize the columns; statistics of
    the training rows would make every row's score depend on every other training row.

    Values are released on a grid of GRID steps per sensitivity: a score is rounded to the grid
    and an integer of discrete Gaussian noise added. Rounding moves a scalar by at most one step
    and a vector by at most √(columns) steps, so σ is set for a sensitivity of GRID + √(columns)
    steps. The Rényi bound of a discrete Gaussian is the continuous one's (Canonne, Kamath and
    Steinke 2020), up to a term that at hundreds of steps is far below any float."""

    def __init__(self, privacy: FeaturePrivacy, directory=None, reference=None):
        self.privacy = privacy
        self.directory = None if directory is None else pathlib.Path(directory)
        self.reference = reference        # rows outside the DP (held out) whose statistics standardize the columns
        self.sigma_steps = 0.0

    def start(self, epochs: int, n_features: int, frac_bits: int = 16) -> None:
        """Calibrate for ``epochs`` over ``n_features`` columns. The gradient is computed on the
        rows in fixed point (``frac_bits``), which can lengthen a row by up to √columns·2^−(frac_bits+1):
        rows are clipped that much shorter, so that every row the gradient sees is within the clip."""
        p = self.privacy
        self.clip = p.feature_clip * float(np.sqrt(n_features))
        self.row_clip = self.clip - float(np.sqrt(n_features)) * 2.0 ** -(frac_bits + 1)
        self.score_step = 2 * self.clip * p.weight_clip / GRID
        self.gradient_step = 2 * self.clip / GRID
        self.sigma_steps = p.multiplier(epochs) * (GRID + float(np.sqrt(n_features)))

    def clip_rows(self, x: np.ndarray) -> np.ndarray:
        return clip_rows(x, self.row_clip)

    def project(self, w: np.ndarray) -> np.ndarray:
        norm = float(np.linalg.norm(w))
        return w if norm <= self.privacy.weight_clip else w * (self.privacy.weight_clip / norm)

    def draw(self, epoch: int, count: int) -> np.ndarray:
        """Epoch ``epoch``'s ``count`` noise integers (in grid steps)."""
        path = None if self.directory is None else self.directory / f"feature_noise_{int(epoch)}.npy"
        return _kept_draw(path, self.sigma_steps, (int(count),))

    def record(self, epoch: int, batch: int, steps: np.ndarray) -> None:
        """Keep the noisy gradient (in grid steps) this party used in ``batch`` of ``epoch``; a
        resumed run that replays the batch must arrive at the same one. Kept noise is safe only
        if the values it is added to are the same again: an active that sent other residuals in
        the replay would get the difference of two releases without noise. ``ValueError`` then."""
        if self.directory is None:
            return
        record = np.ascontiguousarray(steps, dtype="<i8").tobytes()
        path = self.directory / f"feature_released_{int(epoch)}.bin"
        size, done = len(record), path.read_bytes() if path.exists() else b""
        if len(done) % size:
            raise ValueError(f"{path} is damaged: the run cannot be resumed under feature DP")
        if batch < len(done) // size:
            if done[batch * size:(batch + 1) * size] != record:
                raise ValueError(f"the resumed run's gradient of epoch {epoch}, batch {batch} differs from the one "
                                 "this party used before the interruption (other residuals): it stops rather than "
                                 "release the difference without noise")
            return
        if batch != len(done) // size:
            raise ValueError(f"batch {batch} of epoch {epoch} comes after {len(done) // size} recorded ones")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, record)
        finally:
            os.close(fd)

    @staticmethod
    def release(values: np.ndarray, steps: np.ndarray, step: float) -> np.ndarray:
        """``values`` rounded to multiples of ``step``, plus ``steps`` of them."""
        return (np.rint(np.asarray(values, float) / step) + steps) * step


def _prior(x, first: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Each later row's class probabilities from a model of the active's numeric columns fitted
    on the first rows' released labels (uniform when there is nothing to fit on)."""
    n_later = int((~first).sum())
    uniform = np.full((n_later, n_classes), 1.0 / n_classes)
    numeric = None if x is None else x.select_dtypes("number")
    if numeric is None or numeric.shape[1] == 0 or len(np.unique(labels)) < 2:
        return uniform
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    values = numeric.to_numpy(dtype=np.float64)
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(values[first], labels)                 # a smooth model: the labels it learns from are noisy
    prior = np.zeros((n_later, n_classes))
    prior[:, model.classes_.astype(np.int64)] = model.predict_proba(values[~first])
    return prior
