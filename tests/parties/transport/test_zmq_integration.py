"""The same behaviour over real processes and ZeroMQ with CURVE (marked ``integration``)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zmq
from party_scenarios import check_echoed, echo_initiator, raw_socket, sample_payloads, wait_for_log

from parties.jobs import run_job, start_job
from parties.jobs.echo import Echo, EchoDigest
from parties.jobs.launcher import LocalCluster, _die_with_parent
from parties.runtime.audit import job_report, read_entries
from parties.runtime.errors import JobRejectedError, PeerSilentError
from parties.runtime.keys import load_keypair, write_keypair
from parties.transport import codec
from parties.transport.messages import JobDone
from vfl.errors import PeerFailedError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
FAST = {"heartbeat_interval": 0.25, "peer_dead_after": 2.0, "recv_timeout": 15.0, "send_timeout": 5.0}


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(["bank", "insurer", "mallory"], serve=["insurer"], limits=FAST, core_only=True) as c:
        yield c


@pytest.fixture(scope="module")
def bank(cluster):
    return cluster.node("bank")


# -- round trips ------------------------------------------------------------------------------
def test_roundtrip_with_curve_and_ciphertexts(cluster, bank, small_keypair):
    pk, sk = small_keypair
    payloads = sample_payloads(pk, encrypted_len=4500)     # 1.15 MB of ciphertexts: streamed in chunks
    result = run_job(bank, "echo", {"rounds": len(payloads)}, ["insurer"], role=echo_initiator(payloads))
    check_echoed(payloads, result.result, sk)
    assert result.peer_results == {"insurer": {"rounds": len(payloads), "bytes": 0}}
    report = job_report(bank.audit.path, job=result.job)
    assert report["per_peer"]["insurer"]["bytes"] == result.stats["insurer"]["bytes_sent"]
    insurer_log = read_entries(os.path.join(cluster.dir, "insurer.audit.jsonl"))
    assert {e["kind"] for e in insurer_log if e["job"] == result.job} == {"party.job_ready", "party.echo",
                                                                          "party.job_done"}


def test_refused_jobs_say_why(bank):
    with pytest.raises(JobRejectedError, match="no job handler 'nope'"):
        start_job(bank, "nope", {}, ["insurer"], timeout=10)
    with pytest.raises(PeerFailedError, match="bad echo params"):
        run_job(bank, "echo", {"rounds": -1}, ["insurer"], timeout=10)


def test_unknown_key_is_refused_and_running_job_continues(cluster, bank, tmp_path):
    transport = start_job(bank, "echo", {"rounds": 2}, ["insurer"], timeout=10)
    try:
        echo_initiator([1])(transport)
        write_keypair(tmp_path, "intruder")
        ctx = zmq.Context()
        try:
            sock = raw_socket(cluster, ctx, "bank", keys=load_keypair(tmp_path / "intruder.key_secret"))
            header, raws = codec.encode(Echo(round=1, data="forged"), job=transport.job, seq=2)
            sock.send_multipart([b"M", header, *raws], zmq.NOBLOCK)
            wait_for_log(cluster, "insurer", "refused a connection with unknown CURVE key")
            sock.close()
        finally:
            ctx.destroy(linger=0)
        assert echo_initiator(["second"])(transport) == ["second"]
        assert transport.recv("insurer", JobDone, timeout=10).result["rounds"] == 2
    finally:
        transport.close()


def test_a_peer_is_known_by_its_key_not_by_the_name_it_claims(cluster, bank):
    transport = start_job(bank, "echo", {"rounds": 1}, ["insurer"], timeout=10)
    ctx = zmq.Context()
    try:
        sock = raw_socket(cluster, ctx, "mallory", identity="bank")      # listed key, borrowed name
        header, raws = codec.encode(Echo(round=0, data="forged"), job=transport.job, seq=1)
        sock.send_multipart([b"M", header, *raws])
        wait_for_log(cluster, "insurer", "mallory is not a party of job " + transport.job)
        assert echo_initiator(["genuine"])(transport) == ["genuine"]
        assert transport.recv("insurer", JobDone, timeout=10).result["rounds"] == 1
    finally:
        ctx.destroy(linger=0)
        transport.close()


# -- a live party under a stream of bad input ----------------------------------------------------
def test_bad_input_is_rejected_and_party_keeps_serving(cluster, bank):
    from party_fuzzing import Fuzzer
    before = cluster.log_text("insurer").count("rejected")
    with Fuzzer(cluster, raw_socket) as fuzzer:
        fuzzer.run(examples=3000)
        fuzzer.send_oversized()
    assert cluster.processes["insurer"].poll() is None
    result = run_job(bank, "echo", {"rounds": 2}, ["insurer"], role=echo_initiator([1, np.ones(3)]))
    assert result.result[0] == 1
    rejected = cluster.log_text("insurer").count("rejected") - before
    assert rejected >= 1500, rejected


# -- bounded memory for a 1M-ciphertext payload ---------------------------------------------------
def _status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_million_ciphertexts_stream_with_bounded_memory(cluster, bank):
    pid = cluster.pid("insurer")
    with open(f"/proc/{pid}/clear_refs", "w") as f:      # reset the peak-RSS counter of the child
        f.write("5")
    base = _status(pid, "VmRSS")
    # 1M fake 4096-bit (512-byte) ciphertexts: random bytes, not encryptions (keeps the test fast)
    block = np.frombuffer(os.urandom(1 << 22), dtype=np.uint8)
    payload = np.tile(block, 128)[:1_000_000 * 512].reshape(1_000_000, 512)
    start = time.monotonic()
    result = run_job(bank, "echo", {"rounds": 1, "mode": "digest"}, ["insurer"],
                     role=lambda t: (t.send("insurer", Echo(round=0, data=payload)), t.recv("insurer", EchoDigest))[1])
    elapsed = time.monotonic() - start
    import hashlib
    assert result.result.nbytes == payload.nbytes and result.result.sha256 == hashlib.sha256(payload).hexdigest()
    growth = _status(pid, "VmHWM") - base
    # one copy of the payload plus bounded chunk queues; an unchunked receive would need >= 2 copies
    assert growth < payload.nbytes + (96 << 20), \
        f"receiver grew {growth / 1e6:.0f} MB for {payload.nbytes / 1e6:.0f} MB"
    assert elapsed < 30


# -- failures --------------------------------------------------------------------------------------
def test_killed_passive_fails_the_initiator_within_the_timeout():
    with LocalCluster(["bank", "insurer"], limits=FAST, core_only=True) as cluster:
        bank = cluster.node("bank")
        transport = start_job(bank, "echo", {"rounds": 100}, ["insurer"], timeout=10)
        try:
            echo_initiator([1, 2])(transport)
            cluster.kill("insurer")
            start = time.monotonic()
            with pytest.raises(PeerSilentError, match="no party.echo from insurer: no heartbeat"):
                echo_initiator([3])(transport)
            assert time.monotonic() - start < FAST["peer_dead_after"] + 2
        finally:
            transport.close()


INITIATOR = """
import sys, time
from parties.runtime.config import load_config
from parties.transport.node import Node
from parties.jobs import start_job
from party_scenarios import echo_initiator
node = Node(load_config(sys.argv[1])).start()
t = start_job(node, "echo", {"rounds": 1000}, ["insurer"], timeout=10)
echo_initiator([1])(t)
print("EXCHANGING", t.job, flush=True)
time.sleep(60)
"""


def test_killed_initiator_ends_the_passive_job_and_it_keeps_serving(tmp_path):
    with LocalCluster(["bank", "insurer"], limits=FAST, core_only=True) as cluster:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__), *sys.path]))
        child = subprocess.Popen([sys.executable, "-c", INITIATOR, cluster.config_path("bank")], env=env,
                                 stdout=subprocess.PIPE, start_new_session=True, preexec_fn=_die_with_parent)
        try:
            line = child.stdout.readline().decode()
            assert line.startswith("EXCHANGING"), line
            job = line.split()[1]
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
            child.stdout.close()
        waited = wait_for_log(cluster, "insurer", f"job {job} (echo) failed: PeerSilentError",
                              timeout=FAST["peer_dead_after"] + 3)
        assert waited < FAST["peer_dead_after"] + 3
        bank = cluster.node("bank")          # same name, new process: ROUTER hand-over
        assert run_job(bank, "echo", {"rounds": 1}, ["insurer"], role=echo_initiator(["alive"])).result == ["alive"]


def test_insecure_mode_round_trip():
    with LocalCluster(["bank", "insurer"], insecure=True, limits=FAST, core_only=True) as cluster:
        bank = cluster.node("bank")
        assert run_job(bank, "echo", {"rounds": 1}, ["insurer"], role=echo_initiator([b"plain"])).result == [b"plain"]
        assert "WITHOUT encryption" in cluster.log_text("insurer")
