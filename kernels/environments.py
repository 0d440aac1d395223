"""Kernel environments: kernelspecs for other Pythons or virtual environments.

An environment is a kernelspec folder ``<folder>/NAME/kernel.json`` whose
argv runs ``PYTHON -m ipykernel_launcher -f {connection_file}``; the
server's pool searches ``<folder>`` (``data_dir/kernels``) before Jupyter's
own kernelspec folders, so a notebook whose metadata names NAME gets it.
Used by ``collab-server kernels add|list|remove``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

_NAME = re.compile(r"^[a-z0-9._-]+$", re.IGNORECASE)  # what jupyter_client accepts
_CHECK = "import sys, ipykernel; print('%d.%d.%d' % sys.version_info[:3])"


class KernelEnvironmentError(Exception):
    """A kernel environment cannot be added or removed; the message says why, in one line."""


@dataclass(frozen=True)
class Environment:
    """A kernelspec as ``kernels list`` shows it; ``registered``: in the folder ``add`` writes."""

    name: str
    display_name: str
    program: str
    network: bool
    location: str
    registered: bool


def find_python(python: str) -> str:
    """The absolute path of ``python`` (a path, or a name looked up on PATH); symlinks kept.

    A virtual environment's ``bin/python`` is a symlink: resolving it would
    lose the environment, so the path is only made absolute.
    """
    found = shutil.which(python) if os.sep not in python else python
    if found is None or not os.path.isfile(found):
        raise KernelEnvironmentError(f"no such program: {python}")
    if not os.access(found, os.X_OK):
        raise KernelEnvironmentError(f"{found} is not executable")
    return os.path.abspath(found)


def closed_folder(program: str) -> Path | None:
    """The first folder on the way to ``program`` (as written, then resolved) that other
    accounts cannot search, or None: kernels running as them could not start it."""
    for path in (Path(program), Path(program).resolve()):
        for folder in reversed(path.parents):
            if not folder.stat().st_mode & stat.S_IXOTH:
                return folder
    return None


def check_python(python: str, timeout: float = 120.0) -> str:
    """Run ``python`` and import ipykernel with it; return its version ("3.11.7").

    Raises:
        KernelEnvironmentError: it does not run, or cannot import ipykernel.
    """
    try:
        done = subprocess.run(
            [python, "-I", "-c", _CHECK],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise KernelEnvironmentError(f"{python} does not run: {error}") from None
    if done.returncode != 0:
        if "ipykernel" in done.stderr:
            raise KernelEnvironmentError(
                f"{python} cannot import ipykernel (install it: {python} -m pip install ipykernel)"
            )
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise KernelEnvironmentError(f"{python} does not run: {last}")
    return done.stdout.strip()


def add(
    folder: Path,
    name: str,
    python: str,
    display_name: str = "",
    network: bool = False,
) -> Path:
    """Register ``python`` as the kernel NAME in ``folder``; return the kernelspec's folder.

    ``network`` marks the kernelspec as having the network for everyone who
    uses it (``KernelPool.has_network``). ``folder`` is created if missing
    (its parent must exist).

    Raises:
        KernelEnvironmentError: bad name, NAME already there, or ``python`` unusable.
    """
    if not _NAME.match(name):
        raise KernelEnvironmentError(f"invalid kernel name {name!r}: use letters, digits, . _ -")
    spec_dir = folder / name
    if spec_dir.exists():
        raise KernelEnvironmentError(f"a kernel named {name!r} exists already ({spec_dir})")
    program = find_python(python)
    version = check_python(program)
    spec = {
        "argv": [program, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name or f"Python {version} ({name})",
        "language": "python",
        "metadata": {"collab_server": {"network": network, "python_version": version}},
    }
    folder.mkdir(mode=0o755, exist_ok=True)
    spec_dir.mkdir(mode=0o755)
    temporary = spec_dir / "kernel.json.tmp"
    temporary.write_text(json.dumps(spec, indent=1) + "\n")
    temporary.replace(spec_dir / "kernel.json")
    return spec_dir


def remove(folder: Path, name: str) -> None:
    """Remove the kernel NAME registered in ``folder``.

    Raises:
        KernelEnvironmentError: there is none of that name in ``folder``.
    """
    spec_dir = folder / name
    if not _NAME.match(name) or not (spec_dir / "kernel.json").is_file():
        raise KernelEnvironmentError(f"no kernel named {name!r} in {folder}")
    shutil.rmtree(spec_dir)


def list_all(folder: Path, extra_dirs: list[str]) -> list[Environment]:
    """Every kernelspec the server's pool sees, ``folder``'s first (as the pool searches)."""
    specs = KernelSpecManager()
    dirs = [str(folder), *extra_dirs]
    specs.kernel_dirs = [*dict.fromkeys([*dirs, *specs.kernel_dirs])]
    found = []
    for name, location in sorted(specs.find_kernel_specs().items()):
        spec = specs.get_kernel_spec(name)
        settings = (spec.metadata or {}).get("collab_server")
        network = isinstance(settings, dict) and settings.get("network") is True
        found.append(
            Environment(
                name=name,
                display_name=spec.display_name,
                program=spec.argv[0] if spec.argv else "",
                network=network,
                location=location,
                registered=Path(location).parent == folder,
            )
        )
    return found


__all__ = [
    "Environment",
    "KernelEnvironmentError",
    "add",
    "check_python",
    "closed_folder",
    "find_python",
    "list_all",
    "remove",
]
