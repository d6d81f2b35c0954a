"""Every message of the secret-sharing engine, shared by all roles.

Ring elements travel as ``uint64`` arrays (zero-copy frames); Paillier ciphertexts as packed
vectors under the key of the party that encrypted them. ``tag`` names the operation a message
belongs to (``"pearson/bank×insurer"``, ``"triples/0"``): a receiver checks it, so two
operations can never be mixed up silently.
"""
from __future__ import annotations

import dataclasses
import enum

import numpy as np

from protocols.messages import Message
from protocols.paillier import PackedEncryptedVector, PublicKey

PROTOCOL_VERSION = 1


class MpcKind(str, enum.Enum):
    KEY = "mpc.key"                  # a key holder's Paillier public key, before its offers
    CROSS_OFFER = "mpc.cross_offer"  # key holder -> multiplier: its matrix, encrypted and packed
    CROSS_REPLY = "mpc.cross_reply"  # multiplier -> key holder: Y @ X + R, packed, re-randomized
    OPENING = "mpc.opening"          # a party's share of a value every party may learn (Beaver e, f)
    SHARES = "mpc.shares"            # a party's shares, sent to a party named to receive them
    PAIR_KEY = "mpc.pair_key"        # an X25519 public key, for masks between two relayed parties
    OT_BASE = "mpc.ot_base"          # base-OT points (protocols/mpc/ot.py), once per ordered pair
    OT_EXTEND = "mpc.ot_extend"      # OLE receiver -> sender: the OT-extension matrix U
    OT_CORRECT = "mpc.ot_correct"    # OLE sender -> receiver: the corrections of the correlated OTs


@dataclasses.dataclass(frozen=True)
class MpcKey(Message):
    KIND = MpcKind.KEY.value
    version: int
    owner: str                       # the party that holds the private key
    public_key: PublicKey


@dataclasses.dataclass(frozen=True)
class CrossOffer(Message):
    """``mode`` "matrix": X (``rows``×``cols``), each row packed along its columns;
    "elementwise": x (``rows`` values, ``cols`` = 1), value j pre-shifted into slot j mod slots."""

    KIND = MpcKind.CROSS_OFFER.value
    tag: str
    mode: str
    rows: int
    cols: int
    value_bits: int                  # X's entries are integers in [0, 2^value_bits)
    scalar_bits: int                 # the multiplier's scalars are integers in [0, 2^scalar_bits)
    cipher: PackedEncryptedVector

    def __repr__(self) -> str:
        return f"CrossOffer(tag={self.tag!r}, mode={self.mode}, {self.rows}x{self.cols}, b={self.scalar_bits})"


@dataclasses.dataclass(frozen=True)
class CrossReply(Message):
    KIND = MpcKind.CROSS_REPLY.value
    tag: str
    cipher: PackedEncryptedVector

    def __repr__(self) -> str:
        return f"CrossReply(tag={self.tag!r})"


@dataclasses.dataclass(frozen=True)
class Opening(Message):
    KIND = MpcKind.OPENING.value
    tag: str
    values: np.ndarray               # uint64

    def __repr__(self) -> str:
        return f"Opening(tag={self.tag!r}, shape={self.values.shape})"


@dataclasses.dataclass(frozen=True)
class Shares(Message):
    KIND = MpcKind.SHARES.value
    tag: str
    values: np.ndarray               # uint64

    def __repr__(self) -> str:
        return f"Shares(tag={self.tag!r}, shape={self.values.shape})"


@dataclasses.dataclass(frozen=True)
class PairKey(Message):
    """A party's X25519 public key for one session: two parties that talk through the hub derive
    a key the hub does not know and mask the shares they send each other with it."""

    KIND = MpcKind.PAIR_KEY.value
    owner: str
    public: bytes

    def __repr__(self) -> str:
        return f"PairKey(owner={self.owner!r})"


@dataclasses.dataclass(frozen=True)
class OtBase(Message):
    """The OLE receiver's ``A`` (32 bytes) or the sender's κ points (κ·32 bytes)."""

    KIND = MpcKind.OT_BASE.value
    tag: str
    points: bytes

    def __repr__(self) -> str:
        return f"OtBase(tag={self.tag!r}, {len(self.points)} bytes)"


@dataclasses.dataclass(frozen=True)
class OtExtend(Message):
    KIND = MpcKind.OT_EXTEND.value
    tag: str
    matrix: np.ndarray               # uint8, κ × bytes

    def __repr__(self) -> str:
        return f"OtExtend(tag={self.tag!r}, shape={self.matrix.shape})"


@dataclasses.dataclass(frozen=True)
class OtCorrect(Message):
    KIND = MpcKind.OT_CORRECT.value
    tag: str
    values: np.ndarray               # uint64, 64 per product

    def __repr__(self) -> str:
        return f"OtCorrect(tag={self.tag!r}, shape={self.values.shape})"
