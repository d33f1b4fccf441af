"""The example notebook runs from top to bottom in a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("imageio_ffmpeg")

NOTEBOOK = Path(__file__).parents[1] / "examples" / "notebook.ipynb"


def test_the_example_notebook_executes_and_shows_the_viewer_and_a_frame(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("<iframe" in h and "http://localhost:" in h for h in html), html
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "200 http://localhost:" in text  # the viewer answered from inside the kernel
    assert "uint8" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # a rendered frame
