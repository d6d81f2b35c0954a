"""A vectorized Paillier engine (DJN randomizers, fixed-base tables, CRT, packing, Pippenger)."""
from protocols.paillier.errors import DecryptionError, EncodingError, KeyMismatchError, KeySizeError, PaillierError
from protocols.paillier.keys import DEFAULT_KEY_BITS, PrivateKey, PublicKey, generate_keypair
from protocols.paillier.packing import PackedEncryptedVector
from protocols.paillier.vector import EncryptedVector

__all__ = [
    "DEFAULT_KEY_BITS", "PublicKey", "PrivateKey", "generate_keypair", "EncryptedVector",
    "PackedEncryptedVector",
    "PaillierError", "KeySizeError", "KeyMismatchError", "EncodingError", "DecryptionError",
]
