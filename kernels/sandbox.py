"""Puts a kernel in a network namespace of its own, with loopback only, then becomes it.

The pool starts a kernel without network as
``python -I sandbox.py --uid U --gid G --groups A,B -- <argv>`` (see :func:`command`):

* run by root (the server is root): ``unshare(CLONE_NEWNET)``, bring ``lo``
  up, then drop to the kernel's account for good (``setgroups``,
  ``setresgid``, ``setresuid``);
* run by anyone else (the server is not root): ``unshare(CLONE_NEWUSER |
  CLONE_NEWNET)``, map the user's own uid and gid into the new user
  namespace, bring ``lo`` up. It fails, and the kernel does not start, when
  the system forbids unprivileged user namespaces.

Then it sets ``no_new_privs`` (setuid programs such as sudo gain nothing),
umask 077, and executes ``argv`` keeping its pid. Inside, the kernel is an
ordinary user without capabilities: it cannot add interfaces nor join
another network namespace, so it reaches nothing but its own loopback
(and unix sockets on the file system, as its permissions allow).

Like :mod:`kernels.launch` it uses only the standard library and is run
by its file path with ``-I``, without importing the rest of the server.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import socket
import struct
import sys
from collections.abc import Sequence

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
PR_SET_NO_NEW_PRIVS = 38
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


NO_USER_NAMESPACES = (
    " (a server that is not root needs unprivileged user namespaces, which this system "
    "refuses; KernelPool.sandbox_kernels = False runs kernels with the host's network)"
)


class SandboxError(Exception):
    """The namespace could not be made; the kernel must not start."""


def command(uid: int, gid: int, groups: Sequence[int], argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` without network, as ``uid``/``gid``/``groups``.

    When the server is not root, ``uid`` must be its own (the user namespace
    maps only its own uid and gid); ``gid`` and ``groups`` are then ignored.
    """
    return [
        sys.executable,
        "-I",
        os.path.abspath(__file__),
        "--uid",
        str(uid),
        "--gid",
        str(gid),
        "--groups",
        ",".join(str(g) for g in groups),
        "--",
        *argv,
    ]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int, hint: str = "") -> None:
    if _libc().unshare(flags) != 0:
        errno = ctypes.get_errno()
        raise SandboxError(f"unshare failed: {os.strerror(errno)}{hint}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


def _map_own_ids(uid: int, gid: int) -> None:
    """In a new user namespace: be ``uid``/``gid`` there too (setgroups denied, as required)."""
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


def loopback_up() -> None:
    """Bring the ``lo`` interface of this network namespace up (it starts down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def enter(uid: int, gid: int, groups: Sequence[int]) -> None:
    """Make this process a kernel process without network, as ``uid`` (see the module docstring).

    Raises:
        SandboxError: the target is root, or the namespace cannot be made.
    """
    if uid == 0:
        raise SandboxError("refusing to run a kernel as root")
    if os.geteuid() == 0:
        _unshare(CLONE_NEWNET)
        loopback_up()
        os.setgroups(list(groups))
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
            raise SandboxError("could not drop privileges")
    else:
        if os.getuid() != uid:
            raise SandboxError(f"only root can switch to uid {uid}")
        own_gid = os.getgid()  # the group it runs with, whatever passwd says; read before
        _unshare(CLONE_NEWUSER | CLONE_NEWNET, NO_USER_NAMESPACES)  # ids are unmapped here
        _map_own_ids(uid, own_gid)
        loopback_up()
    if _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SandboxError(f"prctl(no_new_privs) failed: {os.strerror(ctypes.get_errno())}")
    os.umask(0o077)


def _parse(argv: Sequence[str]) -> tuple[int, int, list[int], list[str]]:
    parser = argparse.ArgumentParser(prog="kernels.sandbox", description=__doc__)
    parser.add_argument("--uid", type=int, required=True)
    parser.add_argument("--gid", type=int, required=True)
    parser.add_argument("--groups", default="")
    parser.add_argument("kernel", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    kernel = list(args.kernel)
    if kernel[:1] == ["--"]:
        kernel = kernel[1:]
    if not kernel:
        parser.error("no kernel command after --")
    groups = [int(g) for g in args.groups.split(",") if g]
    return args.uid, args.gid, groups, kernel


def main(argv: Sequence[str] | None = None) -> int:
    """Enter the sandbox and exec the kernel; returns only on failure."""
    uid, gid, groups, kernel = _parse(sys.argv[1:] if argv is None else argv)
    try:
        enter(uid, gid, groups)
    except (SandboxError, OSError) as error:
        print(f"kernels.sandbox: cannot start the kernel without network: {error}", file=sys.stderr)
        return 126
    try:
        os.execvp(kernel[0], kernel)
    except OSError as error:
        print(f"kernels.sandbox: {error}", file=sys.stderr)
        return 127
    return 127  # not reached: execvp returns only by raising


if __name__ == "__main__":
    sys.exit(main())
