"""Hetero LR with the passives' own keys (``protocol="feature_key"``): no encryption per epoch.

The residuals change every batch; a passive's features do not. So instead of the active
encrypting [[d]] for every row of every epoch, each passive encrypts its training features
**once**, under a key of its own that only it holds, and the active computes each batch's
gradient on those ciphertexts with its plaintext residuals:

0. Setup (once): passive p draws a Paillier key pair (≥ 2048 bits), encodes its standardized,
   clipped features at ``feature_frac_bits`` and packs ``per_ct`` of them per plaintext in signed
   slots of ``slot_bits`` (wide enough for a batch's sum); it sends its public key and layout,
   then [[X_p]] in chunks of :data:`FEATURE_CHUNK` ciphertexts as it encrypts them.
   The active checks key size, row count and layout, and every chunk against the header.
Per mini-batch B:
1. Each passive sends z_p = X_p[B]·w_p (as in the label-key protocol).
2. The active computes z and d (exact logistic, Taylor or squared residual, the same fixed-point
   integers as in the label-key protocol), updates its own weights, and per passive one signed
   multi-exponentiation per feature group: [[G_p]] = Π_{i∈B} [[X_i]]^{d_i} = [[Σ_i d_i·X_i]],
   re-randomized (a fresh r^n) before it leaves.
3. The passive decrypts G_p with its own key, splits the signed slots into X_p[B]ᵀ·d, divides by
   |B| and updates w_p.

What each party learns: the active learns nothing from [[X_p]] or [[G_p]] (IND-CPA under a key
it does not hold) and, as before, z_p. The passive learns X_p[B]ᵀ·d, exactly what it unmasks in
the label-key protocol, and never sees [[d]]. Both sides compute the same integers as the
label-key protocol, so the two give the same model (tested). Cost: the passive's one-time
encryption of its rows; per batch the active's multi-exponentiation with |d|-sized exponents
and one obfuscation, the passive's one decryption per feature group.
"""
from __future__ import annotations

import dataclasses

import gmpy2
import numpy as np
from gmpy2 import mpz

from protocols.paillier import EncryptedVector, generate_keypair
from protocols.paillier.encoding import decode_floats, scalars_to_fixed
from vfl.errors import ProtocolError
from vfl.linear import messages as msg
from vfl.linear.training import FEATURE_INT_BITS, RESIDUAL_INT_BITS, ActiveTrainer, PassiveTrainer
from vfl.progress import progress

# ciphertexts per EncryptedFeatureChunk: 32 MiB at 2048-bit keys, far below the codec's message
# limit, so the row count is bounded by the active's memory, not by one message
FEATURE_CHUNK = 1 << 16


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a passive packs its features: ``per_ct`` signed slots of ``slot_bits`` per plaintext."""
    n_features: int
    slot_bits: int
    per_ct: int

    @property
    def groups(self) -> int:
        return -(-self.n_features // self.per_ct)


def slot_bits(feature_frac_bits: int, residual_frac_bits: int, max_batch: int) -> int:
    """Room for |Σ_{i<max_batch} d_i·x_i| in a signed slot (plus one bit of margin)."""
    x_bits = FEATURE_INT_BITS + feature_frac_bits
    d_bits = RESIDUAL_INT_BITS + residual_frac_bits
    return x_bits + d_bits + int(max_batch).bit_length() + 2


def layout_for(n_features: int, setup: msg.Setup, feature_frac_bits: int, n_bits: int) -> Layout:
    bits = slot_bits(feature_frac_bits, setup.residual_frac_bits, 2 * setup.batch_size)   # tails merge
    if bits > n_bits - 3:
        raise ProtocolError(f"a {bits}-bit slot does not fit this party's {n_bits}-bit key: lower the "
                            "precision or the batch size")
    return Layout(n_features, bits, min(n_features, (n_bits - 3) // bits))


def pack_rows(q: np.ndarray, layout: Layout) -> list[int]:
    """Row-major packed plaintexts: group g of row i is Σ_j q[i, g·per_ct + j]·2^(slot_bits·j)."""
    out = []
    for row in q.tolist():
        for g in range(layout.groups):
            acc = 0
            for v in reversed(row[g * layout.per_ct:(g + 1) * layout.per_ct]):
                acc = (acc << layout.slot_bits) + v
            out.append(acc)
    return out


def unpack(totals: list[int], layout: Layout) -> list[int]:
    """The signed slots of each group's total, features in order."""
    out, half, mask = [], 1 << (layout.slot_bits - 1), (1 << layout.slot_bits) - 1
    for g, total in enumerate(totals):
        count = min(layout.per_ct, layout.n_features - g * layout.per_ct)
        for _ in range(count):
            v = total & mask
            v = v - (1 << layout.slot_bits) if v >= half else v
            out.append(v)
            total = (total - v) >> layout.slot_bits
        if total:
            raise ValueError("bits beyond the last slot")
    return out


class _Incoming:
    """A passive's [[X_p]] while its chunks arrive."""

    def __init__(self, checked: tuple):
        self.header, self.layout = checked
        self.ciphertexts: list = []
        self.mag_bits, self.product = 0, mpz(1)

    @property
    def done(self) -> bool:
        return len(self.ciphertexts) >= self.header.n_ciphertexts


class FeatureKeyActiveTrainer(ActiveTrainer):
    """The label party, computing each passive's gradient on that passive's ciphertexts."""

    def __init__(self, *args, min_key_bits: int = 2048, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_key_bits = min_key_bits

    def run(self):
        self.features = self._receive_all_features()
        self.position = np.full(self.cfg.n_rows, -1, np.int64)
        self.position[self.cfg.train_index] = np.arange(len(self.cfg.train_index))
        return super().run()

    def _receive_all_features(self) -> dict[str, tuple[EncryptedVector, Layout]]:
        """Every passive's [[X_p]]: the headers first, then one chunk from each passive in turn,
        so that no passive's chunks pile up unread while another's are checked."""
        todo = {p: _Incoming(self._check_header(p)) for p in self.passives}
        while any(not inc.done for inc in todo.values()):
            for name, inc in todo.items():
                if not inc.done:
                    self._take_chunk(name, inc)
        out = {}
        for name, inc in todo.items():
            key = inc.header.public_key
            if gmpy2.gcd(inc.product, key.n) != 1:    # one gcd: every ciphertext must be invertible
                raise ProtocolError(f"{name} sent encrypted features that are not valid ciphertexts")
            out[name] = EncryptedVector(key, inc.ciphertexts, 0, inc.mag_bits), inc.layout
        return out

    def _check_header(self, name: str) -> msg.EncryptedFeatures:
        """A passive's announced [[X_p]], checked against its declared feature count, the batch
        size and the key size (before the first batch needs any of it)."""
        m = self.t.recv(name, msg.EncryptedFeatures)
        n_features = self.passive_features[name]
        n_train, key = len(self.cfg.train_index), m.public_key
        need = slot_bits(0, self.cfg.residual_frac_bits, 2 * self.cfg.batch_size)
        ok = isinstance(m.per_ct, int) and isinstance(m.slot_bits, int) and 1 <= m.per_ct <= n_features \
            and need <= m.slot_bits and m.per_ct * m.slot_bits <= key.n_bits - 3
        layout = Layout(n_features, m.slot_bits, m.per_ct) if ok else None
        if layout is None or m.n_ciphertexts != n_train * layout.groups:
            raise ProtocolError(f"{name} announced encrypted features that do not match {n_train} rows of "
                                f"{n_features} features and the batch size")
        if key.n_bits < self.min_key_bits:
            raise ProtocolError(f"{name} encrypted its features under a {key.n_bits}-bit key, below "
                                f"the {self.min_key_bits}-bit minimum")
        return m, layout

    def _take_chunk(self, name: str, inc: "_Incoming") -> None:
        """The next chunk of a passive's [[X_p]], checked against its header."""
        m, key = inc.header, inc.header.public_key
        limit = key.n_bits - 3 - self._weight_bits() - (2 * self.cfg.batch_size).bit_length()
        enc = self.t.recv(name, msg.EncryptedFeatureChunk).features
        if not len(enc) or len(inc.ciphertexts) + len(enc) > m.n_ciphertexts or enc.public_key != key \
                or enc.exponent != 0 or enc.mag_bits > limit:
            raise ProtocolError(f"{name} sent a chunk of encrypted features (after {len(inc.ciphertexts)} of "
                                f"{m.n_ciphertexts} ciphertexts) that does not match its header or the batch size")
        product = inc.product
        for c in enc.ciphertexts:
            product = product * c % key.n
        inc.product = product
        inc.ciphertexts.extend(enc.ciphertexts)
        inc.mag_bits = max(inc.mag_bits, enc.mag_bits)

    def _weight_bits(self) -> int:
        """Declared bound on an encoded residual, |d·2^residual_frac_bits| < 2^this. Exact
        logistic residuals lie in (−1, 1): a tighter bound, shorter exponents."""
        exact_logistic = self.cfg.task == "logistic" and not self.taylor
        return (1 if exact_logistic else RESIDUAL_INT_BITS) + self.cfg.residual_frac_bits

    def _prefetch(self, count: int):
        return None                         # nothing to encrypt per batch

    def _send_gradients(self, rows: np.ndarray, d: np.ndarray, randomizers=None, next_size: int = 0,
                        own_update=None):
        """One gradient round: every passive gets [[Σ_i d_i·X_i]] under its own key."""
        if own_update is not None:
            own_update()
        bits = self._weight_bits()
        for p in self.passives:
            enc, layout = self.features[p]
            idx = self.position[rows] * layout.groups
            # the work must not depend on d (its signs are labels): offset_multiexp, not matmul
            parts = [enc[idx + g].weighted_sum(d, frac_bits=self.cfg.residual_frac_bits, scalar_bits=bits)
                     for g in range(layout.groups)]
            self.t.send(p, msg.EncryptedGradient(EncryptedVector.concat(parts)))
        return None


class FeatureKeyPassiveTrainer(PassiveTrainer):
    """A feature party that encrypts its training rows once, under its own key."""

    def __init__(self, *args, key_bits: int = 2048, allow_small_key: bool = False, verbose: bool = False,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.key_bits, self.allow_small_key, self.verbose = key_bits, allow_small_key, verbose

    def run(self) -> int:
        cfg = self.cfg
        if not len(cfg.train_index):
            raise ProtocolError(f"{self.active} asked to train on no rows")
        public, self.sk = generate_keypair(self.key_bits, allow_insecure_key_size_for_tests=self.allow_small_key)
        self.layout = layout_for(self.x.shape[1], cfg, self.frac_bits, public.n_bits)
        q, _ = scalars_to_fixed(self.x[cfg.train_index], self.frac_bits)        # as the label-key protocol
        q = np.asarray(q, dtype=object).reshape(len(cfg.train_index), -1)
        plain = pack_rows(q, self.layout)
        top = (self.layout.per_ct - 1) * self.layout.slot_bits + FEATURE_INT_BITS + self.frac_bits + 1
        plain = np.asarray(plain, dtype=object)
        self.t.send(self.active, msg.EncryptedFeatures(public_key=public, slot_bits=self.layout.slot_bits,
                                                       per_ct=self.layout.per_ct, n_ciphertexts=len(plain)))
        with progress(total=len(plain), desc="encrypting own features (once)", unit="ct",
                      disable=not self.verbose) as bar:
            for start in range(0, len(plain), FEATURE_CHUNK):
                enc = EncryptedVector.encrypt(self.sk, plain[start:start + FEATURE_CHUNK], frac_bits=0, int_bits=top)
                self.t.send(self.active, msg.EncryptedFeatureChunk(enc))
                bar.update(len(enc))
        self.t.register_public_key(public)
        return super().run()

    def _gradient(self, rows: np.ndarray) -> np.ndarray:
        """One gradient round: decrypt [[Σ_i d_i·X_i]] with this party's key, / |rows|."""
        enc = self.t.recv(self.active, msg.EncryptedGradient).gradient
        if enc.public_key != self.sk.public_key or len(enc) != self.layout.groups \
                or enc.exponent != self.cfg.residual_frac_bits:
            raise ProtocolError(f"{self.active} sent an encrypted gradient under another key, length or scale")
        limit = len(rows) << (FEATURE_INT_BITS + self.frac_bits + RESIDUAL_INT_BITS + self.cfg.residual_frac_bits)
        try:
            ints = unpack(enc.decrypt_ints(self.sk), self.layout)
        except (OverflowError, ValueError):
            ints = [limit]
        if any(not -limit < v < limit for v in ints):
            raise ProtocolError(f"{self.active} sent an encrypted gradient outside its possible range")
        return decode_floats(ints, self.frac_bits + self.cfg.residual_frac_bits) / len(rows)
