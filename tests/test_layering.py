"""Imports run one way: protocols <- vfl <- parties <- benchmarks, and inside parties
runtime <- transport <- jobs <- commands. protocols/ imports no transport or pandas."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "protocols": {"vfl", "parties", "benchmarks", "zmq", "pandas"},
    "vfl": {"parties", "benchmarks", "zmq"},
    "parties": {"benchmarks"},          # `vfl bench` imports a benchmark by name, when it runs
}
# inside parties: a package may import those before it in this list, never those after it
PARTIES_STACK = ("runtime", "transport", "jobs", "commands")


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _imported_roots(path: pathlib.Path) -> set[str]:
    return {name.split(".")[0] for name in _imports(path)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_run_one_way(package):
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = _imported_roots(path) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "layering violated:\n" + "\n".join(offenders)


def test_parties_packages_stack_one_way():
    offenders = []
    for level, package in enumerate(PARTIES_STACK):
        above = {f"parties.{p}" for p in PARTIES_STACK[level + 1:]}
        for path in sorted((ROOT / "parties" / package).rglob("*.py")):
            bad = {name for name in _imports(path) if any(name == a or name.startswith(a + ".") for a in above)}
            if bad:
                offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "parties layering violated:\n" + "\n".join(offenders)


def test_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("import zmq\nfrom parties.commands.cli import main\n")
    assert {"zmq", "parties"} <= _imported_roots(bad)
    assert "parties.commands.cli" in _imports(bad)
