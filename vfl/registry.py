"""Which model families exist: the built-in ones, listed here, and plugins a party names.

A plugin is a Python module that calls :func:`register` when imported. A party names its
plugins itself — ``plugins = ["acme_vfl.family"]`` in its config file (``vfl serve``, and ``vfl
run``/``vfl predict --config``), or ``--plugin`` on ``vfl run``/``vfl predict`` — never a job file,
because a job comes from another organisation and must not choose code for this party to
import. Both sides of a job must load the same plugins (the family's message kinds register
when its module is imported), and each party's Python must find the module: installed, or on
its ``PYTHONPATH``.

The registry is process-wide state on purpose: message kinds are too, and a party process
serves every job from the same set of families.
"""
from __future__ import annotations

import importlib
import logging
from typing import Iterable

from vfl.errors import VFLError
from vfl.family import ModelFamily

log = logging.getLogger("vfl.registry")
_FAMILIES: dict[str, ModelFamily] = {}


class UnknownModelError(VFLError, ValueError):
    """A job names a model family this party does not have."""

    category = "unknown model"


class PluginError(VFLError):
    """A plugin module could not be imported or registered nothing usable."""

    category = "plugin"


def register(*families: ModelFamily) -> None:
    """Make ``families`` available to jobs under their names (a name is taken once)."""
    for family in families:
        if not isinstance(family, ModelFamily):
            raise TypeError(f"{family!r} is not a ModelFamily")
        if family.topology != "vertical":
            raise ValueError(f"{family.name}: topology {family.topology!r} has no flow to run it yet")
        other = _FAMILIES.get(family.name)
        if other is not None and type(other) is not type(family):
            raise ValueError(f"model family {family.name!r} is already registered by {type(other).__qualname__}")
        _FAMILIES[family.name] = family


def family(name: str) -> ModelFamily:
    try:
        return _FAMILIES[name]
    except (KeyError, TypeError):
        raise UnknownModelError(f"unknown model {name!r}; choose one of {names()}") from None


def names() -> list[str]:
    return sorted(_FAMILIES)


def accepting_missing_values() -> list[str]:
    """The families whose tables may have empty cells (for error messages)."""
    return sorted(n for n, f in _FAMILIES.items() if f.data.allow_nan)


def load_plugins(modules: Iterable[str]) -> list[str]:
    """Import each plugin module (it registers its families); returns the family names."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise PluginError(f"plugin {module!r} could not be imported: {type(exc).__name__}: {exc}") from exc
        log.info("plugin %s loaded", module)
    return names()


def _builtin() -> None:
    """The built-in families, one line each. Importing them (and the job and PSI messages) also
    registers every built-in message kind, so that a plugin loaded later cannot claim one."""
    import protocols.psi.messages  # noqa: F401
    import vfl.jobs.messages  # noqa: F401
    from vfl import binning, linear, pearson, scorecard, secureboost, sslr
    register(*linear.FAMILIES)
    register(*sslr.FAMILIES)
    register(*secureboost.FAMILIES)
    register(*pearson.FAMILIES)
    register(*binning.FAMILIES)
    register(*scorecard.FAMILIES)


_builtin()
