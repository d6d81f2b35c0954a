"""Every notebook runs top to bottom (outputs are stripped in the repository)."""
from __future__ import annotations

import pathlib
import time

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
@pytest.mark.timeout(300)
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("VFL_NO_PROGRESS", "1")
    monkeypatch.setenv("VFL_WORKERS", "1")     # no worker pool to tear down with the kernel
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        f"{path.name}: outputs must be stripped in the repository"
    start = time.perf_counter()
    client = NotebookClient(notebook, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    assert time.perf_counter() - start < 120, f"{path.name} took more than two minutes"
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
