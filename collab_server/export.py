"""A notebook in the forms people download: .ipynb, stripped .ipynb, script, HTML.

The stripped form is for version control (the "save stripped" of the
multi-user notebook discussions): no outputs, no execution counts, no
per-run cell metadata, so a diff shows only what people wrote. Script and
HTML come from nbconvert, as JupyterLab's "Save and Export Notebook As".
Each call is synchronous and CPU-bound: run it in a worker thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final

import nbformat

IPYNB: Final = "application/x-ipynb+json"

# Cell metadata that records a run rather than what the author wrote
# (JupyterLab's timing, the classic notebook's scroll state).
RUN_METADATA: Final = ("execution", "ExecuteTime", "collapsed", "scrolled")


class UnknownFormat(ValueError):
    """A format name that is not one of FORMATS."""


@dataclass(frozen=True, slots=True)
class Exported:
    body: bytes
    content_type: str
    filename: str


def stripped(notebook: dict[str, Any]) -> dict[str, Any]:
    """A copy without outputs, execution counts or run metadata."""
    copy: dict[str, Any] = json.loads(json.dumps(notebook))
    for cell in copy.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        metadata = cell.get("metadata", {})
        for key in RUN_METADATA:
            metadata.pop(key, None)
    return copy


def _ipynb(notebook: dict[str, Any]) -> bytes:
    return (json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode()


def _node(notebook: dict[str, Any]) -> Any:
    """The notebook as nbconvert takes it (sources joined, as ``nbformat.reads`` gives)."""
    return nbformat.reads(json.dumps(notebook), as_version=4)


def _script(notebook: dict[str, Any]) -> tuple[bytes, str]:
    from nbconvert import PythonExporter, ScriptExporter

    metadata = notebook.get("metadata", {})
    language = metadata.get("language_info", {}).get("name") or metadata.get(
        "kernelspec", {}
    ).get("language", "python")
    # Python gets its own exporter whatever the language_info says: markdown as comments,
    # "# In[n]:" markers, as JupyterLab's "Executable Script".
    exporter = PythonExporter() if language == "python" else ScriptExporter()
    body, resources = exporter.from_notebook_node(_node(notebook))
    return body.encode(), str(resources.get("output_extension") or ".txt")


def _html(notebook: dict[str, Any]) -> bytes:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(_node(notebook))
    return str(body).encode()


FORMATS: Final = ("ipynb", "stripped", "script", "html")


def export(data: bytes, fmt: str, path: str) -> Exported:
    """The notebook ``data`` (.ipynb bytes) at ``path`` in the form ``fmt``.

    Raises UnknownFormat for a name not in FORMATS.
    """
    stem = PurePosixPath(path).stem or "notebook"
    if fmt == "ipynb":
        return Exported(data, IPYNB, f"{stem}.ipynb")
    if fmt not in FORMATS:
        raise UnknownFormat(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    notebook = json.loads(data)
    if fmt == "stripped":
        return Exported(_ipynb(stripped(notebook)), IPYNB, f"{stem}.ipynb")
    if fmt == "script":
        body, extension = _script(notebook)
        return Exported(body, "text/plain; charset=utf-8", f"{stem}{extension}")
    return Exported(_html(notebook), "text/html; charset=utf-8", f"{stem}.html")
