"""How the hostile-input suite drew its examples, in the pytest header and summary; and
where its servers keep their folders.

The header hook only runs when ``tests/fuzz`` is named on the command line;
the summary line is also printed when the suite runs as part of ``tests/``.
See ``support`` for the environment variables.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import FUZZ_SCALE, FUZZ_SEED, FUZZ_STRICT

# Under /var/tmp (sticky, world-searchable) rather than pytest's basetemp: another pytest
# session on this machine may reset /tmp/pytest-of-<user> to 0700 while this one runs,
# and the kernels, which run as other unix users, could then no longer reach their folder.
FOLDERS_BASE = Path("/var/tmp")


def describe() -> str:
    seed = f"FUZZ_SEED={FUZZ_SEED}" if FUZZ_SEED is not None else "derandomized (fixed per test)"
    bugs = "known bugs fail (FUZZ_STRICT=1)" if FUZZ_STRICT else "known bugs counted"
    return f"hostile-input fuzz: hypothesis {seed}, FUZZ_SCALE={FUZZ_SCALE:g}, {bugs}"


def pytest_report_header(config: pytest.Config) -> str:
    return describe()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(describe())


def searchable_folder(parent: Path, prefix: str) -> Path:
    """A new folder only its owner may list, but that anyone may pass through (0711)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    folder.chmod(0o711)
    return folder


@pytest.fixture(scope="session")
def fuzz_folders() -> Iterator[Path]:
    """This session's own base folder, removed at the end (with whatever kernels left)."""
    base = FOLDERS_BASE if FOLDERS_BASE.is_dir() else Path(tempfile.gettempdir())
    folder = searchable_folder(base, "collab-fuzz-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def dirs(fuzz_folders: Path, request: pytest.FixtureRequest) -> tuple[Path, Path]:
    """The server's root and data folders (replaces ``tests/conftest.py``'s, which lives
    under pytest's basetemp), in a folder of this test's own that kernels can reach."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    folder = searchable_folder(fuzz_folders, f"{name}-")
    return folder / "notebooks", folder / "data"
