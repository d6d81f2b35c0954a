"""Generated bad input for a live party: garbage, truncated, mutated, replayed, oversized.

The fuzzer speaks as ``mallory``, a listed (authenticated) peer — the worst case: a partner
whose process is compromised or buggy. It opens a job on the insurer so that bad messages reach
every layer (framing, header, sequence, body, schema), and listens on mallory's port so the
insurer's answers have somewhere to go.
"""
from __future__ import annotations

import os

import msgpack
import numpy as np
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parties.jobs.echo import Echo
from parties.runtime.keys import load_keypair
from parties.transport import codec, streams
from parties.transport.messages import JobStart

_KINDS = [b"M", b"S", b"C", b"H", b"", b"X"]


def _index(data, n: int) -> int:
    """An index below n, drawn with fixed bounds (the generator's state must not shape the draws)."""
    return data.draw(st.integers(0, 1 << 16)) % max(n, 1)


class Fuzzer:
    def __init__(self, cluster, raw_socket):
        self.cluster, self._raw_socket = cluster, raw_socket
        self.job = os.urandom(8).hex()
        self.seq = 0
        self.sent = 0

    def __enter__(self) -> "Fuzzer":
        self.ctx = zmq.Context()
        self.sink = self.ctx.socket(zmq.ROUTER)         # mallory's port: drain the insurer's answers
        pair = load_keypair(os.path.join(self.cluster.dir, "keys", "mallory.key_secret"))
        self.sink.linger, self.sink.curve_server = 0, True
        self.sink.curve_secretkey, self.sink.curve_publickey = pair.secret, pair.public
        self.sink.bind(self.cluster.config("mallory").listen)
        self.sock = self._raw_socket(self.cluster, self.ctx, "mallory")
        self._send_message(JobStart(handler="echo", params={"rounds": 100_000}, parties=("mallory", "insurer")))
        return self

    def __exit__(self, *exc) -> None:
        self.ctx.destroy(linger=0)

    def _send(self, parts: list) -> None:
        self.sock.send_multipart(parts)
        self.sent += 1
        while self.sink.poll(0):
            self.sink.recv_multipart()

    def _send_message(self, message, seq: int | None = None, job: str | None = None) -> tuple[bytes, list]:
        header, raws = codec.encode(message, job=job or self.job, seq=self.seq if seq is None else seq)
        self._send([b"M", header, *[bytes(memoryview(r)) for r in raws]])
        if seq is None and job is None:
            self.seq += 1
        return header, raws

    def run(self, examples: int) -> None:
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def one(data):
            getattr(self, data.draw(st.sampled_from(["garbage", "mutated", "sequence", "stream"])))(data)
        one()

    def garbage(self, data) -> None:
        kind = data.draw(st.sampled_from(_KINDS) | st.binary(min_size=1, max_size=3))
        self._send([kind, *data.draw(st.lists(st.binary(max_size=128), max_size=3))])

    def mutated(self, data) -> None:
        """A valid message with its body or frames broken (header intact: it uses a sequence number)."""
        header, raws = codec.encode(Echo(round=1, data=np.arange(data.draw(st.integers(1, 40)))), job=self.job,
                                    seq=self.seq)
        frames = [bytearray(memoryview(r).cast("B")) for r in raws]
        how = data.draw(st.sampled_from(["truncate", "drop", "extra", "flip_frame", "body"]))
        if how == "truncate":
            frames[0] = frames[0][:_index(data, len(frames[0]))]
        elif how == "drop":
            frames = []
        elif how == "extra":
            frames.append(bytearray(b"extra"))
        elif how == "flip_frame":
            frames[0][_index(data, len(frames[0]))] ^= 0xFF   # wrong values, right size
        else:
            h = msgpack.unpackb(header)
            body = bytearray(h["body"])
            body[_index(data, len(body))] = data.draw(st.integers(0, 255))
            h["body"] = bytes(body)
            header = msgpack.packb(h)
        self._send([b"M", header, *map(bytes, frames)])
        self.seq += 1

    def sequence(self, data) -> None:
        """Replays, gaps, other jobs, and now and then a valid message that must get through."""
        how = data.draw(st.sampled_from(["replay", "gap", "unknown_job", "valid", "header_bytes"]))
        message = Echo(round=2, data=data.draw(st.text(max_size=20)))
        offset, cut = data.draw(st.integers(1, 1000)), data.draw(st.integers(0, 1 << 16))
        if how == "replay" and self.seq:
            self._send_message(message, seq=offset % self.seq)
        elif how == "gap":
            self._send_message(message, seq=self.seq + offset)
        elif how == "unknown_job":
            self._send_message(message, seq=offset % 4, job=os.urandom(4).hex())
        elif how == "valid":
            self._send_message(message)
        else:
            header, raws = codec.encode(message, job=self.job, seq=self.seq)
            self._send([b"M", header[:cut % len(header)], *raws])

    def stream(self, data) -> None:
        """Stream starts that lie about sizes, chunks out of order or for unknown streams."""
        how = data.draw(st.sampled_from(["huge", "orphan_chunk", "bad_chunks"]))
        if how == "huge":
            h = {"v": codec.WIRE_VERSION, "job": self.job, "seq": self.seq, "kind": Echo.KIND, "frames": [1 << 40],
                 "body": b""}
            self._send([b"S", msgpack.packb(h)])
        elif how == "orphan_chunk":
            self._send([b"C", streams.chunk_header(self.job, 10**6, 0), b"data"])
        else:
            header, _ = codec.encode(Echo(round=3, data=np.zeros(300_000, np.uint8)), job=self.job, seq=self.seq)
            self._send([b"S", header])
            self._send([b"C", streams.chunk_header(self.job, self.seq, 1), b"x" * 100])   # chunk 0 missing

    def send_oversized(self) -> None:
        """Frames above the codec limit (rejected) and above ZeroMQ's MAXMSGSIZE (connection dropped)."""
        h = {"v": codec.WIRE_VERSION, "job": self.job, "seq": self.seq, "kind": Echo.KIND, "frames": [],
             "body": b"x" * (1 << 20)}
        self._send([b"M", msgpack.packb(h)])
        self._send([b"M", b"\x00" * (4 << 20)])
