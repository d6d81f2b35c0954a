import pytest

from protocols._workers import resolve_workers


def test_argument_wins_over_environment(monkeypatch):
    monkeypatch.setenv("VFL_WORKERS", "3")
    assert resolve_workers(1) == 1
    assert resolve_workers() == 3


def test_default_is_all_cores(monkeypatch):
    import os
    monkeypatch.delenv("VFL_WORKERS", raising=False)
    assert resolve_workers() == (os.cpu_count() or 1)


@pytest.mark.parametrize("raw", ["zero", "0", "-2"])
def test_bad_values_are_named(monkeypatch, raw):
    monkeypatch.setenv("VFL_WORKERS", raw)
    with pytest.raises(ValueError):
        resolve_workers()
