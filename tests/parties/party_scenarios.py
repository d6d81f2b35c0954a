"""Role bodies shared by the in-process unit tests and the ZeroMQ integration tests."""
from __future__ import annotations

import numpy as np

from parties.jobs.echo import Echo


def echo_initiator(payloads: list, peer: str = "insurer"):
    """Initiator role of the built-in ``echo`` job: send each payload, collect the answers."""
    def role(transport):
        answers = []
        for i, data in enumerate(payloads):
            transport.send(peer, Echo(round=i, data=data))
            answers.append(transport.recv(peer, Echo).data)
        return answers
    return role


def echo_passive(rounds: int, initiator: str = "bank"):
    """The same as the built-in handler, written as a role for the in-process network."""
    def role(transport):
        for i in range(rounds):
            message = transport.recv(initiator, Echo)
            transport.send(initiator, Echo(round=i, data=message.data))
        return {"rounds": rounds}
    return role


def sample_payloads(public_key=None, encrypted_len: int = 5) -> list:
    from protocols.paillier import EncryptedVector
    payloads = [np.arange(12, dtype=np.float64).reshape(3, 4), b"\x00" * 100_000,
                {"ids": ["a", "b"], "n": 3, "w": np.array([1, -2], dtype=np.int32), "f": 0.5, "none": None}]
    if public_key is not None:
        payloads.append({"pk": public_key,
                         "ev": EncryptedVector.encrypt(public_key, np.linspace(-1, 1, encrypted_len))})
    return payloads


def check_echoed(sent: list, received: list, private_key=None) -> None:
    assert len(sent) == len(received)
    for a, b in zip(sent, received):
        _same(a, b, private_key)


def _same(a, b, private_key) -> None:
    from protocols.paillier import EncryptedVector
    if isinstance(a, np.ndarray):
        assert b.dtype == a.dtype and np.array_equal(a, b)
    elif isinstance(a, EncryptedVector):       # same values; re-randomized on the way back
        assert len(b) == len(a) and b.exponent == a.exponent and b.mag_bits == a.mag_bits
        assert b.ciphertexts[:3] != a.ciphertexts[:3]
        np.testing.assert_allclose(b[:3].decrypt(private_key), a[:3].decrypt(private_key))
    elif isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            _same(a[k], b[k], private_key)
    else:
        assert a == b
