"""Large messages in bounded chunks.

A message whose frames exceed ``chunk_bytes`` travels as one ``S`` part (its header) and then
``C`` parts of at most ``chunk_bytes`` each. The sender copies one chunk at a time into ZeroMQ,
whose high-water marks block it while the receiver is behind (flow control: at most
``high_water_mark`` chunks queued on each side). The receiver checks the declared size against
its limit *before* allocating, then copies each chunk into one buffer of exactly that size:
the peak is one copy of the payload plus the chunks in flight.
"""
from __future__ import annotations

import time
from typing import Iterator

import msgpack
import numpy as np

from parties.runtime.errors import WireError
from parties.transport.codec import Header


def chunks(raws: list, chunk_bytes: int) -> Iterator[memoryview]:
    """Slices of the raw frames, each at most ``chunk_bytes`` (no copies)."""
    for raw in raws:
        view = memoryview(raw).cast("B")
        for off in range(0, view.nbytes, chunk_bytes):
            yield view[off:off + chunk_bytes]


def chunk_header(job: str, seq: int, index: int) -> bytes:
    return msgpack.packb([job, seq, index])


def parse_chunk_header(data) -> tuple[str, int, int]:
    try:
        job, seq, index = msgpack.unpackb(data, raw=False)
    except Exception:
        raise WireError("chunk header is malformed") from None
    if not isinstance(job, str) or not isinstance(seq, int) or not isinstance(index, int):
        raise WireError("chunk header has the wrong types")
    return job, seq, index


class Assembly:
    """One incoming stream being reassembled into a single preallocated buffer."""

    def __init__(self, header: Header, deadline: float):
        self.header = header
        self.total = sum(header.frames)
        self.buffer = np.empty(self.total, dtype=np.uint8)   # pages are touched as chunks arrive
        self.view = memoryview(self.buffer)
        self.offset = 0
        self.next_index = 0
        self.deadline = deadline

    def add(self, index: int, data: memoryview, chunk_bytes: int) -> bool:
        """Copy one chunk in; True when the stream is complete."""
        n = data.nbytes
        if index != self.next_index:
            raise WireError(f"chunk {index} arrived, expected {self.next_index}")
        if n == 0 or n > chunk_bytes or self.offset + n > self.total:
            raise WireError(f"chunk {index} of {n} bytes overruns the declared {self.total} bytes")
        self.view[self.offset:self.offset + n] = data
        self.offset += n
        self.next_index += 1
        return self.offset == self.total

    def frames(self) -> list[memoryview]:
        out, off = [], 0
        for n in self.header.frames:
            out.append(self.view[off:off + n])
            off += n
        return out

    def expired(self, now: float | None = None) -> bool:
        return (now or time.monotonic()) > self.deadline
