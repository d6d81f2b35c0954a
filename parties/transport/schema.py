"""Check a decoded message body against its dataclass annotations before building it.

A peer controls every byte it sends, so the receiver rebuilds a message only when the field
names match exactly and every value has the annotated type. Annotations this checker does not
understand (``Any``, type variables, protocols) accept any *decodable* value: the codec itself
only ever produces plain data, numpy arrays and Paillier objects, never arbitrary objects.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing

from parties.runtime.errors import WireError
from vfl.messages import Message


@functools.lru_cache(maxsize=None)
def _field_types(cls: type[Message]) -> dict[str, object]:
    names = [f.name for f in dataclasses.fields(cls)]
    try:
        hints = typing.get_type_hints(cls)
    except Exception:          # an annotation that does not resolve: check names only
        hints = {}
    return {name: hints.get(name, typing.Any) for name in names}


def build_message(cls: type[Message], body: object) -> Message:
    """``cls(**body)`` after checking names and types; :class:`WireError` otherwise."""
    if not isinstance(body, dict):
        raise WireError(f"{cls.KIND}: body is not a map")
    types_ = _field_types(cls)
    missing, extra = set(types_) - set(body), set(body) - set(types_)
    if missing or extra:
        raise WireError(f"{cls.KIND}: fields do not match the schema "
                        f"(missing {sorted(missing)}, unexpected {sorted(map(str, extra))})")
    values = {name: _coerce(body[name], tp, f"{cls.KIND}.{name}") for name, tp in types_.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:       # a __post_init__ validation of the message class
        raise WireError(f"{cls.KIND}: {exc}") from None


def _coerce(value, tp, where: str):
    """``value`` if it conforms to ``tp`` (lists become tuples where a tuple is declared)."""
    if tp is typing.Any or tp is object or isinstance(tp, (typing.TypeVar, str)):
        return value
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, where)
            except WireError:
                continue
        raise _mismatch(value, tp, where)
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise _mismatch(value, tp, where)
    if origin in (list, tuple, dict):
        return _coerce_container(value, origin, typing.get_args(tp), tp, where)
    if origin is not None:              # other generics (Sequence[...], ...): check the origin only
        tp = origin
    return _coerce_plain(value, tp, where)


def _coerce_plain(value, tp, where: str):
    if tp is type(None):
        ok = value is None
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp in (list, tuple, dict):
        return _coerce_container(value, tp, (), tp, where)
    elif isinstance(tp, type):
        ok = isinstance(value, tp)
    else:
        ok = True                        # an annotation form we do not interpret
    if not ok:
        raise _mismatch(value, tp, where)
    return value


def _coerce_container(value, origin, args, tp, where: str):
    if origin is dict:
        if not isinstance(value, dict):
            raise _mismatch(value, tp, where)
        if len(args) != 2:
            return value
        return {_coerce(k, args[0], where + "[key]"): _coerce(v, args[1], f"{where}[{k!r}]")
                for k, v in value.items()}
    if not isinstance(value, (list, tuple)):
        raise _mismatch(value, tp, where)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if origin is tuple and args:
        if len(args) != len(value):
            raise WireError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
    items = [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)] if args else list(value)
    return tuple(items) if origin is tuple else items


def _mismatch(value, tp, where: str) -> WireError:
    name = getattr(tp, "__name__", None) or str(tp)
    return WireError(f"{where}: expected {name}, got {type(value).__name__}")
