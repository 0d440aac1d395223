"""The ``collab-server`` command as an operator meets it: each start-up error is one
line on stderr and exit 1, config files, the data folder lock, logs, the unit file."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import json
import os
import queue
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from collab_server.logs import access_level
from tests.auth.unix_users import UnixUsers, throwaway_unix_users

REPO = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "collab_server"]
QUICK = ["--KernelPool.pool_size=0"]  # no spare kernels: these tests run none
TEXT_LINE = re.compile(r"^\[[DIWEC] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [\w.]+\] ")


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        env=env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a command that failed with exit status 1."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("collab-server: ")
    return lines[0]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Server:
    """A ``collab-server`` process on a free loopback port; its stderr goes to a file."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.log = cwd / f"server-{time.monotonic_ns()}.log"
        with self.log.open("w") as stderr:
            self.process = subprocess.Popen(
                [*COMMAND, "--port=0", *QUICK, *args],
                cwd=cwd,
                env=env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        out = self.process.stdout
        threading.Thread(target=lambda: lines.put(out.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            self.stop()
            raise AssertionError(f"server did not start: {self.log.read_text()}") from None
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, f"server did not start: {line!r} {self.log.read_text()}"
        self.port = int(match.group(1))
        self.pid = self.process.pid

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def get(self, path: str) -> int:
        """The status of an anonymous GET, redirects not followed."""

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(f"http://127.0.0.1:{self.port}{path}", timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as e:
            return e.code

    def stop(self) -> int:
        """SIGTERM (what systemd sends), then wait for the exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


@pytest.fixture
def unix_users() -> Iterator[UnixUsers]:
    yield from throwaway_unix_users()


@contextmanager
def server(cwd: Path, *args: str) -> Iterator[Server]:
    running = Server(cwd, *args)
    try:
        yield running
    finally:
        running.stop()


# ---- version, help, config files ---------------------------------------------------


def test_version_is_the_package_version(tmp_path: Path) -> None:
    done = run(tmp_path, "--version")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.strip() == importlib.metadata.version("collab-server") == "0.1.0"


def test_help_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    """``collab-server --help-all | head -1``: the reader leaves before the help is written."""
    process = subprocess.Popen(
        [*COMMAND, "--help-all"],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # every write now fails with EPIPE
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == 128 + signal.SIGPIPE
    assert stderr == b""


def test_generate_config_writes_every_option_and_loads_back(tmp_path: Path) -> None:
    done = run(tmp_path, "--generate-config")
    assert done.returncode == 0, done.stderr
    path = tmp_path / "collab_server_config.py"
    text = path.read_text()
    ast.parse(text)
    for line in [
        "# c.CollabServer.port = 8765",
        "# c.ServerConfig.data_dir = 'data'",
        "# c.CollabServer.log_style = 'text'",
        "## Port to listen on (0 picks a free one).",  # the help, as a comment
    ]:
        assert line in text
    for section in ["KernelPool", "PAMAuthenticator", "GenericOIDCAuthenticator"]:
        assert f"# {section}(" in text
    # Uncomment one option: the server loads the file and sees it.
    path.write_text(text.replace("# c.CollabServer.port = 8765", "c.CollabServer.port = 9123"))
    shown = run(tmp_path, "--config", str(path), "--show-config")
    assert shown.returncode == 0, shown.stderr
    assert str(path) in shown.stdout and ".port = 9123" in shown.stdout


def test_generate_config_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "collab_server_config.py"
    path.write_text("c.CollabServer.port = 9000\n")
    line = one_line(run(tmp_path, "--generate-config"))
    assert line == "collab-server: collab_server_config.py exists; -y (or --force) overwrites it"
    assert path.read_text() == "c.CollabServer.port = 9000\n"
    for flag in ["-y", "--force"]:
        path.write_text("c.CollabServer.port = 9000\n")
        done = run(tmp_path, "--generate-config", flag)
        assert done.returncode == 0, done.stderr
        assert "# c.CollabServer.port = 8765" in path.read_text()


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    for args in [("--config", "missing.py"), ("user", "list", "--config=missing.py")]:
        assert one_line(run(tmp_path, *args)) == "collab-server: config file missing.py not found"
    assert not (tmp_path / "data").exists()


def test_a_config_file_that_fails_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("c.CollabServer.port = undefined_name\n")
    line = one_line(run(tmp_path, "--config", "broken.py"))
    assert line == (
        "collab-server: config file broken.py: NameError: name 'undefined_name' is not defined"
    )


def test_a_bad_option_value_is_one_log_line(tmp_path: Path) -> None:
    done = run(tmp_path, "--port=abc")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert TEXT_LINE.match(line) and line.startswith("[C ")
    assert "The 'port' trait of a CollabServer instance expected an int" in line


# ---- the port and the data folder ----------------------------------------------------


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(tmp_path, f"--port={port}", *QUICK)
    assert one_line(done) == (
        f"collab-server: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert not (tmp_path / "data").exists()  # failed before the lock or any database


def test_one_server_per_data_folder(tmp_path: Path) -> None:
    lock = tmp_path / "data" / "server.lock"
    with server(tmp_path) as first:
        assert lock.read_text() == f"{first.pid}\n"
        line = one_line(run(tmp_path, "--port=0", *QUICK))
        assert line == (
            f"collab-server: {tmp_path / 'data'} is in use by another collab-server "
            f"(pid {first.pid}); stop it or give this one another --data-dir"
        )
        # Admin subcommands run beside the server: they do not take the lock.
        listed = run(tmp_path, "user", "list")
        assert listed.returncode == 0, listed.stderr
        assert first.stop() == 0
    assert lock.read_text() == ""  # released
    with server(tmp_path) as second:
        assert lock.read_text() == f"{second.pid}\n"


def test_a_killed_server_leaves_no_stale_lock(tmp_path: Path) -> None:
    with server(tmp_path) as first:
        first.process.kill()
        first.process.wait(timeout=30)
        with server(tmp_path) as second:
            assert (tmp_path / "data" / "server.lock").read_text() == f"{second.pid}\n"


def lock_holders(lock: Path) -> set[int]:
    """Pids of every process with ``lock`` open."""
    holders = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == str(lock) for fd in fd_dir.iterdir()):
                holders.add(int(fd_dir.parent.name))
        except OSError:  # gone, or not ours to read
            continue
    return holders


def descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_kernels_and_workers_never_hold_the_lock(
    dirs: tuple[Path, Path], unix_users: UnixUsers
) -> None:
    """Only the server holds it: a kernel outliving a killed server cannot block a restart."""
    folder = dirs[0].parent  # 0711: the kernel's account can reach its notebook folder
    tina, _ = unix_users.add_user()
    assert run(folder, "user", "add", tina, "--create").returncode == 0
    token = run(folder, "token", "create", tina).stdout.strip()
    notebook = {
        "cells": [
            {"cell_type": "code", "id": "c1", "source": "1 + 1", "metadata": {},
             "outputs": [], "execution_count": None},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    with server(folder) as running:

        def api(method: str, path: str, body: object = None) -> Any:
            request = urllib.request.Request(
                f"http://127.0.0.1:{running.port}{path}",
                method=method,
                data=json.dumps(body).encode() if body is not None else None,
                headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"null")

        made = api(
            "PUT", f"/api/contents/{tina}/a.ipynb", {"type": "notebook", "content": notebook}
        )
        api("POST", f"/api/notebooks/{made['id']}/execute", {"cell_ids": ["c1"]})

        def ran() -> bool:
            runs = api("GET", f"/api/notebooks/{made['id']}/history")["executions"]
            return bool(runs) and runs[0]["status"] == "ok"

        wait_for(ran, "the cell to run", timeout=120)
        children = descendants(running.pid)
        assert children  # the kernel (and the notebook worker) run beside the server
        assert lock_holders(folder / "data" / "server.lock") == {running.pid}


# ---- admin subcommands need the server's data -----------------------------------------


def test_subcommands_refuse_a_folder_without_server_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for args in [("token", "list"), ("user", "list"), ("group", "list"), ("user", "add", "bob")]:
        line = one_line(run(tmp_path, *args))
        assert line == (
            f"collab-server: no server data in {data} (collab.db is missing): run where the "
            "server runs or pass --data-dir/--config; --create makes a new one"
        )
    assert not data.exists()
    done = run(tmp_path, "user", "add", "bob", "--create")
    assert done.returncode == 0, done.stderr
    assert (data / "collab.db").is_file()
    assert run(tmp_path, "user", "list").returncode == 0


def test_token_create_needs_an_existing_user(tmp_path: Path) -> None:
    assert run(tmp_path, "user", "add", "bob", "--create").returncode == 0
    line = one_line(run(tmp_path, "token", "create", "bbo"))
    assert line == (
        "collab-server: no user named 'bbo': add them first with `collab-server user add bbo`"
    )
    assert "bbo" not in run(tmp_path, "user", "list").stdout
    made = run(tmp_path, "token", "create", "bob")
    assert made.returncode == 0 and len(made.stdout.strip()) == 64


def test_subcommands_check_a_database_url_holds_the_server_tables(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()  # a database, but not the server's
    url = f"sqlite:///{other}"
    assert one_line(run(tmp_path, "user", "list", f"--db-url={url}")) == (
        f"collab-server: {url} holds no collab-server tables: check --db-url/--config; "
        "--create makes them"
    )
    # Nothing listens on port 1 of the loopback: refused at once.
    down = "postgresql+psycopg://collab:secret@127.0.0.1:1/collab"
    line = one_line(run(tmp_path, "user", "list", f"--db-url={down}"))
    shown = "postgresql+psycopg://collab:***@127.0.0.1:1/collab"
    assert line.startswith(f"collab-server: cannot open the database {shown}: ")
    assert "secret" not in line
    assert not (tmp_path / "data").exists()


# ---- logs ------------------------------------------------------------------------------


def test_access_levels() -> None:
    codes = (200, 302, 304, 400, 401, 403, 404, 429, 500, 503)
    levels = {code: access_level(code) for code in codes}
    assert levels == {
        200: 20, 302: 20, 304: 20, 401: 20, 404: 20,
        400: 30, 403: 30, 429: 30,
        500: 40, 503: 40,
    }  # fmt: skip


def test_text_logs_share_one_format_and_an_anonymous_visit_is_info(tmp_path: Path) -> None:
    with server(tmp_path) as running:
        assert running.get("/health") == 200  # a balancer's probe: DEBUG, not in the log
        assert running.get("/") == 302  # to the login page
        assert running.get("/nothing-here") == 404
        wait_for(lambda: sum("tornado.access]" in line for line in running.lines()) == 2, "2 lines")
        assert running.stop() == 0
        lines = running.lines()
    assert lines and all(TEXT_LINE.match(line) for line in lines), lines
    access = [line for line in lines if "tornado.access]" in line]
    assert re.match(r"^\[I .* tornado\.access\] 302 GET / \(127\.0\.0\.1\) \d+\.\d\dms$", access[0])
    assert access[1].startswith("[I ") and " 404 GET /nothing-here " in access[1]
    assert not [line for line in lines if line.startswith(("[W ", "[E "))], lines
    assert not [line for line in lines if "/health" in line], lines
    assert any("collab_server] shutting down" in line for line in lines)


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    with server(tmp_path, "--CollabServer.log_style=json") as running:
        assert running.get("/?token=not-logged") == 302
        wait_for(lambda: any("tornado.access" in line for line in running.lines()), "access line")
        assert running.stop() == 0
        entries = [json.loads(line) for line in running.lines()]
    assert entries
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys()
    [access] = [e for e in entries if e["logger"] == "tornado.access"]
    assert access["level"] == "INFO"
    assert (access["method"], access["path"], access["status"]) == ("GET", "/", 302)
    assert access["remote_ip"] == "127.0.0.1" and access["duration_ms"] >= 0
    assert "not-logged" not in json.dumps(entries)  # the query string may hold a token
    assert any(e["logger"] == "collab_server" and "shutting down" in e["message"] for e in entries)


# ---- the systemd unit ------------------------------------------------------------------


def test_the_systemd_unit_runs_our_command_line(tmp_path: Path) -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read(REPO / "deploy" / "collab-server.service")
    service = unit["Service"]
    assert service["User"] == "root"
    assert service["WorkingDirectory"] == "/var/lib/collab-server"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM" and service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) >= 60
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # Its ExecStart, with this checkout for the installed script and a generated config
    # file for /etc's: our parser takes every argument and loads the file.
    argv = shlex.split(service["ExecStart"])
    assert argv[:2] == ["/usr/local/bin/collab-server", "--config"]
    assert argv[2] == "/etc/collab-server/collab_server_config.py"
    assert run(tmp_path, "--generate-config").returncode == 0
    config = tmp_path / "collab_server_config.py"
    config.write_text(config.read_text() + "c.CollabServer.port = 9124\n")
    done = run(tmp_path, *argv[1:2], str(config), *argv[3:], "--show-config")
    assert done.returncode == 0, done.stderr
    assert f"Loaded config files:\n  {config}" in done.stdout
    assert ".port = 9124" in done.stdout
