"""Beaver triples: this party's shares of random ``a``, ``b`` and ``c = a·b`` (or ``a @ b``).

Dealer-free generation (:func:`start_triple`, run by :class:`vfl.mpc.MpcSession`): every party
i draws its own shares ``a_i``, ``b_i`` from ``secrets``; then

    c = Σ_i a_i·b_i  +  Σ_{i≠j} a_i·b_j,

where each party computes its own ``a_i·b_i`` and every cross term ``a_i·b_j`` is a Paillier
cross product (:mod:`protocols.mpc.crossprod`) in which j, the key holder, offers ``Enc(b_j)``
once to every other party and i multiplies by ``a_i``. A party's share of ``c`` is its own
product plus its shares of the cross terms it took part in. n parties run n·(n−1) cross
products; no one but the parties themselves is trusted (semi-honest).

:class:`TrustedDealer` makes the same triples in one place. It exists for tests and for
consortia that appoint a neutral party to deal: whoever runs it sees every party's shares, so
it is never a default and its name says what it trusts.

Triples are one-use secrets like key material: :class:`TripleStore` hands each out once,
never pickles or prints them, and reports how many were made and used (the budget).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from protocols.mpc.errors import TripleBudgetError
from protocols.mpc.ring import random_ring, ring_matmul, share


@dataclasses.dataclass(frozen=True)
class TripleShape:
    """``kind`` "matrix": a (m×k), b (k×n), c (m×n); "elementwise": a, b, c all of ``(m,)``."""

    kind: str
    m: int
    k: int = 1
    n: int = 1

    def __post_init__(self):
        if self.kind not in ("matrix", "elementwise") or min(self.m, self.k, self.n) < 1:
            raise ValueError(f"not a triple shape: {self}")
        if self.kind == "elementwise" and (self.k, self.n) != (1, 1):
            raise ValueError("an elementwise triple has one dimension")

    @property
    def a(self) -> tuple:
        return (self.m, self.k) if self.kind == "matrix" else (self.m,)

    @property
    def b(self) -> tuple:
        return (self.k, self.n) if self.kind == "matrix" else (self.m,)

    @property
    def c(self) -> tuple:
        return (self.m, self.n) if self.kind == "matrix" else (self.m,)

    def product(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return ring_matmul(a, b) if self.kind == "matrix" else a * b

    @property
    def multiplications(self) -> int:
        """Scalar multiplications this triple stands for (m·k·n or m)."""
        return self.m * self.k * self.n


class Triple:
    """This party's shares of one triple. Not printable, not picklable."""

    __slots__ = ("shape", "a", "b", "c")

    def __init__(self, shape: TripleShape, a: np.ndarray, b: np.ndarray, c: np.ndarray):
        if (a.shape, b.shape, c.shape) != (shape.a, shape.b, shape.c):
            raise ValueError(f"triple shares of shapes {a.shape}, {b.shape}, {c.shape} do not fit {shape}")
        self.shape, self.a, self.b, self.c = shape, a, b, c

    def __repr__(self) -> str:
        return f"Triple({self.shape.kind} {self.shape.a}·{self.shape.b}, shares hidden)"

    def __reduce__(self):
        raise TypeError("triple shares are one-use secrets: they are never pickled")


def start_triple(shape: TripleShape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This party's random ``a_i``, ``b_i`` and its local term ``a_i·b_i`` of ``c``."""
    a, b = random_ring(shape.a), random_ring(shape.b)
    return a, b, shape.product(a, b)


class TrustedDealer:
    """Triples dealt by one party that sees them all — for tests, or a consortium's neutral dealer.

    Whoever runs this learns every party's shares: an online phase using its triples is
    private only against parties other than the dealer.
    """

    def __init__(self, parties: int):
        if parties < 2:
            raise ValueError("a dealer deals to at least 2 parties")
        self.parties = parties

    def deal(self, shape: TripleShape) -> list[Triple]:
        a, b = random_ring(shape.a), random_ring(shape.b)
        c = shape.product(a, b)
        return [Triple(shape, *parts) for parts in zip(share(a, self.parties), share(b, self.parties),
                                                      share(c, self.parties))]


class TripleStore:
    """Triples made ahead of the online phase, each handed out once, with a budget report."""

    def __init__(self):
        self._waiting: dict[TripleShape, list[Triple]] = {}
        self.made = 0
        self.used = 0
        self.multiplications_made = 0

    def add(self, triple: Triple) -> None:
        self._waiting.setdefault(triple.shape, []).append(triple)
        self.made += 1
        self.multiplications_made += triple.shape.multiplications

    def take(self, shape: TripleShape) -> Triple:
        """The next unused triple of ``shape``; it is gone from the store afterwards."""
        waiting = self._waiting.get(shape)
        if not waiting:
            raise TripleBudgetError(f"no {shape.kind} triple {shape.a}·{shape.b} left: "
                                    f"{self.made} made, {self.used} used (generate more in the offline phase)")
        self.used += 1
        return waiting.pop(0)

    def available(self, shape: TripleShape) -> int:
        """How many unused triples of ``shape`` are waiting."""
        return len(self._waiting.get(shape, ()))

    def budget(self) -> dict:
        return {"made": self.made, "used": self.used, "left": self.made - self.used,
                "multiplications_made": self.multiplications_made}

    def __repr__(self) -> str:
        return f"TripleStore({self.budget()})"

    def __reduce__(self):
        raise TypeError("triple shares are one-use secrets: they are never pickled")
