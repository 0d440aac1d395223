"""GET /api/notebooks/<id>?format=...: the notebook as .ipynb, stripped .ipynb, script, HTML."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import nbformat

from tests.conftest import Server


def plotted_notebook() -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python", "file_extension": ".py"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Visits per city"),
        nbformat.v4.new_code_cell(
            "total = 1204 + 873\ntotal",
            execution_count=3,
            outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "2077"}, execution_count=3)],
            metadata={"execution": {"iopub.status.busy": "2026-12-07T23:40:01Z"}, "tags": ["keep"]},
        ),
    ]
    return dict(nb)


async def download(server: Server, notebook_id: str, fmt: str, user: str = "alice") -> Any:
    return await server.api("GET", f"/api/notebooks/{notebook_id}?download=1&format={fmt}", user=user)


async def test_each_format_downloads_what_its_name_says(server: Server) -> None:
    notebook_id = await server.create_notebook(quote("alice/Visits é.ipynb"), plotted_notebook())

    full = await download(server, notebook_id, "ipynb")
    assert full.code == 200
    assert nbformat.reads(full.body.decode(), 4).cells[1].outputs[0].data["text/plain"] == "2077"

    stripped = await download(server, notebook_id, "stripped")
    assert stripped.code == 200
    assert stripped.headers["Content-Type"] == "application/x-ipynb+json"
    assert "filename*=UTF-8''Visits%20%C3%A9.ipynb" in stripped.headers["Content-Disposition"]
    nb = nbformat.reads(stripped.body.decode(), 4)
    nbformat.validate(nb)
    code = nb.cells[1]
    assert code.source == "total = 1204 + 873\ntotal"
    assert code.outputs == [] and code.execution_count is None
    assert code.metadata == {"tags": ["keep"]}  # what the author wrote stays, run timing goes
    assert nb.cells[0].source == "# Visits per city"

    script = await download(server, notebook_id, "script")
    assert script.code == 200 and script.headers["Content-Type"].startswith("text/plain")
    assert "Visits%20%C3%A9.py" in script.headers["Content-Disposition"]
    text = script.body.decode()
    assert "total = 1204 + 873" in text and "# # Visits per city" in text
    assert "2077" not in text

    html = await download(server, notebook_id, "html")
    assert html.code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert html.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in html.headers["Content-Security-Policy"]
    assert html.headers["X-Content-Type-Options"] == "nosniff"
    page = html.body.decode()
    assert "Visits per city" in page and "2077" in page and "1204" in page


async def test_viewers_may_export_and_others_are_told_it_does_not_exist(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/live.ipynb", plotted_notebook(), editors=())
    await server.share(notebook_id, "victor", "viewer")
    for fmt in ("stripped", "script", "html"):
        assert (await download(server, notebook_id, fmt, user="victor")).code == 200
        assert (await download(server, notebook_id, fmt, user="mallory")).code == 404


async def test_an_unknown_format_is_refused_and_changes_nothing(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/keep.ipynb", plotted_notebook())
    before = (await download(server, notebook_id, "ipynb")).body
    refused = await download(server, notebook_id, "pdf")
    assert refused.code == 400
    assert "unknown format" in json.loads(refused.body)["message"]
    assert (await download(server, notebook_id, "ipynb")).body == before
