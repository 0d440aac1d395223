"""``collab-server kernels add|list|remove``: kernels from other Pythons or virtual environments.

They write kernelspecs into ``data_dir/kernels``, which the server's pool
searches first (:mod:`kernels.environments`); a running server sees a new
one at the next kernel start.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from traitlets import Bool, Unicode
from traitlets.config import Application

from kernels.environments import KernelEnvironmentError, add, closed_folder, list_all, remove
from kernels.pool import KernelPool

from .admin_db import CommandGroup
from .app import DB_ALIASES, ServerConfig, load_config_file


def _kernel_dir(app: Application) -> Path:
    """``data_dir/kernels``; exits when data_dir does not exist (a wrong folder, most likely)."""
    load_config_file(app)
    settings = ServerConfig(parent=app).settings()
    if not settings.data_dir.is_dir():
        app.exit(
            f"{app.name}: no server data folder at {settings.data_dir} "
            "(give --data-dir, or start the server once to create it)"
        )
    return settings.kernel_dir()


class KernelsAddApp(Application):
    """collab-server kernels add NAME PYTHON [--display-name=TEXT] [--network]: register a
    kernel that runs PYTHON (which must be able to import ipykernel)."""

    name = "collab-server kernels add"
    description = __doc__ or ""
    aliases = {"display-name": "KernelsAddApp.display_name", **DB_ALIASES}
    flags = {
        "network": (
            {"KernelsAddApp": {"network": True}},
            "Kernels of this kind have the network, whoever runs them.",
        )
    }
    classes = [ServerConfig]
    display_name = Unicode(
        "", config=True, help="Name shown for it. Default: 'Python X.Y.Z (NAME)'."
    )
    network = Bool(
        False,
        config=True,
        help="Give this kernel the host's network for everyone who uses it "
        "(otherwise only members of KernelPool.network_groups have it).",
    )

    def start(self) -> None:
        if len(self.extra_args) != 2:
            self.exit("usage: collab-server kernels add NAME PYTHON [--display-name=TEXT]")
        name, python = self.extra_args
        folder = _kernel_dir(self)
        try:
            spec_dir = add(folder, name, python, self.display_name, self.network)
        except KernelEnvironmentError as error:
            self.exit(f"{self.name}: {error}")
        print(f"kernel {name} added ({spec_dir / 'kernel.json'})")
        program = json.loads((spec_dir / "kernel.json").read_text())["argv"][0]
        closed = closed_folder(program)
        if closed is not None and os.geteuid() == 0:
            print(
                f"{self.name}: warning: other accounts cannot search {closed}, so kernels "
                f"running as them cannot start {program} (chmod o+x {closed}, or move it)",
                file=sys.stderr,
            )


class KernelsListApp(Application):
    """collab-server kernels list: every kernel the server can start, and what it runs."""

    name = "collab-server kernels list"
    description = __doc__ or ""
    aliases = DB_ALIASES
    classes = [ServerConfig, KernelPool]

    def start(self) -> None:
        folder = _kernel_dir(self)
        extra = list(KernelPool(parent=self).extra_kernel_dirs)
        print(f"{'name':<16} {'network':<8} {'added':<6} {'display name':<32} program")
        for env in list_all(folder, extra):
            print(
                f"{env.name:<16} {'yes' if env.network else 'no':<8} "
                f"{'yes' if env.registered else 'no':<6} {env.display_name:<32} {env.program}"
            )


class KernelsRemoveApp(Application):
    """collab-server kernels remove NAME: unregister a kernel added with `kernels add`."""

    name = "collab-server kernels remove"
    description = __doc__ or ""
    aliases = DB_ALIASES
    classes = [ServerConfig]

    def start(self) -> None:
        if len(self.extra_args) != 1:
            self.exit("usage: collab-server kernels remove NAME")
        folder = _kernel_dir(self)
        try:
            remove(folder, self.extra_args[0])
        except KernelEnvironmentError as error:
            self.exit(f"{self.name}: {error}")
        print(f"kernel {self.extra_args[0]} removed")


class KernelsApp(CommandGroup):
    """Register kernels from other Pythons or virtual environments."""

    name = "collab-server kernels"
    description = __doc__ or ""
    subcommands = {
        "add": (KernelsAddApp, KernelsAddApp.__doc__ or ""),
        "list": (KernelsListApp, KernelsListApp.__doc__ or ""),
        "remove": (KernelsRemoveApp, KernelsRemoveApp.__doc__ or ""),
    }
