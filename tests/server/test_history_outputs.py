"""Rebuilding a notebook from the history keeps the outputs a real kernel produced.

A real server and kernel: matplotlib draws a PNG and pandas an HTML table in
the shared document; the notebook rebuilt from those executions holds the
same outputs, byte for byte, and one beyond ``max_kept_output_bytes`` is named.
"""

from __future__ import annotations

import base64
import json

import nbformat

from tests.conftest import ServerFactory
from tests.server.test_kernels import TIMEOUT, finished, notebook, outputs_of, run
from tests.yclient import YClient

PLOT = """\
%matplotlib inline
import matplotlib.pyplot as plt
plt.plot([1, 4, 2, 3])
plt.show()
"""
TABLE = """\
import pandas as pd
pd.DataFrame({"city": ["Lyon", "Oslo"], "rain_mm": [832, 763]})
"""


async def test_a_rebuilt_notebook_has_the_plot_and_table_the_document_had(
    make_server: ServerFactory,
) -> None:
    server = await make_server()
    cells = [("plot", PLOT), ("table", TABLE), ("hello", "print('hello')")]
    notebook_id = await server.create_notebook("alice/plots.ipynb", notebook(*cells))
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        response = await run(server, notebook_id, ["plot", "table", "hello"], "alice")
        assert response.code == 202, response.body
        ids = json.loads(response.body)["execution_ids"]
        await alice.wait_for(lambda: finished(alice, "plot", "table", "hello"), timeout=TIMEOUT)
        shown = {cell_id: outputs_of(alice, cell_id) for cell_id, _ in cells}
    pngs = [o["data"]["image/png"] for o in shown["plot"] if "image/png" in o.get("data", {})]
    assert len(pngs) == 1 and len(shown["plot"]) == 1, shown["plot"]  # no warning on stderr
    assert base64.b64decode(pngs[0]).startswith(b"\x89PNG\r\n\x1a\n")
    (table,) = shown["table"]
    assert "<table" in table["data"]["text/html"] and "Lyon" in table["data"]["text/html"]

    await server.services.execution_log.barrier()
    rebuilt = await server.api(
        "POST",
        f"/api/notebooks/{notebook_id}/history/rebuild",
        {"execution_ids": ids, "path": "alice/plots-again.ipynb"},
    )
    assert rebuilt.code == 201, rebuilt.body
    saved = (server.services.settings.root_dir / "alice" / "plots-again.ipynb").read_text()
    node = nbformat.reads(saved, as_version=4)
    nbformat.validate(node)
    again = node.cells
    assert [c.source for c in again] == [source for _, source in cells]
    for cell, (cell_id, _) in zip(again, cells, strict=True):
        assert [_plain(o) for o in cell.outputs] == [_plain(o) for o in shown[cell_id]]
    rebuilt_pngs = [o.data["image/png"] for o in again[0].outputs if "image/png" in o.data]
    assert rebuilt_pngs == pngs  # the same image, not a note about it
    assert not any(c.metadata["collab_execution"]["outputs_are_summaries"] for c in again)


async def test_a_plot_beyond_the_limit_is_named_in_the_rebuilt_notebook(
    make_server: ServerFactory,
) -> None:
    server = await make_server(max_kept_output_bytes=2000)
    notebook_id = await server.create_notebook("alice/big-plot.ipynb", notebook(("plot", PLOT)))
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        response = await run(server, notebook_id, ["plot"], "alice")
        (execution_id,) = json.loads(response.body)["execution_ids"]
        await alice.wait_for(lambda: finished(alice, "plot"), timeout=TIMEOUT)
        shown = outputs_of(alice, "plot")
    (figure,) = [o for o in shown if "image/png" in o.get("data", {})]
    await server.services.execution_log.barrier()
    notebook_json = await server.services.history.rebuild_notebook([execution_id])
    outputs = notebook_json["cells"][0]["outputs"]
    (note,) = [o for o in outputs if o["output_type"] == "display_data"]
    text = note["data"]["text/plain"]
    assert "image/png" not in note["data"]
    assert f"image/png ({len(figure['data']['image/png']):,} characters)" in text
    assert "max_kept_output_bytes" in text


def _plain(output: dict[str, object]) -> str:
    return json.dumps(output, sort_keys=True)
