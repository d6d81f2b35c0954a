"""Errors of the PSI protocol roles."""
from __future__ import annotations


class PsiError(Exception):
    """Base class of the PSI roles' deliberate errors."""


class PsiInputError(PsiError, ValueError):
    """A party's own id list is unusable (empty, duplicated, wrong type)."""

    category = "data"


class PsiProtocolError(PsiError):
    """A peer's message does not fit the protocol state (wrong order, count or content)."""

    category = "protocol"


class PsiPolicyError(PsiError):
    """This party's PSI policy refuses what the exchange would reveal (sizes, share of its ids)."""

    category = "refused"


class InvalidPointError(PsiProtocolError):
    """A peer sent something that is not a valid group element array."""

