"""Shared fixtures. Keys are cached per session so tests stay fast."""
from __future__ import annotations

import pytest

from protocols.paillier import generate_keypair


@pytest.fixture(scope="session")
def small_keypair():
    """A 1024-bit key: far too small for real use, fine for testing the algebra quickly."""
    return generate_keypair(1024, allow_insecure_key_size_for_tests=True)


@pytest.fixture(scope="session")
def keypair_2048():
    return generate_keypair(2048)
