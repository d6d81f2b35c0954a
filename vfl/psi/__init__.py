"""Private set intersection on DataFrames: each party ends with its rows in one common order.

The active party calls :func:`align_active`, every passive :func:`align_passive` (or both
:func:`align` with ``role=``). Protocol, leakage and id rules: ``docs/psi.md``,
:mod:`protocols.psi` and :mod:`vfl.psi.ids`.
"""
from vfl.psi.driver import AlignResult, Disclosure, PsiPolicy, PsiReport, align, align_active, align_passive
from vfl.psi.ids import normalize_ids

__all__ = ["align", "align_active", "align_passive", "AlignResult", "Disclosure", "PsiPolicy", "PsiReport",
           "normalize_ids"]
