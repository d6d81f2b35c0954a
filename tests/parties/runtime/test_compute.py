"""A party's heavy work on its own Dask cluster: a LocalCluster of worker processes on loopback
with mutual TLS (certificates made here), checked against the local pool bit for bit."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from parties.runtime import compute  # noqa: E402
from parties.runtime.errors import ConfigError  # noqa: E402
from protocols import _workers  # noqa: E402
from protocols.paillier import EncryptedVector, PackedEncryptedVector  # noqa: E402
from protocols.paillier.vector import prefetch_randomizers  # noqa: E402
from protocols.psi import group, parallel  # noqa: E402


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """Two single-thread worker processes and a scheduler behind TLS; the party's certificate
    files (the same throwaway CA) written to disk as a config would name them."""
    from parties.runtime.dask_backend import loopback_cluster
    cluster, files = loopback_cluster(2, str(tmp_path_factory.mktemp("certs")))
    try:
        yield cluster, files
    finally:
        cluster.close(timeout=30)


@pytest.fixture
def backend(tls_cluster):
    cluster, files = tls_cluster
    installed = compute.install(compute.ComputeConfig(scheduler=cluster.scheduler_address, task_timeout=60, **files))
    try:
        yield installed
    finally:
        compute.uninstall(installed)


def _secret_kinds():
    from parties.runtime import dask_backend
    return [s[0] if isinstance(s, tuple) else type(s).__name__ for s in dask_backend._SECRETS.values()]


def _worker_secrets(backend):
    from parties.runtime import dask_backend
    return backend.client.run(lambda: sorted(dask_backend._SECRETS))


@pytest.mark.timeout(240)
def test_every_kind_of_work_equals_the_local_pool(backend, small_keypair, small_ou_keypair):
    pk, sk = small_keypair
    assert _workers.current_backend() is backend and backend.parallelism == 2
    rng = np.random.default_rng(0)
    with compute.job_scope():
        # Paillier: encryption (randomized: compare plaintexts), decryption, X.T @ [[d]]
        values = rng.normal(size=600)
        enc = EncryptedVector.encrypt(sk, values)
        np.testing.assert_allclose(enc.decrypt(sk), values, atol=1e-9)
        assert enc.decrypt(sk).tolist() == enc.decrypt(sk, workers=2).tolist()
        x = rng.normal(size=(600, 3))
        assert [int(c) for c in enc.matmul(x.T, frac_bits=16).ciphertexts] == \
            [int(c) for c in enc.matmul(x.T, frac_bits=16, workers=2).ciphertexts]
        assert len(prefetch_randomizers(pk, 300).result()) == 300
        # SecureBoost histograms under both schemes: group sums, compression, decryption
        for key in (sk, small_ou_keypair[1]):
            gh = PackedEncryptedVector.encrypt(key, rng.uniform(-1, 1, 1200), frac_bits=12, int_bits=1,
                                               sum_terms=600, slots=2, workers=1)
            bins = rng.integers(0, 3, 600)
            groups = [np.flatnonzero(bins == b) for b in range(3)] * 40
            import protocols.paillier.packing as packing
            old, packing.PARALLEL_GROUP_SUMS = packing.PARALLEL_GROUP_SUMS, 0
            scattered, scatter = [], backend.client.scatter
            backend.client.scatter = lambda data, **kw: scattered.append(data) or scatter(data, **kw)
            try:
                here, there = (gh.group_sums(groups, pad_to=600, segments=[3] * 40, workers=w) for w in (2, None))
            finally:
                packing.PARALLEL_GROUP_SUMS = old
                backend.client.scatter = scatter
            assert len(scattered) == 1 and scattered[0].count == 600    # the ciphertexts went to each worker once
            assert [int(c) for c in here.ciphertexts] == [int(c) for c in there.ciphertexts]
            packed = [v.compress(workers=w) for v, w in ((here, 2), (there, None))]
            assert [int(c) for c in packed[0].ciphertexts] == [int(c) for c in packed[1].ciphertexts]
            assert packed[1].decrypt_ints(key) == packed[0].decrypt_ints(key, workers=2)
        # PSI: hashing to the curve and scalar multiplication
        scalar, salt = group.Scalar.generate(), group.new_salt()
        items = [f"id-{i}".encode() for i in range(3000)]
        masked = parallel.hash_and_mask(items, salt, scalar, workers=None)
        assert (masked == parallel.hash_and_mask(items, salt, scalar, workers=2)).all()
        assert (parallel.mask(masked, scalar) == parallel.mask(masked, scalar, workers=2)).all()
        assert len(_worker_secrets(backend)[next(iter(backend.client.nthreads()))]) >= 3
    # the job is over: no worker holds any of its secrets
    assert all(names == [] for names in _worker_secrets(backend).values())


@pytest.mark.timeout(120)
def test_private_keys_can_stay_off_the_cluster(tls_cluster, small_keypair):
    cluster, files = tls_cluster
    installed = compute.install(compute.ComputeConfig(scheduler=cluster.scheduler_address,
                                                      private_key_on_cluster=False, **files))
    try:
        pk, sk = small_keypair
        with compute.job_scope():
            enc = EncryptedVector.encrypt(pk, np.arange(400.0))          # public-key work: on the cluster
            np.testing.assert_allclose(enc.decrypt(sk), np.arange(400.0))  # private-key work: here
            kinds = installed.client.run(_secret_kinds)
            assert sorted(kinds.values()) == [["public"], ["public"]]     # both workers: the public key only
    finally:
        compute.uninstall(installed)


def _slow_pairs(pk, count: int, exponent_bits: int = 120_000):
    """Exponentiations of about 0.15 s each (1024-bit key): pieces long enough to kill a worker under."""
    rng = np.random.default_rng(1)
    cts = EncryptedVector.encrypt(pk, rng.normal(size=count), workers=1).ciphertexts
    return [(c, (1 << exponent_bits) - 1 - i) for i, c in enumerate(cts)]


@pytest.mark.timeout(240)
def test_a_worker_killed_mid_task_is_retried_elsewhere(backend, small_keypair):
    """One worker process is SIGKILLed while pieces run on both: the scheduler reruns its pieces
    on the other worker (its nanny restarts it), and the result equals the local computation."""
    import threading

    from protocols.paillier import kernels
    from protocols.paillier.parallel import map_chunks
    pk, _ = small_keypair
    pairs = _slow_pairs(pk, 16)
    victim = next(iter(backend.client.run(os.getpid).values()))
    killer = threading.Timer(0.6, os.kill, (victim, signal.SIGKILL))
    with compute.job_scope():
        killer.start()
        start = time.monotonic()
        got = map_chunks(kernels.powmod_chunk, pk, pairs, workers=None, min_chunk=1)
        elapsed = time.monotonic() - start
    killer.join()
    assert elapsed > 0.6, "the pieces ended before the worker was killed: the test proves nothing"
    assert [int(c) for c in got] == [int(c) for c in kernels.powmod_chunk(pk, pairs)]
    backend.client.wait_for_workers(2, timeout=60)       # the nanny brought the worker back


@pytest.mark.timeout(120)
def test_a_scheduler_that_is_gone_fails_the_work_by_name(small_keypair):
    from distributed import LocalCluster

    from parties.runtime.dask_backend import ComputeError
    from protocols.paillier import kernels
    from protocols.paillier.parallel import map_chunks
    pk, _ = small_keypair
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, protocol="tcp://", host="127.0.0.1",
                           dashboard_address=":0", worker_dashboard_address=None)
    installed = compute.install(compute.ComputeConfig(scheduler=cluster.scheduler_address, insecure_plaintext=True,
                                                      task_timeout=20))
    try:
        pairs = _slow_pairs(pk, 8)
        import threading
        threading.Timer(0.5, cluster.close).start()
        start = time.monotonic()
        with pytest.raises(ComputeError, match="the party's cluster at tcp://127.0.0.1"):
            map_chunks(kernels.powmod_chunk, pk, pairs, workers=None, min_chunk=1)
        assert time.monotonic() - start < 60
    finally:
        compute.uninstall(installed)
        cluster.close()


def test_compute_config(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    ok = compute.parse_compute({"scheduler": "tls://10.0.0.5:8786", "ca_file": "ca.pem", "cert_file": "ca.pem",
                                "key_file": "ca.pem"}, lambda p: str(tmp_path / p))
    assert ok.scheduler == "tls://10.0.0.5:8786" and ok.ca_file == str(ca) and ok.private_key_on_cluster
    assert compute.parse_compute({}, str) == compute.ComputeConfig()
    assert compute.parse_compute({"workers": 3}, str).workers == 3
    for raw, match in [({"scheduler": "tcp://h:1"}, "insecure_plaintext"),
                       ({"scheduler": "tls://h:1"}, "needs ca_file"), ({"scheduler": "http://h"}, "tls://host:port"),
                       ({"workers": 0}, "positive integer"),
                       ({"workers": 2, "scheduler": "tcp://127.0.0.1:1", "insecure_plaintext": True}, "choose one"),
                       ({"task_timeout": 5}, "no scheduler"), ({"sheduler": "x"}, "unknown keys"),
                       ({"scheduler": "tls://h:1", "ca_file": "nope.pem", "cert_file": "ca.pem", "key_file": "ca.pem"},
                        "does not exist")]:
        with pytest.raises(ConfigError, match=match):
            compute.parse_compute(raw, lambda p: str(tmp_path / p))
    assert compute.parse_compute({"scheduler": "tcp://127.0.0.1:1", "insecure_plaintext": True},
                                 str).scheduler == "tcp://127.0.0.1:1"
    for raw, match in [({"scheduler": "tcp://10.0.0.5:8786", "insecure_plaintext": True}, "on this machine"),
                       ({"scheduler": "tls://h:port"}, "port number"), ({"scheduler": "tls://:8786"}, "port number"),
                       ({"workers": 2, "task_timeout": 5}, "no scheduler"),
                       ({"scheduler": "tcp://127.0.0.1:1", "insecure_plaintext": True, "task_timeout": float("inf")},
                        "finite")]:
        with pytest.raises(ConfigError, match=match):
            compute.parse_compute(raw, str)


def test_the_pool_size_is_capped_by_the_environment(monkeypatch):
    monkeypatch.setenv("VFL_WORKERS", "1")
    compute.install(compute.ComputeConfig(workers=4))
    assert _workers.resolve_workers() == 1
    monkeypatch.delenv("VFL_WORKERS")
    compute.install(compute.ComputeConfig(workers=3))
    assert _workers.resolve_workers() == 3 and _workers.installed_backend() is None


@pytest.mark.timeout(120)
def test_concurrent_jobs_hold_their_own_secrets(backend, small_keypair):
    """The same key in two jobs at once: each job registers it under its own random name, and
    the first job's end does not take it from the second."""
    import contextvars

    from parties.runtime import dask_backend
    pk, sk = small_keypair
    values = np.arange(300.0)
    second = contextvars.copy_context()          # another job's context (as its own thread would have)
    token = second.run(dask_backend.start_job_scope)
    with compute.job_scope():
        EncryptedVector.encrypt(pk, values)
        first_names = dict(dask_backend._JOB_SECRETS.get())
        second.run(EncryptedVector.encrypt, pk, values)
        second_names = second.run(lambda: dict(dask_backend._JOB_SECRETS.get()))
        assert set(first_names) == set(second_names) == {pk.token()}             # the same secret …
        assert first_names[pk.token()] != second_names[pk.token()]               # … under two names
    enc = second.run(EncryptedVector.encrypt, pk, values)       # the first job ended; the second still works
    np.testing.assert_allclose(second.run(enc.decrypt, sk), values)
    second.run(dask_backend.end_job_scope, token, backend)
    assert all(names == [] for names in _worker_secrets(backend).values())


@pytest.mark.timeout(120)
def test_the_secrets_of_a_party_that_died_are_dropped(tls_cluster, small_keypair):
    """A client that registers secrets and goes away without releasing them (a party killed
    mid-job): the scheduler's janitor drops them from the scheduler and every worker."""
    from distributed import Client
    from distributed.security import Security

    from parties.runtime.dask_backend import SecretJanitor, SecretPlugin
    cluster, files = tls_cluster
    sec = Security(tls_ca_file=files["ca_file"], tls_client_cert=files["cert_file"],
                   tls_client_key=files["key_file"], require_encryption=True)
    installed = compute.install(compute.ComputeConfig(scheduler=cluster.scheduler_address, **files))
    try:
        assert SecretJanitor.name in cluster.scheduler.plugins
        doomed = Client(cluster.scheduler_address, security=sec, set_as_default=False)
        name = f"vfl-secret-{doomed.id}-0123"
        doomed.register_plugin(SecretPlugin(name, ("private", 1, 2, 3, 5)), name=name)
        assert name in cluster.scheduler.worker_plugins
        doomed.close()                              # as if the party process had died
        deadline = time.monotonic() + 30
        while name in cluster.scheduler.worker_plugins and time.monotonic() < deadline:
            time.sleep(0.1)
        assert name not in cluster.scheduler.worker_plugins
        assert all(name not in names for names in _worker_secrets(installed).values())
    finally:
        compute.uninstall(installed)


@pytest.mark.timeout(60)
def test_an_unreachable_scheduler_fails_at_start():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]            # closed again: nothing listens there
    start = time.monotonic()
    with pytest.raises(ConfigError, match="cannot reach the scheduler"):
        compute.install(compute.ComputeConfig(scheduler=f"tcp://127.0.0.1:{port}", insecure_plaintext=True,
                                              connect_timeout=2))
    assert time.monotonic() - start < 30 and _workers.installed_backend() is None
