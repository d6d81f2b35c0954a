"""Differential privacy mechanisms: pure computation, every random draw from the operating
system (:mod:`secrets`), never from numpy's or Python's generators.

- :mod:`protocols.dp.samplers`: exact samplers of the discrete Laplace and discrete Gaussian
  distributions (integer noise with no floating-point leak).
- :mod:`protocols.dp.labels`: randomized response on class labels, with and without a prior.

Accounting (what ε and δ a job spent) is not here: it uses a maintained library, in
:mod:`vfl.privacy`.
"""
from protocols.dp.labels import keep_probability, randomized_response, rr_with_prior, uniform
from protocols.dp.samplers import bernoulli_exp, discrete_gaussian, discrete_gaussians, discrete_laplace

__all__ = ["bernoulli_exp", "discrete_gaussian", "discrete_gaussians", "discrete_laplace", "keep_probability",
           "randomized_response", "rr_with_prior", "uniform"]
