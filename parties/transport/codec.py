"""The wire codec: one versioned msgpack header, then raw frames. No pickle, ever.

A message travels as ``header`` + ``raw frames``. The header is a msgpack map::

    {"v": 2, "job": str, "seq": int, "kind": str, "frames": [n0, n1, ...], "body": bin}

``body`` is the msgpack encoding of the message's fields. Values msgpack cannot carry are
msgpack extension types that point at a raw frame:

====  =====================  ==========================================================
ext   value                  payload
====  =====================  ==========================================================
1     ``numpy.ndarray``      ``[frame, dtype.str, shape]``; frame = C-order bytes
2     Paillier ``PublicKey`` ``PublicKey.to_bytes()`` inline (small)
3     ``EncryptedVector``    ``[frame, wire_meta]``; frame = fixed-width ciphertexts
4     ``PackedEncryptedVector`` same as 3
5     large ``bytes``        ``[frame]`` (bytes above :data:`INLINE_BYTES_MAX`)
6     ``OUPublicKey``        ``OUPublicKey.to_bytes()`` inline (Okamoto–Uchiyama)
====  =====================  ==========================================================

Decoding checks the header, the frame lengths, every extension and the message's fields and their
types (msgspec's typed decoding against the message dataclass); anything wrong raises
:class:`parties.runtime.errors.WireError`. Received
arrays are read-only views of the frames (no copy). Both transports use this module, so byte
counts and validation are the same in-process and over ZeroMQ.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import threading
import types
import typing
from typing import Annotated, Sequence

import msgpack
import msgspec
import numpy as np

from parties.runtime.errors import WireError
from protocols.paillier import AdditivePublicKey, EncryptedVector, OUPublicKey, PackedEncryptedVector, PublicKey
from vfl.messages import Message, message_class

WIRE_VERSION = 2      # 2: typed decoding, shared model.ready. A receiver drops (and logs, naming the version)
                      # messages of another version; their sender then times out
INLINE_BYTES_MAX = 64 * 1024
_EXT_NDARRAY, _EXT_PUBKEY, _EXT_ENCVEC, _EXT_PACKED, _EXT_BYTES, _EXT_OUKEY = 1, 2, 3, 4, 5, 6
_DTYPE_KINDS = set("biufc")          # bool, ints, floats, complex; never object or structured
_MAX_NAME = 128
_NAME_CHARS = r"^[A-Za-z0-9_.:-]+$"       # job ids and kinds reach logs: no spaces, no control characters


@dataclasses.dataclass(frozen=True)
class CodecLimits:
    """What a receiver accepts. Checked before any allocation sized by the peer."""

    max_header_bytes: int = 1 << 20          # header (and therefore body) size
    max_frames: int = 256                    # raw frames per message
    max_message_bytes: int = 2 << 30         # header + raw frames, after reassembly
    chunk_bytes: int = 1 << 20               # streamed chunk size (ZeroMQ transport)


@dataclasses.dataclass(frozen=True)
class Header:
    job: str
    seq: int
    kind: str
    frames: tuple[int, ...]
    body: bytes
    size: int                                # header bytes + raw frame bytes


class Keyring:
    """Paillier public keys by fingerprint: registered locally or decoded from messages.

    An :class:`EncryptedVector` on the wire names its key by fingerprint only; the receiver
    rebuilds it only under a key in this ring.
    """

    def __init__(self):
        self._keys: dict[str, AdditivePublicKey] = {}
        self._lock = threading.Lock()

    def register(self, public_key: AdditivePublicKey) -> AdditivePublicKey:
        with self._lock:
            known = self._keys.setdefault(public_key.fingerprint, public_key)
        if known != public_key:
            raise WireError(f"two different public keys share the fingerprint {public_key.fingerprint[:16]}")
        return known

    def get(self, fingerprint: str) -> AdditivePublicKey:
        with self._lock:
            key = self._keys.get(fingerprint) if isinstance(fingerprint, str) else None
        if key is None:
            raise WireError(f"ciphertexts under an unknown public key {str(fingerprint)[:16]!r}")
        return key

    def __contains__(self, fingerprint: str) -> bool:
        with self._lock:
            return fingerprint in self._keys

    def fingerprints(self) -> list[str]:
        with self._lock:
            return sorted(self._keys)


# -- encoding --------------------------------------------------------------------------------
def encode(message: Message, *, job: str, seq: int) -> tuple[bytes, list]:
    """``(header, raw_frames)`` for ``message``; raw frames are buffers (zero-copy for arrays)."""
    if not isinstance(message, Message) or not message.KIND:
        raise TypeError(f"not a registered message: {type(message).__name__}")
    raws: list = []
    fields = {f.name: _wrap_large(getattr(message, f.name)) for f in dataclasses.fields(message)}
    body = msgpack.packb(fields, default=lambda obj: _to_ext(obj, raws), use_bin_type=True)
    header = msgpack.packb({"v": WIRE_VERSION, "job": job, "seq": seq, "kind": message.KIND,
                            "frames": [memoryview(r).nbytes for r in raws], "body": body},
                           use_bin_type=True)
    return header, raws


def _to_ext(obj, raws: list):
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _DTYPE_KINDS:
            raise TypeError(f"arrays of dtype {obj.dtype} cannot be sent (numeric dtypes only)")
        arr = np.ascontiguousarray(obj)
        raws.append(memoryview(arr).cast("B") if arr.size else b"")
        return msgpack.ExtType(_EXT_NDARRAY, msgpack.packb([len(raws) - 1, arr.dtype.str, list(arr.shape)]))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, PublicKey):
        return msgpack.ExtType(_EXT_PUBKEY, obj.to_bytes())
    if isinstance(obj, OUPublicKey):
        return msgpack.ExtType(_EXT_OUKEY, obj.to_bytes())
    if isinstance(obj, (EncryptedVector, PackedEncryptedVector)):
        raws.append(obj.to_bytes())
        code = _EXT_ENCVEC if isinstance(obj, EncryptedVector) else _EXT_PACKED
        return msgpack.ExtType(code, msgpack.packb([len(raws) - 1, obj.wire_meta()]))
    if isinstance(obj, _LargeBytes):
        raws.append(obj.data)
        return msgpack.ExtType(_EXT_BYTES, msgpack.packb([len(raws) - 1]))
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    raise TypeError(f"cannot send a value of type {type(obj).__name__}")


class _LargeBytes:
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


def _wrap_large(value):
    """Large bytes go in their own frame, not into the (size-limited) header."""
    if isinstance(value, (bytes, bytearray, memoryview)) and memoryview(value).nbytes > INLINE_BYTES_MAX:
        return _LargeBytes(value)
    if isinstance(value, dict):
        return {k: _wrap_large(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wrap_large(v) for v in value]
    return value


def wire_size(header: bytes, raws: Sequence) -> int:
    return len(header) + sum(memoryview(r).nbytes for r in raws)


def digest(header: bytes, raws: Sequence) -> str:
    """sha256 over the header and every raw frame, as the audit log records it."""
    h = hashlib.sha256(header)
    for r in raws:
        h.update(r)
    return h.hexdigest()


# -- decoding --------------------------------------------------------------------------------
class _WireHeader(msgspec.Struct, forbid_unknown_fields=True):
    """The header map, exactly these fields with these types (msgspec refuses anything else)."""

    v: int
    job: Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_NAME, pattern=_NAME_CHARS)]
    seq: Annotated[int, msgspec.Meta(ge=0, lt=1 << 62)]
    kind: Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_NAME, pattern=_NAME_CHARS)]
    frames: list[Annotated[int, msgspec.Meta(ge=0)]]
    body: bytes


_HEADER_DECODER = msgspec.msgpack.Decoder(_WireHeader)


def parse_header(data, limits: CodecLimits) -> Header:
    """Validate the header frame; cheap, so it runs before any frame is buffered."""
    size = memoryview(data).nbytes
    if size > limits.max_header_bytes:
        raise WireError(f"header of {size} bytes exceeds the {limits.max_header_bytes}-byte limit")
    try:
        h = _HEADER_DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise WireError(f"header does not have the expected fields and types ({exc})") from None
    except msgspec.DecodeError as exc:
        raise WireError(f"header is not valid msgpack ({exc})") from None
    if h.v != WIRE_VERSION:
        raise WireError(f"wire version {h.v!r} is not supported (this party speaks {WIRE_VERSION})")
    if len(h.frames) > limits.max_frames:
        raise WireError(f"header frame table lists {len(h.frames)} frames; at most {limits.max_frames}")
    total = size + sum(h.frames)
    if total > limits.max_message_bytes:
        raise WireError(f"message of {total} bytes exceeds the {limits.max_message_bytes}-byte limit")
    return Header(h.job, h.seq, h.kind, tuple(h.frames), h.body, total)


def decode(header: Header, raws: Sequence, keyring: Keyring) -> Message:
    """Rebuild the message of ``header`` from its raw frames; :class:`WireError` if anything is off.

    The body is decoded by msgspec against the message's field types (:func:`_body_decoder`):
    exactly the declared fields, each of its declared type; numpy arrays, keys and ciphertexts
    are msgpack extensions resolved against this message's frames and the receiver's keyring.
    """
    if len(raws) != len(header.frames):
        raise WireError(f"{header.kind}: {len(raws)} frames for {len(header.frames)} declared (truncated?)")
    views = [memoryview(r).cast("B") for r in raws]
    for i, (view, n) in enumerate(zip(views, header.frames)):
        if view.nbytes != n:
            raise WireError(f"{header.kind}: frame {i} has {view.nbytes} bytes, header says {n}")
    try:
        cls = message_class(header.kind)
    except KeyError:
        raise WireError(f"unknown message kind {header.kind!r}") from None
    fields, decoder = body_decoder(cls)
    context = _ExtDecoder(views, keyring)
    _DECODING.context = context
    try:
        body = decoder.decode(header.body)
    except WireError:
        raise
    except msgspec.ValidationError as exc:
        raise WireError(f"{header.kind}: {exc}") from None
    except Exception as exc:            # malformed msgpack, nesting too deep, numbers out of range...
        raise WireError(f"{header.kind}: body is malformed ({type(exc).__name__}: {str(exc)[:80]})") from None
    finally:
        _DECODING.context = None
    if context.used != set(range(len(views))):
        raise WireError(f"{header.kind}: frames not referenced exactly once by the body")
    try:
        return cls(**{name: getattr(body, name) for name in fields})
    except Exception as exc:            # a __post_init__ validation of the message class
        raise WireError(f"{header.kind}: {exc}") from None


_DECODING = threading.local()          # the frames and keyring of the message being decoded
_CUSTOM = (np.ndarray, AdditivePublicKey, EncryptedVector, PackedEncryptedVector)


class WireBytes(bytes):
    """How a field annotated ``bytes`` is decoded: inline (msgpack bin) or, when large, from its
    own frame (an extension); either way the value is bytes, and it pickles as plain bytes (a
    party's worker processes need not import the codec)."""

    def __reduce__(self):
        return bytes, (bytes(self),)


def body_decoder(cls: type[Message]) -> tuple[tuple[str, ...], msgspec.msgpack.Decoder]:
    """The field names and strict decoder of ``cls``'s body; :class:`WireError` if this party
    cannot decode the class (tests build one for every registered kind)."""
    try:
        return _body_decoder(cls)
    except (TypeError, ValueError) as exc:
        raise WireError(f"{cls.KIND}: the message class has field types the codec cannot check ({exc})") from None


@functools.lru_cache(maxsize=None)
def _body_decoder(cls: type[Message]) -> tuple[tuple[str, ...], msgspec.msgpack.Decoder]:
    """A struct of ``cls``'s fields, every one required (senders always send every field),
    unknown fields refused, types strict. Annotations that do not resolve accept any decodable
    value, which is plain data, arrays and Paillier objects only. msgspec allows at most one
    array/key/ciphertext type in a union."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = {}
    struct = msgspec.defstruct(f"{cls.__name__}Body", [(n, _wire_type(hints.get(n, typing.Any))) for n in names],
                               forbid_unknown_fields=True)
    return names, msgspec.msgpack.Decoder(struct, ext_hook=_ext_hook, dec_hook=_dec_hook)


def _wire_type(tp):
    """``tp`` with every ``bytes`` replaced by :class:`WireBytes`, inside containers and unions too."""
    if tp is bytes:
        return WireBytes
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return typing.Annotated[(_wire_type(args[0]), *tp.__metadata__)]
    if origin is None or not args:
        return tp
    mapped = tuple(a if a is Ellipsis else _wire_type(a) for a in args)
    if mapped == args:
        return tp
    if origin in (typing.Union, types.UnionType):
        return typing.Union[mapped]
    return origin[mapped]


def _ext_hook(code: int, data: memoryview):
    return _DECODING.context(code, data)


def _dec_hook(tp, obj):
    """Fields typed as an array, key or ciphertext hold exactly that (from an extension); fields
    typed ``bytes`` hold bytes, inline or from a frame."""
    if tp is WireBytes and isinstance(obj, bytes):
        return obj if isinstance(obj, WireBytes) else WireBytes(obj)
    base = typing.get_origin(tp) or tp
    if isinstance(base, type) and issubclass(base, _CUSTOM) and isinstance(obj, base):
        return obj
    name = "bytes" if tp is WireBytes else getattr(base, "__name__", base)
    raise TypeError(f"Expected `{name}`, got `{type(obj).__name__}`")      # msgspec adds where, as a ValidationError


class _ExtDecoder:
    def __init__(self, views: list, keyring: Keyring):
        self.views, self.used, self.keyring = views, set(), keyring

    def __call__(self, code: int, data):
        if code == _EXT_PUBKEY:
            try:
                return self.keyring.register(PublicKey.from_bytes(bytes(data)))
            except (ValueError, TypeError) as exc:
                raise WireError(f"invalid public key: {exc}") from None
        if code == _EXT_OUKEY:
            try:
                return self.keyring.register(OUPublicKey.from_bytes(bytes(data)))
            except (ValueError, TypeError) as exc:
                raise WireError(f"invalid OU public key: {exc}") from None
        try:
            ref = msgpack.unpackb(data, raw=False, use_list=True)
        except Exception:
            raise WireError(f"extension {code} has a malformed reference") from None
        if not isinstance(ref, list) or not ref or not isinstance(ref[0], int):
            raise WireError(f"extension {code} has a malformed reference")
        view = self._take(ref[0])
        if code == _EXT_NDARRAY and len(ref) == 3:
            return _array(view, ref[1], ref[2])
        if code in (_EXT_ENCVEC, _EXT_PACKED) and len(ref) == 2 and isinstance(ref[1], dict):
            cls = EncryptedVector if code == _EXT_ENCVEC else PackedEncryptedVector
            key = self.keyring.get(ref[1].get("key"))
            try:
                return cls.from_wire(key, ref[1], view)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise WireError(f"invalid encrypted vector: {exc}") from None
        if code == _EXT_BYTES and len(ref) == 1:
            return WireBytes(view)
        raise WireError(f"unknown or malformed extension type {code}")

    def _take(self, index: int) -> memoryview:
        if not 0 <= index < len(self.views) or index in self.used:
            raise WireError(f"frame reference {index} is out of range or reused")
        self.used.add(index)
        return self.views[index]


def _array(view: memoryview, dtype_str, shape) -> np.ndarray:
    try:
        dtype = np.dtype(dtype_str) if isinstance(dtype_str, str) and len(dtype_str) <= 8 else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in _DTYPE_KINDS:
        raise WireError(f"array dtype {str(dtype_str)[:16]!r} is not allowed")
    if (not isinstance(shape, list) or len(shape) > 32
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise WireError("array shape is invalid")
    if int(np.prod(shape, dtype=object)) * dtype.itemsize != view.nbytes:
        raise WireError(f"array of shape {shape} and dtype {dtype} does not match its {view.nbytes}-byte frame")
    arr = np.frombuffer(view, dtype=dtype).reshape(shape) if view.nbytes else np.empty(shape, dtype)
    arr.flags.writeable = False
    return arr
