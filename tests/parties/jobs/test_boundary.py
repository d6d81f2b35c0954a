"""Between organisations: what crosses in errors, what reaches a log, what a peer can make a
party hold. Real processes; the parties behave as separate organisations
(``share_error_details`` off, as in a deployed config)."""
from __future__ import annotations

import os
import re
import time

import msgpack
import pytest
import zmq
from party_scenarios import raw_socket, wait_for_log

from parties.jobs import run_job, start_job
from parties.jobs.launcher import LocalCluster
from parties.runtime.errors import JobRejectedError
from parties.transport import codec
from parties.transport.messages import JobStart
from vfl.errors import PeerFailedError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
FAST = {"heartbeat_interval": 0.25, "peer_dead_after": 2.0, "recv_timeout": 15.0, "send_timeout": 5.0}


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(["bank", "insurer", "mallory"], serve=["insurer"], limits=FAST, core_only=True,
                      share_error_details=False) as c:
        yield c


@pytest.fixture(scope="module")
def bank(cluster):
    return cluster.node("bank")


def _error_id(text: str) -> str:
    match = re.search(r"error, id ([0-9a-f]{8})", text)
    assert match, text
    return match.group(1)


def test_a_refusal_crosses_as_a_category_and_an_id(cluster, bank):
    with pytest.raises(JobRejectedError) as refused:
        start_job(bank, "nope", {}, ["insurer"], timeout=10)
    text = str(refused.value)
    assert "insurer: refused error, id" in text and "registered" not in text and "echo" not in text
    wait_for_log(cluster, "insurer", _error_id(text))          # the detail, under the same id, stays there
    line = next(ln for ln in cluster.log_text("insurer").splitlines() if _error_id(text) in ln)
    assert "no job handler 'nope'" in line and "registered" in line


def test_a_failure_mid_job_crosses_as_a_category_and_an_id(cluster, bank):
    with pytest.raises(PeerFailedError) as failed:
        run_job(bank, "echo", {"rounds": -1, "mode": "secret-mode"}, ["insurer"], timeout=10)
    text = str(failed.value)
    assert "insurer: refused error, id" in text and "secret-mode" not in text
    wait_for_log(cluster, "insurer", _error_id(text))
    assert "secret-mode" in cluster.log_text("insurer")


def test_a_peer_cannot_forge_a_log_line(cluster):
    ctx = zmq.Context()
    try:
        sock = raw_socket(cluster, ctx, "mallory")
        forged = "x\n2026-12-02 04:00:00,000 INFO    [insurer] parties.jobs.server: job 1 (vfl.train) done"
        header = msgpack.packb({"v": codec.WIRE_VERSION, "job": forged, "seq": 0, "kind": forged, "frames": [],
                                "body": b"\x80"})
        sock.send_multipart([b"M", header])
        start = JobStart(handler=forged, params={}, parties=("mallory", "insurer"))
        sock.send_multipart([b"M", codec.encode(start, job="forgedjob", seq=0)[0]])
        wait_for_log(cluster, "insurer", "forgedjob")
    finally:
        ctx.destroy(linger=0)
    lines = cluster.log_text("insurer").splitlines()
    assert not any(line.startswith("2026-12-02 04:00:00,000") for line in lines)
    refusal = next(line for line in lines if "job forgedjob stopped" in line)    # quoted on one line
    assert "no job handler" in refusal and "2026-12-02 04:00:00,000 INFO" in refusal


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


def test_refused_jobs_do_not_pile_up_threads_when_the_initiator_is_gone(cluster):
    """mallory asks for 300 jobs the insurer refuses, and never listens for the answers."""
    pid = cluster.pid("insurer")
    before = _threads(pid)
    ctx = zmq.Context()
    try:
        sock = raw_socket(cluster, ctx, "mallory")
        for i in range(300):
            header, _ = codec.encode(JobStart(handler="nope", params={}, parties=("mallory", "insurer")),
                                     job=f"flood{i:04d}", seq=0)
            sock.send_multipart([b"M", header])
        wait_for_log(cluster, "insurer", "flood0299", timeout=20)
        time.sleep(0.5)
        assert _threads(pid) <= before + 4, (before, _threads(pid))
    finally:
        ctx.destroy(linger=0)
    assert cluster.processes["insurer"].poll() is None


def test_strangers_leave_a_trace_but_cannot_flood_the_log(cluster, tmp_path):
    import socket

    from parties.runtime.keys import load_keypair, write_keypair
    host, port = cluster.endpoints["insurer"].removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:      # not ZeroMQ at all
        s.sendall(b"GET / HTTP/1.0\r\n\r\n" * 4)
    wait_for_log(cluster, "insurer", "closed before any handshake")
    write_keypair(tmp_path, "stranger")
    ctx = zmq.Context()
    try:
        plain = ctx.socket(zmq.DEALER)                          # ZeroMQ without CURVE
        plain.linger = 0
        plain.connect(cluster.endpoints["insurer"])
        plain.send(b"H", zmq.NOBLOCK)
        wait_for_log(cluster, "insurer", "failed its CURVE handshake")
        for _ in range(20):                                     # the same unknown key, again and again
            sock = raw_socket(cluster, ctx, "bank", keys=load_keypair(tmp_path / "stranger.key_secret"))
            sock.send_multipart([b"H"], zmq.NOBLOCK)
            time.sleep(0.05)
            sock.close()
        wait_for_log(cluster, "insurer", "unknown CURVE key")
    finally:
        ctx.destroy(linger=0)
    time.sleep(0.5)
    assert cluster.log_text("insurer").count("unknown CURVE key") == 1        # one line a minute per key


def test_a_second_process_with_the_peer_s_key_cannot_hide_its_death():
    """The insurer dies mid-job while another process holding the insurer's key keeps sending
    heartbeats to the bank: the bank's job still fails within peer_dead_after, not recv_timeout."""
    import signal
    import threading

    from parties.jobs.echo import Echo
    from parties.runtime.errors import PeerSilentError
    from parties.runtime.keys import load_keypair, load_public_key
    with LocalCluster(["bank", "insurer"], limits=FAST, core_only=True) as cluster:
        bank = cluster.node("bank")
        transport = start_job(bank, "echo", {"rounds": 1, "delay": 30}, ["insurer"], timeout=10)
        ctx, stop = zmq.Context(), threading.Event()
        impostor = ctx.socket(zmq.DEALER)
        pair = load_keypair(os.path.join(cluster.dir, "keys", "insurer.key_secret"))
        impostor.linger, impostor.curve_secretkey, impostor.curve_publickey = 0, pair.secret, pair.public
        impostor.curve_serverkey = load_public_key(os.path.join(cluster.dir, "keys", "bank.key"))
        impostor.connect(cluster.config("bank").listen)

        def beat():
            while not stop.wait(0.1):
                impostor.send(b"H", zmq.NOBLOCK)
        beater = threading.Thread(target=beat, daemon=True)
        beater.start()
        try:
            transport.send("insurer", Echo(round=0, data="x"))
            time.sleep(0.5)
            cluster.kill("insurer", sig=signal.SIGKILL)
            start = time.monotonic()
            with pytest.raises(PeerSilentError):
                transport.recv("insurer", Echo)
            assert time.monotonic() - start < FAST["recv_timeout"] / 2
        finally:
            stop.set()
            beater.join()
            ctx.destroy(linger=0)
            transport.close()
