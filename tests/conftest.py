"""Shared fixtures. Keys are cached per session so tests stay fast."""
from __future__ import annotations

import pytest

from protocols.paillier import generate_keypair, generate_ou_keypair


@pytest.fixture(scope="session")
def small_keypair():
    """A 1024-bit key: far too small for real use, fine for testing the algebra quickly."""
    return generate_keypair(1024, allow_insecure_key_size_for_tests=True)


@pytest.fixture(scope="session")
def keypair_2048():
    return generate_keypair(2048)


@pytest.fixture(scope="session")
def small_ou_keypair():
    """A 1024-bit Okamoto–Uchiyama key (p of 341 bits): for tests only, like ``small_keypair``."""
    return generate_ou_keypair(1024, allow_insecure_key_size_for_tests=True)


@pytest.fixture(scope="session", params=["paillier", "ou"])
def packing_keypair(request, small_keypair, small_ou_keypair):
    """Each scheme the packed vectors (and SecureBoost) run on, in turn."""
    return small_keypair if request.param == "paillier" else small_ou_keypair
