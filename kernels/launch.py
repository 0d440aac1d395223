"""A tiny launcher that limits its own resources, enters a folder, then becomes the kernel.

The pool starts a kernel as ``python launch.py [options] -- <kernel argv>``.
The process already runs as the kernel's user (``subprocess`` switched uid,
gid and groups before executing it, or :mod:`kernels.sandbox` did), so lowering resource limits and
entering the notebook folder need no privilege, and are checked against that
user's permissions rather than the server's; then it becomes the kernel
with ``os.execvp``, keeping its pid (the pool's process handle stays valid).

It uses only the standard library and is run by its file path with ``-I``,
so it works for any user who can run the interpreter, without importing
the rest of the server. :func:`command` builds its argument list.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceLimits:
    """Limits applied to one kernel process; 0 means unlimited (inherited).

    ``processes`` is RLIMIT_NPROC, which Linux counts per *user*: every
    process and thread of the kernel's uid counts, in all its kernels.
    """

    address_space: int = 0
    cpu_seconds: int = 0
    processes: int = 0
    open_files: int = 0
    file_size: int = 0

    def as_pairs(self) -> list[tuple[int, int]]:
        """(resource.RLIMIT_*, value) for every limit that is set."""
        pairs = [
            (resource.RLIMIT_AS, self.address_space),
            (resource.RLIMIT_CPU, self.cpu_seconds),
            (resource.RLIMIT_NPROC, self.processes),
            (resource.RLIMIT_NOFILE, self.open_files),
            (resource.RLIMIT_FSIZE, self.file_size),
        ]
        return [(which, value) for which, value in pairs if value > 0]

    def __bool__(self) -> bool:
        return bool(self.as_pairs())


_OPTIONS = {
    "address_space": "--address-space",
    "cpu_seconds": "--cpu-seconds",
    "processes": "--processes",
    "open_files": "--open-files",
    "file_size": "--file-size",
}


def command(limits: ResourceLimits, cwd: str | None, kernel_argv: Sequence[str]) -> list[str]:
    """The argv that runs ``kernel_argv`` through this launcher with ``limits`` in ``cwd``."""
    argv = [sys.executable, "-I", os.path.abspath(__file__)]
    for field, option in _OPTIONS.items():
        value = getattr(limits, field)
        if value > 0:
            argv += [option, str(value)]
    if cwd is not None:
        argv += ["--cwd", cwd]
    return [*argv, "--", *kernel_argv]


def apply_limits(limits: ResourceLimits) -> None:
    """Lower this process's soft and hard limits to ``limits`` (never raises one)."""
    for which, value in limits.as_pairs():
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))


def _parse(argv: Sequence[str]) -> tuple[ResourceLimits, str | None, list[str]]:
    parser = argparse.ArgumentParser(prog="kernels.launch", description=__doc__)
    for field, option in _OPTIONS.items():
        parser.add_argument(option, dest=field, type=int, default=0)
    parser.add_argument("--cwd", default=None)
    parser.add_argument("kernel", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    kernel = list(args.kernel)
    if kernel[:1] == ["--"]:
        kernel = kernel[1:]
    if not kernel:
        parser.error("no kernel command after --")
    limits = ResourceLimits(
        address_space=args.address_space,
        cpu_seconds=args.cpu_seconds,
        processes=args.processes,
        open_files=args.open_files,
        file_size=args.file_size,
    )
    return limits, args.cwd, kernel


def main(argv: Sequence[str] | None = None) -> int:
    """Apply the limits, enter the folder and exec the kernel; returns only on failure."""
    limits, cwd, kernel = _parse(sys.argv[1:] if argv is None else argv)
    if os.geteuid() == 0 or os.getuid() == 0:
        print("kernels.launch: refusing to run a kernel as root", file=sys.stderr)
        return 126
    try:
        apply_limits(limits)
        if cwd is not None:
            os.chdir(cwd)
        os.execvp(kernel[0], kernel)
    except OSError as error:
        print(f"kernels.launch: {error}", file=sys.stderr)
        return 127
    return 127  # not reached: execvp returns only by raising


if __name__ == "__main__":
    sys.exit(main())
