"""Stream reassembly, inbox bounds, log formats."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from parties.jobs.echo import Echo
from parties.runtime.audit import job_report, render_report
from parties.runtime.errors import WireError
from parties.runtime.logs import JsonFormatter
from parties.transport import codec, streams
from parties.transport.link import JobInbox


def _stream(n_bytes: int, chunk: int):
    header, raws = codec.encode(Echo(round=0, data=np.arange(n_bytes, dtype=np.uint8)), job="j", seq=0)
    return codec.parse_header(header, codec.CodecLimits()), list(streams.chunks(raws, chunk))


def test_chunks_reassemble_into_the_declared_frames():
    header, parts = _stream(1000, 64)
    assert len(parts) == 16 and all(p.nbytes <= 64 for p in parts)
    assembly = streams.Assembly(header, deadline=1e18)
    done = [assembly.add(i, p, 64) for i, p in enumerate(parts)]
    assert done == [False] * 15 + [True]
    message = codec.decode(header, assembly.frames(), codec.Keyring())
    assert np.array_equal(message.data, np.arange(1000, dtype=np.uint8))


@pytest.mark.parametrize("index, size, match", [(1, 10, "expected 0"), (0, 65, "overruns"), (0, 0, "overruns")])
def test_bad_chunks(index, size, match):
    header, _ = _stream(100, 64)
    with pytest.raises(WireError, match=match):
        streams.Assembly(header, deadline=1e18).add(index, memoryview(b"x" * size), 64)


def test_chunk_beyond_declared_total():
    header, parts = _stream(100, 64)
    assembly = streams.Assembly(header, deadline=1e18)
    assembly.add(0, parts[0], 64)
    with pytest.raises(WireError, match="overruns"):
        assembly.add(1, memoryview(b"x" * 64), 64)


@pytest.mark.parametrize("data", [b"\xc1", b"\x93\x01\x02\x03", b"\x93\xa1j\xa1x\x01"])
def test_malformed_chunk_headers(data):
    with pytest.raises(WireError):
        streams.parse_chunk_header(data)


def test_inbox_bounds_unread_bytes():
    inbox = JobInbox("j", ["a"], max_queued_bytes=400)   # each message is ~160 bytes
    messages = []
    for seq in range(3):
        header, raws = codec.encode(Echo(round=seq, data=b"x" * 100), job="j", seq=seq)
        messages.append((codec.parse_header(header, codec.CodecLimits()), raws))
    assert inbox.deliver("a", *messages[0]) and inbox.deliver("a", *messages[1])
    assert not inbox.deliver("a", *messages[2])            # would exceed 400 unread bytes
    inbox.get("a", 0)
    assert inbox.deliver("a", *messages[2])                 # room again once read
    assert not inbox.deliver("b", *messages[0])             # not a party of the job


def test_json_log_lines_are_json():
    record = logging.LogRecord("parties.wire", logging.ERROR, __file__, 1, "rejected %s", ("x",), None)
    entry = json.loads(JsonFormatter("bank").format(record))
    assert entry["message"] == "rejected x" and entry["party"] == "bank" and entry["level"] == "ERROR"


def test_report_rendering():
    entries = [{"job": "j", "peer": "insurer", "phase": "psi", "kind": "psi.a", "bytes": 10},
               {"job": "j", "peer": "shop", "phase": "lr", "kind": "lr.b", "bytes": 5},
               {"job": "k", "peer": "shop", "phase": "lr", "kind": "lr.b", "bytes": 7}]
    report = job_report(entries, job="j")
    assert report["bytes"] == 15 and report["per_phase"]["lr"] == {"messages": 1, "bytes": 5}
    assert "insurer" in render_report(report)
