"""Public recipes for nonlinear functions on secret shares: polynomial sigmoids and Newton
iterations for the reciprocal and the inverse square root.

Pure data and plaintext reference code: the shares themselves are handled by
:class:`vfl.mpc.MpcSession` (``sigmoid``, ``reciprocal``, ``inv_sqrt``), which evaluates exactly
these recipes with Beaver products and truncations. Every recipe states the interval where it
holds and its error there (:func:`sigmoid_error`); a value outside the interval is not clipped
by the recipe and its result is meaningless: clip it first (:meth:`vfl.mpc.MpcSession.clip`).

Sigmoids (the menu SecretFlow's SS-GLM offers, without its comparison-based ones):

- ``t1``: ``1/2 + x/4`` — Taylor order 1 at 0 (no multiplication).
- ``t3``: ``1/2 + x/4 − x³/48``.
- ``t5``: ``1/2 + x/4 − x³/48 + x⁵/480``.
- ``cheb7`` / ``cheb9`` / ``cheb15``: the degree-7 / 9 / 15 Chebyshev interpolant of σ on
  [−8, 8], evaluated in ``t = x/8`` (largest error 0.030 / 0.014 / 0.0014 there; cheb15's
  coefficients reach 254, still far inside the fixed point's range).

Newton iterations (public bounds ``lo ≤ x ≤ hi``, x > 0):

- reciprocal ``y ← y·(2 − x·y)`` from ``y₀ = 1/hi``: the relative error ``e = 1 − x·y`` squares
  every step, starting at ``1 − lo/hi``;
- inverse square root ``y ← y·(3 − x·y²)/2`` from ``y₀ = 1/√hi``: ``e = 1 − x·y²`` goes to
  ``e²(3 + e)/4``... (:func:`newton_steps` counts the steps to reach 2^-f from the worst start).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import chebyshev

CHEB_RANGE = 8.0

_TAYLOR = {
    "t1": [0.5, 0.25],
    "t3": [0.5, 0.25, 0.0, -1.0 / 48],
    "t5": [0.5, 0.25, 0.0, -1.0 / 48, 0.0, 1.0 / 480],
}


def _cheb(degree: int) -> list[float]:
    """Power-basis coefficients in t = x/8 of the Chebyshev interpolant of σ(8t) on [−1, 1]. The
    nodes are symmetric and σ − 1/2 is odd, so the interpolant is 1/2 plus an odd polynomial:
    the even coefficients the change of basis leaves (rounding, below 10⁻¹⁰) are set to zero."""
    fit = chebyshev.Chebyshev.interpolate(lambda t: 1.0 / (1.0 + np.exp(-CHEB_RANGE * t)), degree)
    coeffs = [float(c) for c in fit.convert(kind=np.polynomial.Polynomial).coef]
    return [0.5 if k == 0 else 0.0 if k % 2 == 0 else c for k, c in enumerate(coeffs)]


SIGMOIDS: dict[str, tuple[list[float], float]] = {   # name -> (coefficients, 1/scale of x)
    **{name: (coeffs, 1.0) for name, coeffs in _TAYLOR.items()},
    "cheb7": (_cheb(7), CHEB_RANGE),
    "cheb9": (_cheb(9), CHEB_RANGE),
    "cheb15": (_cheb(15), CHEB_RANGE),
}


def sigmoid_plain(x, method: str) -> np.ndarray:
    """The recipe in floating point (what the shares compute, up to fixed-point rounding)."""
    coeffs, scale = SIGMOIDS[method]
    t = np.asarray(x, dtype=float) / scale
    acc = np.full_like(t, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = acc * t + c
    return acc


def sigmoid_error(method: str, lo: float, hi: float, points: int = 20001) -> float:
    """Largest |recipe − σ| on [lo, hi] (floating point, on a fine grid)."""
    x = np.linspace(lo, hi, points)
    return float(np.max(np.abs(sigmoid_plain(x, method) - 1.0 / (1.0 + np.exp(-x)))))


def odd_part(method: str) -> tuple[float, list[float]] | None:
    """``(c₀, [c₁, c₃, c₅, …])`` when the recipe is ``c₀ + t·q(t²)`` (σ − 1/2 is odd, and so are
    the Taylor and Chebyshev recipes of it), else None."""
    coeffs = SIGMOIDS[method][0]
    if len(coeffs) < 4 or any(c != 0.0 for c in coeffs[2::2]):
        return None
    return coeffs[0], list(coeffs[1::2])


def multiplications(method: str) -> int:
    """Beaver products one evaluation needs per value: an odd recipe ``c₀ + t·q(t²)`` takes t²,
    Horner in t² (degree of q − 1: its first product is by a public number) and t·q; any other
    takes Horner in t (degree − 1)."""
    odd = odd_part(method)
    if odd is not None:
        return len(odd[1])
    return max(len(SIGMOIDS[method][0]) - 2, 0)


def newton_steps(kind: str, lo: float, hi: float, frac_bits: int) -> int:
    """Steps that bring the worst start on [lo, hi] within 2^-frac_bits relative error."""
    if not 0 < lo <= hi:
        raise ValueError(f"Newton iterations need 0 < lo <= hi, got {lo}, {hi}")
    e, target, steps = 1.0 - lo / hi, 2.0 ** -frac_bits, 0
    while e > target:
        e = e * e if kind == "reciprocal" else e * e * (3 + e) / 4 if kind == "inv_sqrt" else math.nan
        if math.isnan(e):
            raise ValueError(f"unknown iteration {kind!r}")
        steps += 1
        if steps > 64:
            raise ValueError(f"[{lo}, {hi}] is too wide for {kind} from a fixed start")
    return steps
