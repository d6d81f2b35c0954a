"""The packed-ciphertext operations SecureBoost histograms use (protocols/paillier/packing.py):
record sums over groups padded to a public term count, cumulative runs, take/concat,
compression and the wire, with negative gradients and many samples; under Paillier and OU."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.paillier import PackedEncryptedVector

FRAC = 32


def _pairs(g, h):
    return np.column_stack([g, h]).reshape(-1)


def _records(vec, sk):
    return np.asarray(vec.decrypt_ints(sk, workers=1), dtype=object).reshape(-1, 2)


def _ints(v):
    return [int(k) for k in np.rint(np.ldexp(np.asarray(v, float), FRAC))]


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=2, max_size=24), st.integers(0, 2 ** 32))
def test_group_sums_are_exact_and_padding_hides_counts(packing_keypair, g, seed):
    pk, sk = packing_keypair
    g = np.array(g)
    h = np.abs(g) / 4
    n = len(g)
    gh = PackedEncryptedVector.encrypt(sk, _pairs(g, h), frac_bits=FRAC, int_bits=1, sum_terms=n, slots=2, workers=1)
    groups = np.array_split(np.random.default_rng(seed).permutation(n), 3)
    sums = gh.group_sums(groups, pad_to=n)
    cum = gh.group_sums(groups, pad_to=n, segments=[3])
    assert sums.offset == cum.offset == n * gh.offset        # the same public offset whatever the counts
    gi, hi = np.array(_ints(g), dtype=object), np.array(_ints(h), dtype=object)
    expect = [[gi[idx].sum(), hi[idx].sum()] for idx in groups]
    assert _records(sums, sk).tolist() == [[int(a), int(b)] for a, b in expect]
    running = np.cumsum(np.array(expect, dtype=object), axis=0)
    assert _records(cum, sk).tolist() == [[int(a), int(b)] for a, b in running]


def test_many_samples_at_the_slot_bound_do_not_carry(packing_keypair):
    pk, sk = packing_keypair
    n = 100_000
    top = 2.0 - 2.0 ** -FRAC                      # the largest |v| int_bits=1 allows
    gh = PackedEncryptedVector.encrypt(sk, [top, -top, -top, top], frac_bits=FRAC, int_bits=1, sum_terms=n,
                                       slots=2, workers=1)
    k = _ints([top])[0]
    sums = gh.group_sums([[0] * n, [1] * n, [0, 1] * (n // 2)], pad_to=n)
    assert _records(sums, sk).tolist() == [[n * k, -n * k], [-n * k, n * k], [0, 0]]
    with pytest.raises(OverflowError, match="pad_to"):
        gh.group_sums([[0]], pad_to=2 * n)        # beyond the slot capacity
    with pytest.raises(OverflowError, match="exceeds pad_to"):
        gh.group_sums([[0, 1]], pad_to=1)


def test_take_concat_compress_and_wire(packing_keypair):
    pk, sk = packing_keypair
    n = 30
    g = np.linspace(-1, 1, n)
    h = np.linspace(0, 0.25, n)
    gh = PackedEncryptedVector.encrypt(sk, _pairs(g, h), frac_bits=FRAC, int_bits=1, sum_terms=n, slots=2, workers=1)
    sums = gh.group_sums([np.arange(i, n, 7) for i in range(7)], pad_to=n)
    picked = PackedEncryptedVector.concat([sums.take([6, 0, 3]), sums.take([1])])
    packed = picked.compress(workers=1)
    assert len(packed.ciphertexts) < len(picked.ciphertexts)
    # computed ciphertexts are re-randomized when they leave the party (the active knows [[g, h]])
    assert not packed.obfuscated and packed.to_bytes() != packed.to_bytes(obfuscate=False)
    back = PackedEncryptedVector.from_wire(pk, packed.wire_meta(), packed.to_bytes())
    full = _records(sums, sk)
    assert _records(back, sk).tolist() == full[[6, 0, 3, 1]].tolist()


def test_invalid_histogram_operations(packing_keypair):
    pk, sk = packing_keypair
    gh = PackedEncryptedVector.encrypt(sk, [0.5, 0.1, -0.5, 0.2], frac_bits=FRAC, int_bits=1, sum_terms=4,
                                       slots=2, workers=1)
    a, b = gh.group_sums([[0, 1]], pad_to=4), gh.group_sums([[0]], pad_to=2)
    with pytest.raises(ValueError, match="layouts"):
        PackedEncryptedVector.concat([a, b])
    with pytest.raises(IndexError):
        gh.take([2])
    with pytest.raises(IndexError):
        gh.group_sums([[5]], pad_to=4)
    with pytest.raises(ValueError, match="segments"):
        gh.group_sums([[0], [1]], pad_to=4, segments=[3])
    odd = PackedEncryptedVector.encrypt(sk, [0.5, 0.1, 0.3], slots=2, workers=1)
    with pytest.raises(ValueError, match="full ciphertexts"):
        odd.group_sums([[0]], pad_to=2)


def test_group_sums_in_the_worker_pool_equal_the_ones_in_process(packing_keypair, monkeypatch):
    import protocols.paillier.packing as packing
    sk = packing_keypair[1]
    n = 60
    rng = np.random.default_rng(3)
    gh = PackedEncryptedVector.encrypt(sk, _pairs(rng.uniform(-1, 1, n), rng.uniform(0, 0.25, n)), frac_bits=FRAC,
                                       int_bits=1, sum_terms=n, slots=2, workers=1)
    bins = rng.integers(0, 4, n)
    groups = [np.flatnonzero((bins == b) & (np.arange(n) % 3 != f)) for f in range(3) for b in range(4)]
    here = gh.group_sums(groups, pad_to=n, segments=[4, 4, 4], workers=1)
    monkeypatch.setattr(packing, "PARALLEL_GROUP_SUMS", 0)          # ship even this little work to the pool
    tasks = []
    real = packing.map_chunks
    monkeypatch.setattr(packing, "map_chunks", lambda fn, key, items, **kw: tasks.append(
        (fn.__name__, len(items), kw.get("min_chunk"), kw.get("workers"))) or real(fn, key, items, **kw))
    pooled = gh.group_sums(groups, pad_to=n, segments=[4, 4, 4], workers=2)
    assert tasks == [("group_sums_chunk", 3, 1, 2)]                 # three runs, a task each, on two workers
    assert (_records(pooled, sk) == _records(here, sk)).all() and pooled.offset == here.offset
    with pytest.raises(OverflowError):
        gh.group_sums([np.arange(n)] * 2, pad_to=n, segments=[2], workers=2)   # 2n terms in one run
