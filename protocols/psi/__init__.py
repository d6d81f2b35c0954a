"""ECDH private set intersection for one active party (the hub) and any number of passives.

Sans-IO: :class:`ActivePsi` and :class:`PassivePsi` consume and produce the messages of
:mod:`protocols.psi.messages`; ``vfl.psi`` moves them over a transport. Group: X25519 on
Curve25519 points, libsodium through PyNaCl (why: :mod:`protocols.psi.group`).
``H`` is the keyed hash to the curve, ``a`` the active scalar, ``b_i`` passive i's.

Steps
  1. Active: fresh scalar ``a`` and job salt; sends ``PsiSetup(salt, private, chunk_size,
     active_size = |X|)``. Passive i checks ``|X|`` against its limits (:class:`PsiLimits`)
     and refuses before sending anything derived from its ids.
  2. Passive i: fresh scalar ``b_i``; shuffles its ids with a secret permutation, sends
     ``H(y)^b_i`` for each (``PsiPassiveMasked``, chunked).
  3. Active: shuffles its ids with a secret permutation, sends ``H(x)^a`` to every passive
     (``PsiActiveMasked``).
  4. Active: re-masks what passive i sent into ``H(y)^(a·b_i)`` and sends it back
     (``PsiReMasked``): in passive i's own stream order, or, with ``private=True``, in a fresh
     secret order.
  5. Passive i: masks ``H(x)^a`` into ``H(x)^(a·b_i)`` and compares with ``H(y)^(a·b_i)``: it now
     knows how many of its ids the active would learn (and, without the private option, which).
     Only if that is within its limits (``max_share``) and its caller's own check (e.g. a
     cumulative ledger per peer) does it return ``H(x)^(a·b_i)`` in the order received
     (``PsiDoubleMasked``); otherwise it aborts, and the active has learned only ``|Y_i|``.
  6. Active: for each own id and each passive, compares ``H(x)^(a·b_i)`` with the set of
     ``H(y)^(a·b_i)``; the global intersection is the ids found at every passive. Its order
     in the active's secret stream order is the common order.
  7. Active: sends passive i the positions, in i's own stream, of the common rows
     (``PsiAlignment``); passive i checks they are rows the active can have matched and maps
     them through its secret permutation to its rows. With ``private=True`` the alignment has
     ``min_i |Y_i|`` rows: the real ones at secret positions, the rest random other rows of
     that passive, and no size.

What each party learns (semi-honest parties; no collusion with the active party)
  - Active: the global intersection (as its own rows), and for each passive i which of its
    own ids passive i holds (the pairwise intersection ``X ∩ Y_i``) and ``|Y_i|`` — the first
    only with passive i's consent (step 5). Nothing about ids of a passive that are not among
    its own.
  - Passive i (default): ``|X|``, which of its own ids the active holds (``X ∩ Y_i``, as its
    own rows: what it lets the active learn, step 5), and which of them are in the global
    intersection, with their common order. Nothing about other passives.
  - Passive i (``private=True``): ``|X|``, ``|X ∩ Y_i|`` (a count: the re-masked values come in
    a secret order) and ``min_j |Y_j|``, and that its rows at the given positions are aligned;
    not which of them matched.
  - Everyone: the sizes of the sets (they are the lengths of the streams).
  Values are unlinkable across jobs: every job has fresh scalars and a fresh salt.
"""
from protocols.psi._common import DEFAULT_CHUNK, secure_permutation
from protocols.psi.active import ActiveOutcome, ActivePsi
from protocols.psi.errors import InvalidPointError, PsiError, PsiInputError, PsiPolicyError, PsiProtocolError
from protocols.psi.messages import (
    PROTOCOL_VERSION,
    PsiAbort,
    PsiActiveMasked,
    PsiAlignment,
    PsiDoubleMasked,
    PsiKind,
    PsiPassiveMasked,
    PsiReMasked,
    PsiSetup,
)
from protocols.psi.passive import PassiveOutcome, PassivePsi, PsiLimits, Reveal

__all__ = [
    "ActivePsi", "PassivePsi", "ActiveOutcome", "PassiveOutcome", "PsiLimits", "Reveal", "DEFAULT_CHUNK",
    "secure_permutation", "PROTOCOL_VERSION", "PsiKind", "PsiSetup", "PsiPassiveMasked",
    "PsiActiveMasked", "PsiReMasked", "PsiDoubleMasked", "PsiAlignment", "PsiAbort",
    "PsiError", "PsiInputError", "PsiProtocolError", "PsiPolicyError", "InvalidPointError",
]
