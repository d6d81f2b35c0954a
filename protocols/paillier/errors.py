"""Errors of the Paillier engine."""
from __future__ import annotations


class PaillierError(Exception):
    """Base class of the engine's deliberate errors."""

    category = "cryptography"      # what a peer is told when a party stops because of one


class KeySizeError(PaillierError, ValueError):
    """A key size below the secure minimum was requested without the test opt-in."""


class KeyMismatchError(PaillierError, ValueError):
    """Ciphertexts or keys that belong to different key pairs were combined."""


class EncodingError(PaillierError, ValueError):
    """A value cannot be encoded with the requested precision (NaN, inf, or out of range)."""


class DecryptionError(PaillierError):
    """Decryption failed. Deliberately opaque: it does not say why."""
