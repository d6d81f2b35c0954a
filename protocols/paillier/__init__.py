"""A vectorized Paillier engine (DJN randomizers, fixed-base tables, CRT, packing, Pippenger),
and Okamoto–Uchiyama on the same packing for protocols whose key holder reveals no decryption."""
from protocols.paillier.errors import DecryptionError, EncodingError, KeyMismatchError, KeySizeError, PaillierError
from protocols.paillier.keys import DEFAULT_KEY_BITS, AdditivePublicKey, PrivateKey, PublicKey, generate_keypair
from protocols.paillier.ou import OUPrivateKey, OUPublicKey, generate_ou_keypair
from protocols.paillier.packing import PackedEncryptedVector
from protocols.paillier.vector import EncryptedVector

SCHEMES = ("paillier", "ou")      # the additive schemes, by the name jobs and configs use

__all__ = [
    "SCHEMES",
    "DEFAULT_KEY_BITS", "AdditivePublicKey", "PublicKey", "PrivateKey", "generate_keypair", "EncryptedVector",
    "PackedEncryptedVector", "OUPublicKey", "OUPrivateKey", "generate_ou_keypair",
    "PaillierError", "KeySizeError", "KeyMismatchError", "EncodingError", "DecryptionError",
]
