"""The estimator contract every role of every model family follows (scikit-learn's).

Hyperparameters are the keyword arguments of ``__init__``, stored unvalidated; ``fit``
validates them against the class's ``_parameter_constraints`` (:mod:`vfl.validation`) and
``_check_params``, and returns ``self``. Learned attributes end in ``_`` and hold only this
party's part. A method that needs a fitted model raises :class:`~vfl.errors.NotFittedError`.
"""
from __future__ import annotations

import inspect
from typing import ClassVar

import pandas as pd

from vfl.errors import DataError, NotFittedError
from vfl.validation import check_params


class Estimator:
    """``get_params``/``set_params``, parameter validation, fitted checks, feature names."""

    _parameter_constraints: ClassVar[dict] = {}
    _fitted_attribute: ClassVar[str] = ""       # the learned attribute whose presence means "fitted"

    @classmethod
    def _param_names(cls) -> list[str]:
        """The keyword parameters of ``__init__`` along the class hierarchy, in order."""
        names: list[str] = []
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            for p in inspect.signature(init).parameters.values():
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self" and p.name not in names:
                    names.append(p.name)
        return names

    @classmethod
    def default_params(cls) -> dict:
        return cls().get_params()

    def get_params(self) -> dict:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        known = self._param_names()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no parameters {unknown} (parameters: {known})")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def _validate_params(self) -> None:
        """Raise ``ValueError`` naming the first bad hyperparameter."""
        check_params(self.get_params(), self._parameter_constraints, type(self).__name__)
        self._check_params()

    def _check_params(self) -> None:
        """Rules that tie several hyperparameters together (none by default)."""

    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attribute):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def _set_feature_names(self, X) -> None:
        """``feature_names_in_`` from a DataFrame's columns (kept when given an array)."""
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = [str(c) for c in X.columns]

    def _columns_for(self, X, party: str):
        """A DataFrame's columns put in the order the model was fitted on (arrays are taken as is)."""
        names = getattr(self, "feature_names_in_", None)
        if not isinstance(X, pd.DataFrame) or not names:
            return X
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise DataError(f"{party}: the model was fitted on columns {missing} that the table lacks")
        return X[names]

    def __repr__(self) -> str:
        defaults = {}
        try:
            defaults = type(self).default_params()
        except TypeError:                          # an estimator with required parameters
            pass
        changed = {k: v for k, v in self.get_params().items() if k not in defaults or defaults[k] != v}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"
