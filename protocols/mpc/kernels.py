"""Chunk bodies of the cross products, run in this process or in pool workers (module level,
so they pickle by name)."""
from __future__ import annotations

from gmpy2 import mpz

from protocols.paillier.multiexp import multiexp


def matrix_rows_chunk(public_key, items: list, outputs: int, groups: int, bits: int) -> list:
    """Partial products over a chunk of the shared dimension. Each item is one row l of the key
    holder's encrypted matrix and the multiplier's column l: ``(ciphertexts of its G groups,
    scalars Y[0..m-1, l])``. Returns ``m·G`` values, ``Π_l E[l, g]^Y[i, l]`` over this chunk."""
    n2 = public_key.nsquare
    out = []
    for i in range(outputs):
        scalars = [item[1][i] for item in items]
        for g in range(groups):
            out.append(multiexp([item[0][g] for item in items], scalars, n2, bits=bits))
    return out


def slot_groups_chunk(public_key, items: list, bits: int) -> list:
    """Each item is ``(ciphertexts, scalars)`` of one output group: ``Π c_j^{y_j}``."""
    n2 = public_key.nsquare
    return [multiexp(cts, scalars, n2, bits=bits) for cts, scalars in items]


def mask_chunk(public_key, items: list) -> list:
    """Each item is ``(ciphertext, packed mask M)``: add M to the plaintext (a product by
    1 + M·n), then re-randomize with hs^α, α of n_bits + 64 bits: the reply's randomness is
    then within 2^-64 of uniform in ⟨hs⟩, so the key holder learns nothing from the ciphertext
    beyond its (masked) plaintext (:meth:`PublicKey.statistical_randomizers`)."""
    n, n2 = public_key.n, public_key.nsquare
    rs = public_key.statistical_randomizers(len(items))
    return [c * (1 + mpz(m) * n) % n2 * r % n2 for (c, m), r in zip(items, rs)]
