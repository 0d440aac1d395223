"""``collab-server kernels add|list|remove`` from a subprocess, and a notebook run in the
environment it added (a real second Python: a virtual environment made here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerFactory
from tests.server.test_kernels import TIMEOUT, finished, notebook, run, text_of
from tests.yclient import YClient

WORKTREE = Path(__file__).resolve().parents[2]


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``collab-server kernels ARGS --data-dir=DATA_DIR``, this checkout's code, from /."""
    return subprocess.run(
        [sys.executable, "-m", "collab_server", "kernels", *args, f"--data-dir={data_dir}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(WORKTREE)},
        check=False,
    )


def listing(data_dir: Path) -> dict[str, list[str]]:
    """``kernels list`` as {name: [network, added, ...]} (display names without spaces)."""
    done = cli(data_dir, "list")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split()[:3] == ["name", "network", "added"]
    return {row.split()[0]: row.split()[1:] for row in rows}


@pytest.fixture
def environments() -> Iterator[Path]:
    """A folder for virtual environments that kernel accounts can enter (0755)."""
    folder = Path(tempfile.mkdtemp(prefix="cs-envs-", dir="/var/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def make_venv(path: Path, *options: str) -> Path:
    """A virtual environment at ``path``; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", *options, str(path)], check=True, timeout=120)
    return path / "bin" / "python"


async def test_a_notebook_runs_in_the_environment_added_for_it(
    make_server: ServerFactory, environments: Path
) -> None:
    # ipykernel comes from the system's site packages: a second environment, made fast.
    python = make_venv(environments / "science", "--system-site-packages")
    server = await make_server()
    data = server.services.settings.data_dir

    added = cli(data, "add", "science", str(python), "--display-name=Science")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"kernel science added ({data / 'kernels/science/kernel.json'})"
    assert cli(data, "add", "online", str(python), "--network").returncode == 0
    rows = listing(data)
    assert rows["science"] == ["no", "yes", "Science", str(python)]
    assert rows["online"][:2] == ["yes", "yes"]
    assert rows["python3"][:2] == ["no", "no"]  # Jupyter's own: not removable here
    spec = json.loads((data / "kernels/science/kernel.json").read_text())
    assert spec["argv"] == [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]

    # The running server sees it at once: the notebook asks for it by name.
    content = notebook(("p", "import sys; print(sys.prefix, sys.executable)"))
    content["metadata"]["kernelspec"] = {"name": "science", "display_name": "Science"}
    notebook_id = await server.create_notebook("alice/env.ipynb", content, editors=())
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as client:
        assert (await run(server, notebook_id, ["p"], "alice")).code == 202
        await client.wait_for(lambda: finished(client, "p"), timeout=TIMEOUT)
        assert text_of(client, "p").split() == [str(python.parent.parent), str(python)]
    status = await server.api("GET", f"/api/notebooks/{notebook_id}/kernel")
    assert json.loads(status.body)["kernel"]["name"] == "science"

    removed = cli(data, "remove", "science")
    assert removed.returncode == 0 and removed.stdout.strip() == "kernel science removed"
    assert "science" not in listing(data) and "online" in listing(data)

    # Added as python3, it is the kernel of every notebook that names none.
    assert cli(data, "add", "python3", str(python)).returncode == 0
    assert listing(data)["python3"][:2] == ["no", "yes"]
    plain = await server.create_notebook(
        "alice/plain.ipynb", notebook(("p", "import sys; print(sys.prefix)")), editors=()
    )
    async with YClient(server.ws_url(plain), server.token("alice")) as client:
        assert (await run(server, plain, ["p"], "alice")).code == 202
        await client.wait_for(lambda: finished(client, "p"), timeout=TIMEOUT)
        assert text_of(client, "p").strip() == str(python.parent.parent)


def test_unusable_pythons_and_names_are_refused_with_one_line(
    tmp_path: Path, environments: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    bare = make_venv(environments / "bare", "--without-pip")  # no ipykernel in it
    good = make_venv(environments / "good", "--system-site-packages")
    assert cli(data, "add", "good", str(good)).returncode == 0
    cases = [
        (("add", "bare", str(bare)), f"{bare} cannot import ipykernel (install it: "
         f"{bare} -m pip install ipykernel)"),
        (("add", "missing", str(tmp_path / "nope/python")), "no such program: "),
        (("add", "good", str(good)), "a kernel named 'good' exists already"),
        (("add", "no/slash", str(good)), "invalid kernel name 'no/slash'"),
        (("remove", "bare"), "no kernel named 'bare'"),
        (("remove", "python3"), "no kernel named 'python3'"),
    ]
    for args, message in cases:
        done = cli(data, *args)
        assert done.returncode == 1, (args, done.stderr)
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(f"collab-server kernels {args[0]}: ") and message in line, line
        assert done.stdout == ""
    assert sorted(p.name for p in (data / "kernels").iterdir()) == ["good"]

    # Reachable by root only (tmp_path is 0700): added, with a warning that says why.
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)
    (hidden / "python").symlink_to(good)
    done = cli(data, "add", "hidden", str(hidden / "python"))
    assert done.returncode == 0 and done.stdout.startswith("kernel hidden added")
    closed = next(f for f in reversed((hidden / "python").parents) if not f.stat().st_mode & 1)
    assert done.stderr.strip() == (
        f"collab-server kernels add: warning: other accounts cannot search {closed}, so "
        f"kernels running as them cannot start {hidden / 'python'} (chmod o+x {closed}, "
        "or move it)"
    )

    # A folder with no server data: refused, and nothing is created there.
    elsewhere = tmp_path / "not-data"
    done = cli(elsewhere, "add", "good2", str(good))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"collab-server kernels add: no server data folder at {elsewhere} "
        "(give --data-dir, or start the server once to create it)"
    )
    assert not elsewhere.exists()
