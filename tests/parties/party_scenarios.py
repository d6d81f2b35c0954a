"""Role bodies shared by the in-process unit tests and the ZeroMQ integration tests."""
from __future__ import annotations

import json
import os
import pathlib
import time

import numpy as np
import zmq

from parties.jobs.echo import Echo
from parties.runtime.keys import load_keypair, load_public_key


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


def wait_for_log(cluster, name: str, text: str, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if text in cluster.log_text(name):
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {name}'s log after {timeout} s:\n{cluster.log_text(name)[-3000:]}")


def raw_socket(cluster, ctx, name: str, *, keys=None, identity: str | None = None) -> zmq.Socket:
    """A bare DEALER to the insurer speaking as ``name`` (its keys unless ``keys`` given)."""
    pair = keys or load_keypair(os.path.join(cluster.dir, "keys", f"{name}.key_secret"))
    sock = ctx.socket(zmq.DEALER)
    sock.linger, sock.sndtimeo = 0, 5000
    sock.routing_id = (identity or name).encode()
    sock.curve_secretkey, sock.curve_publickey = pair.secret, pair.public
    sock.curve_serverkey = load_public_key(os.path.join(cluster.dir, "keys", "insurer.key"))
    sock.connect(cluster.endpoints["insurer"])
    return sock


def run_cli(*args, timeout: float = 240, env: dict | None = None):
    """``vfl ARGS`` as a separate process (``python -m parties.commands.cli``), output captured."""
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "parties.commands.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


THREE_PARTIES = """
[parties.bank]
role = "active"
data = "{bank}"
label = "y"
[parties.insurer]
role = "passive"
data = "{insurer}"
[parties.telco]
role = "passive"
data = "{telco}"
"""


def write_tables(directory, frames: dict) -> dict:
    """Each party's table as ``directory/NAME.csv``; the paths, by party."""
    paths = {}
    for name, frame in frames.items():
        paths[name] = pathlib.Path(directory) / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def run_local_job(directory, text: str) -> dict:
    """Write ``text`` as ``directory/job.toml``, run it with ``vfl run --local --json`` as a separate
    process, and return the report (the run must succeed)."""
    job = pathlib.Path(directory) / "job.toml"
    job.write_text(text)
    proc = run_cli("run", str(job), "--local", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def model_parts(out) -> dict:
    """Every party's model body (trees / coefficients, lookups) of a run directory, as saved."""
    parts = {}
    for path in sorted(pathlib.Path(out, "model").glob("*.json")):
        if path.name != "manifest.json":
            doc = json.loads(path.read_text())
            parts[path.stem] = {k: v for k, v in doc.items() if k in ("model", "arrays", "scalars")}
    return parts
