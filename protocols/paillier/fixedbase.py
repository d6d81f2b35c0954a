"""Fixed-base exponentiation with precomputed windows (no squarings at use time).

For a base B and window width w the table holds ``B^(j·2^(w·i))`` for every window i and digit
j < 2^w. An exponent with digits d_i in base 2^w is then ``Π_i table[i][d_i]``: about
``bits/w`` modular multiplications instead of ``bits`` squarings plus multiplications.
"""
from __future__ import annotations

import secrets

import gmpy2
import numpy as np
from gmpy2 import mpz


def _random_digit_array(count: int, windows: int, window_bits: int) -> np.ndarray:
    total_bits = windows * window_bits
    nbytes = (total_bits + 7) // 8
    raw = np.frombuffer(secrets.token_bytes(count * nbytes), dtype=np.uint8).reshape(count, nbytes)
    if window_bits == 8:
        return raw[:, :windows]
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :total_bits]
    weights = (1 << np.arange(window_bits, dtype=np.int64))
    return bits.reshape(count, windows, window_bits).astype(np.int64) @ weights


def random_digits(count: int, windows: int, window_bits: int) -> list[list[int]]:
    """``count`` uniformly random exponents of ``windows·window_bits`` bits, as base-2^w digits
    (one list per exponent, lowest window first).

    The bytes come from ``secrets`` (the OS CSPRNG); the digit split is exact, so every
    exponent in [0, 2^(windows·w)) is equally likely.
    """
    return _random_digit_array(count, windows, window_bits).tolist()


def random_digit_columns(count: int, windows: int, window_bits: int) -> list[list[int]]:
    """The same distribution as :func:`random_digits`, one list per window (the fast layout)."""
    return _random_digit_array(count, windows, window_bits).T.tolist()


def _build_rows(base: mpz, modulus: mpz, windows: int, window_bits: int) -> list[list[mpz]]:
    size = 1 << window_bits
    rows = []
    step = mpz(base) % modulus                     # base^(2^(w·i)) for the current window i
    for _ in range(windows):
        row = [mpz(1), step]
        for _ in range(size - 2):
            row.append(row[-1] * step % modulus)
        rows.append(row)
        step = row[-1] * step % modulus            # base^(2^(w·(i+1)))
    return rows


class FixedBaseTable:
    """Powers of one base modulo one modulus, for exponents of up to ``exp_bits`` bits."""

    def __init__(self, base, modulus, exp_bits: int, window_bits: int):
        if not 1 <= window_bits <= 16:
            raise ValueError(f"window_bits must be in 1..16, got {window_bits}")
        self.modulus = mpz(modulus)
        self.window_bits = window_bits
        self.windows = -(-exp_bits // window_bits)
        self.rows = _build_rows(mpz(base), self.modulus, self.windows, window_bits)

    def pow_digits(self, digit_lists: list[list[int]]) -> list[mpz]:
        """``base^e mod modulus`` for each exponent e given by its base-2^w digits (low first)."""
        return self.pow_columns([list(col) for col in zip(*digit_lists)]) if digit_lists else []

    def pow_columns(self, columns: list[list[int]]) -> list[mpz]:
        """Like :meth:`pow_digits` with the digits given window by window (``columns[i][k]`` is
        window i of exponent k): one list comprehension per window, the fastest loop Python has."""
        rows, m = self.rows, self.modulus
        if not columns or not columns[0]:
            return []
        acc = [rows[0][d] for d in columns[0]]
        for row, col in zip(rows[1:], columns[1:]):
            acc = [a * row[d] % m for a, d in zip(acc, col)]
        return acc

    def pow(self, exponent: int) -> mpz:
        e = int(exponent)
        if e < 0 or e.bit_length() > self.windows * self.window_bits:
            raise ValueError("exponent out of the table's range")
        mask = (1 << self.window_bits) - 1
        return self.pow_digits([[(e >> (self.window_bits * i)) & mask for i in range(self.windows)]])[0]


class CrtFixedBaseTable:
    """The same powers computed modulo two coprime factors of the modulus and joined by CRT:
    p² and q² of a Paillier n², or p² and q of an Okamoto–Uchiyama n.

    Only the key holder can use it. Each half is about 3x cheaper per multiplication than
    working mod n², so the pair costs less than one table mod n² of the same window.
    """

    def __init__(self, base, m1, m2, exp_bits: int, window_bits: int):
        self.psq, self.qsq = mpz(m1), mpz(m2)
        self.tp = FixedBaseTable(mpz(base) % self.psq, self.psq, exp_bits, window_bits)
        self.tq = FixedBaseTable(mpz(base) % self.qsq, self.qsq, exp_bits, window_bits)
        self.windows, self.window_bits = self.tp.windows, window_bits
        self.psq_inv = gmpy2.invert(self.psq, self.qsq)

    def pow_columns(self, columns: list[list[int]]) -> list[mpz]:
        psq, qsq, inv = self.psq, self.qsq, self.psq_inv
        xp_all = self.tp.pow_columns(columns)
        xq_all = self.tq.pow_columns(columns)
        return [xp + psq * ((xq - xp) * inv % qsq) for xp, xq in zip(xp_all, xq_all)]
