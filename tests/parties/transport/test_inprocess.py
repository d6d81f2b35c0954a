"""The in-process transport: the behaviour every transport must have."""
from __future__ import annotations

import time

import numpy as np
import pytest
from party_scenarios import check_echoed, echo_initiator, echo_passive, sample_payloads

from parties.jobs.echo import Echo, EchoDigest
from parties.runtime.audit import job_report, read_entries
from parties.runtime.errors import PeerSilentError
from parties.transport import codec
from parties.transport.inprocess import InProcessNetwork, local_transports
from parties.transport.messages import JobDone
from vfl.errors import PeerFailedError, PeerTimeoutError, UnexpectedMessageError


def test_echo_roundtrip_with_ciphertexts(small_keypair):
    pk, sk = small_keypair
    payloads = sample_payloads(pk)
    net = InProcessNetwork(["bank", "insurer"])
    out = net.run({"bank": echo_initiator(payloads), "insurer": echo_passive(len(payloads))}, timeout=30)
    check_echoed(payloads, out["bank"], sk)
    assert out["insurer"] == {"rounds": len(payloads)}


def test_stats_count_wire_bytes_symmetrically():
    net = InProcessNetwork(["a", "b"])
    net["a"].send("b", Echo(round=0, data=np.zeros(100)))
    net["b"].recv("a", Echo, timeout=1)
    header, raws = codec.encode(Echo(round=0, data=np.zeros(100)), job=net.job, seq=0)
    sent, received = net["a"].stats()["b"], net["b"].stats()["a"]
    assert sent.bytes_sent == received.bytes_received == codec.wire_size(header, raws)
    assert sent.messages_sent == received.messages_received == 1


def test_wrong_kind_names_expected_received_and_peer():
    t = local_transports(["bank", "insurer"])
    t["insurer"].send("bank", EchoDigest(round=0, sha256="x", nbytes=1))
    with pytest.raises(UnexpectedMessageError) as err:
        t["bank"].recv("insurer", Echo, timeout=1)
    assert (err.value.expected, err.value.received, err.value.peer) == ("party.echo", "party.echo_digest", "insurer")
    assert "expected party.echo, received party.echo_digest from insurer" in str(err.value)


def test_recv_accepts_a_tuple_of_kinds():
    t = local_transports(["a", "b"])
    t["a"].send("b", JobDone(result=1))
    assert t["b"].recv("a", (Echo, JobDone), timeout=1).result == 1


def test_timeout_names_peer_and_what_was_awaited():
    t = local_transports(["bank", "insurer"])
    start = time.monotonic()
    with pytest.raises(PeerTimeoutError, match="no party.echo from insurer within 0.3 s"):
        t["bank"].recv("insurer", Echo, timeout=0.3)
    assert time.monotonic() - start < 1.0


def test_closed_peer_fails_fast_like_a_dead_process():
    t = local_transports(["bank", "insurer"], timeout=30)
    t["insurer"].close()
    start = time.monotonic()
    with pytest.raises(PeerSilentError, match="insurer"):
        t["bank"].recv("insurer", Echo)
    assert time.monotonic() - start < 1.0


def test_failing_role_aborts_its_peers():
    def broken(transport):
        raise RuntimeError("disk full")

    net = InProcessNetwork(["bank", "insurer", "shop"], timeout=20)
    failures = {}

    def waiter(name):
        def role(transport):
            try:
                transport.recv("insurer", Echo)
            except PeerFailedError as exc:
                failures[name] = exc
                raise
        return role

    start = time.monotonic()
    with pytest.raises(RuntimeError, match="disk full"):
        net.run({"insurer": broken, "bank": waiter("bank"), "shop": waiter("shop")})
    assert time.monotonic() - start < 5
    assert set(failures) == {"bank", "shop"}
    assert failures["bank"].peer == "insurer" and "RuntimeError: disk full" in failures["bank"].reason


def test_replayed_and_out_of_order_messages_are_dropped(caplog):
    net = InProcessNetwork(["a", "b"])
    header, raws = codec.encode(Echo(round=0, data=1), job=net.job, seq=0)
    net.deliver("a", "b", header, raws)
    net.deliver("a", "b", header, raws)                                   # replay
    later, raws2 = codec.encode(Echo(round=5, data=1), job=net.job, seq=5)
    net.deliver("a", "b", later, raws2)                                   # gap
    other, raws3 = codec.encode(Echo(round=0, data=1), job="otherjob", seq=1)
    net.deliver("a", "b", other, raws3)                                   # another job
    net.deliver("a", "b", b"\x00garbage", [])                             # malformed
    assert net["b"].recv("a", Echo, timeout=1).round == 0
    with pytest.raises(PeerTimeoutError):
        net["b"].recv("a", Echo, timeout=0.2)
    assert net["b"].inbox.rejected == 4
    text = caplog.text
    assert "replayed" in text and "out-of-order" in text and "unknown job" in text


def test_malformed_body_is_dropped_and_the_party_keeps_receiving():
    net = InProcessNetwork(["a", "b"])
    header, _ = codec.encode(Echo(round=0, data=np.ones(2)), job=net.job, seq=0)
    net.deliver("a", "b", header, [b"short"])                             # truncated frame
    net["a"]._next_seq["b"] = 1
    net["a"].send("b", Echo(round=1, data="ok"))
    assert net["b"].recv("a", Echo, timeout=1).data == "ok"
    assert net["b"].inbox.rejected == 1


def test_oversized_message_rejected_by_receiver_limits():
    net = InProcessNetwork(["a", "b"], limits=codec.CodecLimits(max_message_bytes=10_000))
    with pytest.raises(ValueError, match="exceeds"):
        net["a"].send("b", Echo(round=0, data=np.zeros(5000)))


def test_unknown_peer_is_an_error():
    t = local_transports(["a", "b"])
    with pytest.raises(ValueError, match="not a party"):
        t["a"].send("c", Echo(round=0, data=1))


def test_audit_log_and_report(tmp_path):
    net = InProcessNetwork(["bank", "insurer", "shop"], audit_dir=str(tmp_path))
    with net["bank"].in_phase("psi"):
        net["bank"].broadcast(Echo(round=0, data=b"x" * 10))
    net["bank"].send("insurer", Echo(round=1, data=np.zeros(10)))
    entries = read_entries(tmp_path / "bank.audit.jsonl")
    assert [(e["peer"], e["phase"], e["seq"]) for e in entries] == [("insurer", "psi", 0), ("shop", "psi", 0),
                                                                    ("insurer", "party", 1)]
    assert all(len(e["sha256"]) == 64 and e["job"] == net.job for e in entries)
    report = job_report(tmp_path / "bank.audit.jsonl", job=net.job)
    stats = net["bank"].stats()
    assert report["per_peer"]["insurer"]["bytes"] == stats["insurer"].bytes_sent
    assert report["per_phase"]["psi"]["messages"] == 2 and report["messages"] == 3


def test_public_key_registration(small_keypair):
    from protocols.paillier import EncryptedVector
    pk, sk = small_keypair
    t = local_transports(["a", "b"])
    t["b"].register_public_key(pk)
    t["a"].send("b", Echo(round=0, data=EncryptedVector.encrypt(pk, np.array([4.0]))))
    assert t["b"].recv("a", Echo, timeout=5).data.decrypt(sk)[0] == 4.0
    assert pk.fingerprint in t["b"].keyring


def test_record_keeps_what_each_party_received():
    import numpy as np

    from parties.transport.inprocess import InProcessNetwork
    from vfl.linear.messages import PartialScores

    net = InProcessNetwork(["a", "b"], record=True, timeout=5)
    net.run({"a": lambda t: t.send("b", PartialScores(np.arange(3.0))),
             "b": lambda t: t.recv("a", PartialScores)})
    assert net["a"].received == []
    (sender, message), = net["b"].received
    assert sender == "a" and np.array_equal(message.scores, np.arange(3.0))
