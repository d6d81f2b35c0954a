"""What each peer has learned of this party's ids through PSI, across jobs and predictions.

A passive's config caps the share of its ids one peer may learn in all (``[psi]
max_share_per_peer``). The ledger keeps, per peer, keyed hashes of the ids that peer has learned
— HMAC-SHA256 with a key of this party's that never leaves it, truncated to 16 bytes — never the
ids themselves, so the file says nothing without the key. A PSI whose union with what the peer
already knows would pass the cap is refused before anything that reveals it is sent. A private
PSI discloses a count, not which ids: its counts are added up (a bound above the union, so the
cap holds whatever those ids were). Files are private and written whole (:mod:`vfl.files`).

One ledger directory belongs to one party process (a lock orders its jobs).
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import pathlib
import secrets
import threading

import numpy as np

from protocols.psi import PsiPolicyError
from vfl.files import write_private
from vfl.psi import Disclosure

_DIGEST = 16


class PsiLedger:
    def __init__(self, directory, party: str):
        self.dir, self.party = pathlib.Path(directory), party
        self._lock = threading.Lock()

    def _key(self) -> bytes:
        path = self.dir / "ledger.key"
        if not path.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.dir, 0o700)
            write_private(path, secrets.token_bytes(32))
        return path.read_bytes()

    def _paths(self, peer: str) -> tuple[pathlib.Path, pathlib.Path]:
        return self.dir / f"{peer}.ids.npy", self.dir / f"{peer}.json"

    def known(self, peer: str) -> tuple[np.ndarray, int]:
        """The keyed hashes of ids ``peer`` has learned, and the count learned in private PSIs."""
        ids_path, meta_path = self._paths(peer)
        known = np.load(ids_path, allow_pickle=False) if ids_path.exists() else np.empty((0, _DIGEST), np.uint8)
        private = json.loads(meta_path.read_text())["private_count"] if meta_path.exists() else 0
        return known, int(private)

    def admit(self, peer: str, disclosure: Disclosure, max_share: float) -> None:
        """Record what ``peer`` is about to learn, or raise :class:`PsiPolicyError` (and record
        nothing) when it would then know more than ``max_share`` of this party's ids."""
        with self._lock:
            known, private = self.known(peer)
            new = known
            if disclosure.ids is not None:
                key = self._key()
                hashed = np.frombuffer(b"".join(hmac.new(key, i, hashlib.sha256).digest()[:_DIGEST]
                                                for i in disclosure.ids), np.uint8).reshape(-1, _DIGEST)
                new = np.unique(np.concatenate([known, hashed]), axis=0)
            added_private = private + (disclosure.count if disclosure.ids is None else 0)
            total = len(new) + added_private
            if total > max_share * disclosure.n_own:
                raise PsiPolicyError(f"{self.party}: {peer} would then have learned {total} of this party's "
                                     f"{disclosure.n_own} ids through PSI ({total / disclosure.n_own:.0%}); "
                                     f"max_share_per_peer is {max_share:.0%}")
            ids_path, meta_path = self._paths(peer)
            self._key()                                     # the directory, private, exists
            if disclosure.ids is not None:
                write_private(ids_path, _npy(new))
            write_private(meta_path, json.dumps({"private_count": added_private}))


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()
