"""The message registry: one class per kind, and a kind cannot be taken over from another module."""
from __future__ import annotations

import dataclasses

import pytest

from protocols.messages import Message, message_class


def _define(module: str, kind: str, name: str = "Setup"):
    namespace = {"KIND": kind, "__module__": module, "__qualname__": name, "__annotations__": {"n": int}}
    return dataclasses.dataclass(frozen=True)(type(name, (Message,), namespace))


def test_same_class_redefined_in_its_module_keeps_the_kind():
    first = _define("tests.protocols.fake_module", "test.registry_kind")
    again = _define("tests.protocols.fake_module", "test.registry_kind")     # e.g. a notebook cell run twice
    assert first is not again and message_class("test.registry_kind") is again


def test_a_class_of_another_module_cannot_take_a_kind_over():
    import vfl.linear.messages  # noqa: F401 - registers lr.setup
    with pytest.raises(TypeError, match="'lr.setup' used by both vfl.linear.messages.Setup and evil.Setup"):
        _define("evil", "lr.setup")
    assert message_class("lr.setup").__module__ == "vfl.linear.messages"
    with pytest.raises(KeyError, match="unknown message kind"):
        message_class("test.no_such_kind")
