"""Base of every cross-party message.

Pure data, no I/O: it lives in ``protocols`` so sans-IO protocol roles can produce and consume
messages; ``vfl.messages`` re-exports it.

Each protocol defines its messages in its own ``messages.py`` as frozen dataclasses that
subclass :class:`Message` and set a unique ``KIND`` string (from that protocol's kind enum).
Both roles import the same module, so a misspelt key cannot make one side wait forever.

Field types the wire codec (``parties.transport.codec``) carries:
``None, bool, int, float, str, bytes``, lists/tuples/dicts of those, ``numpy.ndarray``
(numeric dtypes, zero-copy frames), and from ``protocols.paillier`` a ``PublicKey`` or an
``EncryptedVector`` (fixed-width big-endian ciphertext frames). Nothing is ever pickled. A union
may hold at most one of ``bytes``, ``numpy.ndarray`` and the Paillier types, besides ``None``
(the receiver's typed decoder checks every field: ``parties.transport.codec``).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, TypeVar

_REGISTRY: dict[str, type["Message"]] = {}

M = TypeVar("M", bound="Message")


@dataclasses.dataclass(frozen=True)
class Message:
    """A typed message. Subclasses are frozen dataclasses with a unique class-level ``KIND``."""

    KIND: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("KIND", "")
        if not kind:
            return  # abstract intermediate class
        other = _REGISTRY.get(kind)
        if other is not None and (other.__module__, other.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(f"message kind {kind!r} used by both {other.__module__}.{other.__qualname__} and "
                            f"{cls.__module__}.{cls.__qualname__}")
        _REGISTRY[kind] = cls


def message_class(kind: str) -> type[Message]:
    """The message class registered for ``kind``; ``KeyError`` naming it if unknown."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise KeyError(f"unknown message kind {kind!r}") from None


def registered_kinds() -> list[str]:
    return sorted(_REGISTRY)
