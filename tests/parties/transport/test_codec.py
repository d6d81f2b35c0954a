"""Wire codec: round trips, and a negative test for every validation branch."""
from __future__ import annotations

import dataclasses
from typing import Optional

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parties.jobs.echo import Echo
from parties.runtime.errors import WireError
from parties.transport import codec
from parties.transport.messages import JobStart
from protocols.paillier import EncryptedVector, OUPublicKey, PackedEncryptedVector, PublicKey
from vfl.messages import Message

LIMITS = codec.CodecLimits(max_header_bytes=4096, max_frames=8, max_message_bytes=1 << 20)


@dataclasses.dataclass(frozen=True)
class Typed(Message):
    KIND = "test.codec_typed"
    count: int
    ratio: float
    name: str
    tags: tuple[str, ...]
    weights: np.ndarray
    extra: Optional[dict[str, int]] = None


@dataclasses.dataclass(frozen=True)
class PaillierOnly(Message):
    KIND = "test.codec_paillier_only"
    public_key: PublicKey


def roundtrip(message, keyring=None, limits=codec.CodecLimits()):
    header, raws = codec.encode(message, job="job1", seq=7)
    parsed = codec.parse_header(header, limits)
    assert (parsed.job, parsed.seq, parsed.kind) == ("job1", 7, message.KIND)
    assert parsed.size == codec.wire_size(header, raws)
    return codec.decode(parsed, [bytes(memoryview(r)) for r in raws], codec.Keyring() if keyring is None else keyring)


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "int8", "uint16", "bool", "complex128"])
def test_arrays_keep_dtype_shape_and_are_read_only(dtype):
    arr = (np.arange(24) % 3).astype(dtype).reshape(2, 3, 4)
    out = roundtrip(Echo(round=1, data=arr)).data
    assert out.dtype == arr.dtype and out.shape == arr.shape and np.array_equal(out, arr)
    assert not out.flags.writeable


def test_empty_and_non_contiguous_arrays():
    base = np.arange(20.0).reshape(4, 5)
    out = roundtrip(Echo(round=0, data=[np.empty((0, 3)), base[:, ::2]])).data
    assert out[0].shape == (0, 3) and np.array_equal(out[1], base[:, ::2])


def test_plain_values_and_large_bytes():
    data = {"s": "é", "i": -3, "f": 1.5, "b": b"xy", "big": b"z" * (codec.INLINE_BYTES_MAX + 1), "l": [1, None, True],
            "np": np.int64(4), 5: "int key"}
    out = roundtrip(Echo(round=0, data=data)).data
    assert out["big"] == data["big"] and out["np"] == 4 and out[5] == "int key" and out["l"] == [1, None, True]


def test_schema_types_are_checked_and_tuples_restored():
    msg = Typed(count=2, ratio=0.5, name="x", tags=("a", "b"), weights=np.ones(3), extra={"k": 1})
    out = roundtrip(msg)
    assert out.tags == ("a", "b") and out.extra == {"k": 1}
    assert roundtrip(Typed(1, 2, "n", (), np.ones(1))).ratio == 2.0       # int accepted for float


def test_paillier_objects(small_keypair):
    pk, sk = small_keypair
    ev = EncryptedVector.encrypt(pk, np.array([0.25, -7.0, 3.0]))
    ring = codec.Keyring()
    out = roundtrip(Echo(round=0, data={"pk": pk, "ev": ev}), ring).data
    assert out["pk"] == pk and pk.fingerprint in ring
    np.testing.assert_allclose(out["ev"].decrypt(sk), [0.25, -7.0, 3.0])
    packed = PackedEncryptedVector.encrypt(pk, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(roundtrip(Echo(round=0, data=packed), ring).data.decrypt(sk), [1, 2, 3])


def test_ou_keys_and_vectors_and_where_they_are_refused(small_ou_keypair, small_keypair):
    from vfl.secureboost import messages as sbt
    pk, sk = small_ou_keypair
    ring = codec.Keyring()
    setup = sbt.Setup(public_key=pk, n_rows=4, n_estimators=1, max_depth=2, max_bins=8, frac_bits=12)
    assert roundtrip(setup, ring).public_key == pk and pk.fingerprint in ring
    assert roundtrip(dataclasses.replace(setup, public_key=small_keypair[0]), ring).public_key == small_keypair[0]
    packed = PackedEncryptedVector.encrypt(sk, np.array([1.0, 2.0, 3.0]), frac_bits=12, int_bits=3)
    np.testing.assert_allclose(roundtrip(Echo(round=0, data=packed), ring).data.decrypt(sk), [1, 2, 3])
    # a field typed as a Paillier key (as linear models' are: they reveal decryptions) takes no OU key
    with pytest.raises(WireError, match="public_key"):
        roundtrip(PaillierOnly(public_key=pk), ring)
    assert roundtrip(PaillierOnly(public_key=small_keypair[0]), ring).public_key == small_keypair[0]
    # nor an OU key's ciphertexts in a signed vector
    header, raws = codec.encode(Echo(round=0, data=EncryptedVector.encrypt(small_keypair[0], np.array([1.0]))),
                                job="j", seq=0)
    forged = header.replace(small_keypair[0].fingerprint.encode(), pk.fingerprint.encode())
    with pytest.raises(WireError):
        codec.decode(codec.parse_header(forged, codec.CodecLimits()), [bytes(memoryview(r)) for r in raws], ring)


def test_a_different_key_under_a_known_fingerprint_is_refused(small_keypair, small_ou_keypair):
    ring = codec.Keyring()
    ring.register(small_keypair[0])
    impostor = OUPublicKey.from_bytes(small_ou_keypair[0].to_bytes())
    impostor.fingerprint = small_keypair[0].fingerprint          # as a crafted key could make it
    with pytest.raises(WireError, match="share the fingerprint"):
        ring.register(impostor)
    assert ring.register(small_keypair[0]) is small_keypair[0]


def test_unknown_key_fingerprint_is_rejected(small_keypair):
    pk, _ = small_keypair
    with pytest.raises(WireError, match="unknown public key"):
        roundtrip(Echo(round=0, data=EncryptedVector.encrypt(pk, np.array([1.0]))))


def test_registered_key_decodes(small_keypair):
    pk, sk = small_keypair
    ring = codec.Keyring()
    ring.register(pk)
    out = roundtrip(Echo(round=0, data=EncryptedVector.encrypt(pk, np.array([2.0]))), ring)
    assert out.data.decrypt(sk)[0] == 2.0


def test_corrupt_ciphertext_frame_is_rejected(small_keypair):
    pk, _ = small_keypair
    ring = codec.Keyring()
    ring.register(pk)
    header, raws = codec.encode(Echo(round=0, data=EncryptedVector.encrypt(pk, np.array([1.0]))), job="j", seq=0)
    parsed = codec.parse_header(header, codec.CodecLimits())
    with pytest.raises(WireError, match="encrypted vector"):
        codec.decode(parsed, [b"\xff" * len(raws[0])], ring)     # >= n^2: out of range


def test_sender_refuses_unsendable_values():
    with pytest.raises(TypeError, match="cannot send"):
        codec.encode(Echo(round=0, data=object()), job="j", seq=0)
    with pytest.raises(TypeError, match="numeric dtypes"):
        codec.encode(Echo(round=0, data=np.array(["a"], dtype=object)), job="j", seq=0)


# -- negative tests: headers -------------------------------------------------------------------
def _header(**over):
    h = {"v": codec.WIRE_VERSION, "job": "j", "seq": 0, "kind": Echo.KIND, "frames": [],
         "body": msgpack.packb({"round": 0, "data": 1})}
    h.update(over)
    return msgpack.packb({k: v for k, v in h.items() if v is not ...})


@pytest.mark.parametrize("data, match", [
    (b"\xc1garbage", "not valid msgpack"),
    (msgpack.packb([1, 2]), "expected fields and types"),
    (_header(v=1), "wire version 1 is not supported"),
    (_header(job=""), r"length >= 1 - at `\$.job`"),
    (_header(job="j" * 129), r"length <= 128 - at `\$.job`"),
    (_header(kind=5), r"Expected `str`, got `int` - at `\$.kind`"),
    (_header(seq=-1), r"`int` >= 0 - at `\$.seq`"),
    (_header(seq=1 << 62), r"`int` <= 4611686018427387903 - at `\$.seq`"),
    (_header(seq=True), r"Expected `int`, got `bool` - at `\$.seq`"),
    (_header(frames=[1] * 9), "frame table lists 9 frames; at most 8"),
    (_header(frames=[-1]), r"`int` >= 0 - at `\$.frames\[0\]`"),
    (_header(frames=[2 << 20]), "exceeds"),
    (_header(body=...), "missing required field `body`"),
    (_header(extra=1), "unknown field `extra`"),
    (b"\x00" * 5000, "exceeds the 4096-byte limit"),
])
def test_invalid_headers(data, match):
    with pytest.raises(WireError, match=match):
        codec.parse_header(data, LIMITS)


@pytest.mark.parametrize("body, frames, raws, match", [
    ({"round": 0}, [], [], "missing required field `data`"),
    ({"round": 0, "data": 1, "x": 2}, [], [], "unknown field `x`"),
    ({"round": "0", "data": 1}, [], [], r"Expected `int`, got `str` - at `\$.round`"),
    ({"round": True, "data": 1}, [], [], r"Expected `int`, got `bool` - at `\$.round`"),
    ([1, 2], [], [], "Expected `object`, got `array`"),
    ({"round": 0, "data": 1}, [3], [], "truncated"),
    ({"round": 0, "data": 1}, [3], [b"ab"], "header says 3"),
    ({"round": 0, "data": 1}, [2], [b"ab"], "not referenced"),
    ({"round": 0, "data": msgpack.ExtType(1, msgpack.packb([0, "|O", [1]]))}, [8], [b"x" * 8], "dtype"),
    ({"round": 0, "data": msgpack.ExtType(1, msgpack.packb([0, "<f8", [2]]))}, [8], [b"x" * 8], "does not match"),
    ({"round": 0, "data": msgpack.ExtType(1, msgpack.packb([0, "<f8", [-1]]))}, [8], [b"x" * 8], "shape"),
    ({"round": 0, "data": msgpack.ExtType(1, msgpack.packb([3, "<f8", [1]]))}, [8], [b"x" * 8], "out of range"),
    ({"round": 0, "data": [msgpack.ExtType(5, msgpack.packb([0])), msgpack.ExtType(5, msgpack.packb([0]))]},
     [1], [b"x"], "reused"),
    ({"round": 0, "data": msgpack.ExtType(2, b"\x00\x01")}, [], [], "invalid public key"),
    ({"round": 0, "data": msgpack.ExtType(3, msgpack.packb([0, {"key": "ab"}]))}, [1], [b"x"], "unknown public key"),
    ({"round": 0, "data": msgpack.ExtType(42, b"")}, [], [], "malformed"),
])
def test_invalid_bodies(body, frames, raws, match):
    parsed = codec.parse_header(_header(body=msgpack.packb(body), frames=frames), codec.CodecLimits())
    with pytest.raises(WireError, match=match):
        codec.decode(parsed, raws, codec.Keyring())


def test_unknown_kind_is_rejected():
    parsed = codec.parse_header(_header(kind="no.such_kind"), codec.CodecLimits())
    with pytest.raises(WireError, match="unknown message kind"):
        codec.decode(parsed, [], codec.Keyring())


@dataclasses.dataclass(frozen=True)
class WithBytes(Message):
    KIND = "test.codec_bytes"
    blob: bytes
    blobs: tuple[bytes, ...]
    maybe: Optional[bytes]


def test_bytes_fields_take_inline_and_framed_bytes():
    big = b"z" * (codec.INLINE_BYTES_MAX + 1)
    out = roundtrip(WithBytes(blob=big, blobs=(b"a", big), maybe=None))
    assert out.blob == big and out.blobs == (b"a", big) and out.maybe is None
    assert roundtrip(WithBytes(blob=b"s", blobs=(), maybe=big)).maybe == big
    header, raws = codec.encode(Echo(round=0, data=np.ones(2)), job="j", seq=0)
    body = msgpack.packb({"blob": 1, "blobs": [], "maybe": None})
    with pytest.raises(WireError, match=r"Expected `bytes`, got `int` - at `\$.blob`"):
        codec.decode(codec.parse_header(_header(kind=WithBytes.KIND, body=body), LIMITS), [], codec.Keyring())


def test_deep_nesting_is_a_wire_error():
    body = b"\x82\xa5round\x00\xa4data" + b"\x91" * 5000 + b"\x01"
    with pytest.raises(WireError, match="body is malformed"):
        codec.decode(codec.parse_header(_header(body=body), codec.CodecLimits()), [], codec.Keyring())


def test_every_registered_message_kind_can_be_decoded():
    import parties.jobs.echo  # noqa: F401 - register every built-in kind
    import parties.transport.messages  # noqa: F401
    import protocols.psi  # noqa: F401
    import vfl.jobs.messages  # noqa: F401
    import vfl.registry  # noqa: F401
    from vfl.messages import message_class, registered_kinds
    kinds = registered_kinds()
    assert {"lr.setup", "sbt.grad_hess", "psi.setup", "model.ready", "party.job_start"} <= set(kinds)
    for kind in kinds:
        codec.body_decoder(message_class(kind))


def test_a_message_class_the_codec_cannot_check_is_named(monkeypatch):
    import protocols.messages
    monkeypatch.setattr(protocols.messages, "_REGISTRY", dict(protocols.messages._REGISTRY))   # registered here only

    @dataclasses.dataclass(frozen=True)
    class TwoCustom(Message):
        KIND = "test.codec_two_custom"
        v: EncryptedVector | PackedEncryptedVector
    with pytest.raises(WireError, match="test.codec_two_custom: the message class has field types"):
        codec.body_decoder(TwoCustom)


def test_job_start_schema():
    out = roundtrip(JobStart(handler="echo", params={"rounds": 2}, parties=("bank", "insurer")))
    assert out.parties == ("bank", "insurer")


@settings(max_examples=600, deadline=None, database=None)
@given(st.binary(max_size=300), st.lists(st.binary(max_size=64), max_size=3))
def test_random_bytes_only_ever_raise_wire_error(header, raws):
    try:
        parsed = codec.parse_header(header, LIMITS)
        codec.decode(parsed, raws, codec.Keyring())
    except WireError:
        pass


@settings(max_examples=600, deadline=None, database=None)
@given(st.data())
def test_mutated_valid_messages_only_ever_raise_wire_error(data):
    msg = Echo(round=3, data={"a": np.arange(4, dtype=np.int16), "b": "text", "c": [1.5, None]})
    header, raws = codec.encode(msg, job="j", seq=0)
    body = bytearray(codec.parse_header(header, LIMITS).body)
    i = data.draw(st.integers(0, len(body) - 1))
    body[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    frames = [bytes(r) for r in raws]
    try:
        parsed = codec.parse_header(_header(body=bytes(body[:cut] if data.draw(st.booleans()) else body),
                                            frames=[len(f) for f in frames]), LIMITS)
        codec.decode(parsed, frames, codec.Keyring())
    except WireError:
        pass
