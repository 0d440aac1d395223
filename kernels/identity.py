"""Who a kernel runs as, and the private files that go with that identity.

The rule (:func:`resolve_identity`):

* the server runs as root and the owner has a unix account (``owner.unix``
  and the account exists): the kernel runs as that user, with their primary
  group and supplementary groups;
* the server runs as root otherwise: the kernel runs as the configured
  service account (``KernelPool.kernel_user``, "nobody" by default);
* the server is not root: it cannot switch, so the kernel runs as the
  server's own user;
* never as root: an identity with uid 0 is refused with
  :class:`~kernels.errors.KernelIdentityError`.

The switch is made by ``subprocess.Popen(user=, group=, extra_groups=)``
(:func:`popen_kwargs`), never by a ``preexec_fn``; for a kernel without
network, by :mod:`kernels.sandbox` once it made the kernel's network
namespace (``setgroups``, ``setresgid``, ``setresuid``). Each identity has its own
0700 folder in the pool's runtime folder, owned by it, holding its kernels'
connection files (0600, owned by it) and ipc sockets, so no other user can
connect to its kernels.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import KernelIdentityError

log = logging.getLogger(__name__)

#: Environment variables passed from the server to a kernel that runs as another user.
PASSED_ENV = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ")


@dataclass(frozen=True)
class KernelOwner:
    """Whose kernel it is: the notebook owner's name, whether it is a unix (PAM) account,
    and the server's groups they are in (``auth.users.Users.groups_of``)."""

    name: str
    unix: bool
    groups: frozenset[str] = frozenset()


#: The login provider whose accounts are unix accounts (``auth.pam``).
UNIX_PROVIDER = "pam"


def kernel_account(user: str, provider: str, groups: Iterable[str] = ()) -> KernelOwner:
    """Whose kernel a user's notebooks get: a unix account iff the user logs in with PAM.

    ``user`` is the account name, ``provider`` how the account was made
    (``auth.identity.User.provider``: "pam", "oauth", "local", ...). Only a
    PAM account is a unix account a kernel may run as (:func:`resolve_identity`);
    every other login's kernels run as the pool's service account. ``groups``
    are the user's server groups (they may give the kernel the network).
    """
    return KernelOwner(user, unix=provider == UNIX_PROVIDER, groups=frozenset(groups))


@dataclass(frozen=True)
class KernelIdentity:
    """The unix account a kernel process runs as.

    ``switch`` is True when the server (root) must change to this account to
    start the kernel; False when the kernel simply runs as the server's user.
    """

    user: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    shell: str
    switch: bool


def server_is_root() -> bool:
    """Whether this process can start kernels as other users."""
    return os.geteuid() == 0


def _from_passwd(entry: pwd.struct_passwd, switch: bool) -> KernelIdentity:
    if entry.pw_uid == 0:
        raise KernelIdentityError(
            f"refusing to run a kernel as root (account {entry.pw_name!r} has uid 0)"
        )
    groups = tuple(sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid))))
    return KernelIdentity(
        user=entry.pw_name,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        groups=groups,
        home=entry.pw_dir,
        shell=entry.pw_shell,
        switch=switch,
    )


def resolve_identity(owner: KernelOwner, service_account: str) -> KernelIdentity:
    """The account ``owner``'s kernels run as (see the module docstring for the rule).

    Raises:
        KernelIdentityError: the service account does not exist, or the
            resolved account is root.
    """
    if not server_is_root():
        uid = os.getuid()
        if uid == 0:
            raise KernelIdentityError("refusing to run a kernel as root (real uid 0)")
        try:
            return _from_passwd(pwd.getpwuid(uid), switch=False)
        except KeyError:
            # A uid with no passwd entry (containers): run as it, as it is.
            gid = os.getgid()
            return KernelIdentity(
                user=str(uid),
                uid=uid,
                gid=gid,
                groups=tuple(sorted(set(os.getgroups()) | {gid})),
                home=os.environ.get("HOME", "/"),
                shell="/bin/sh",
                switch=False,
            )
    if owner.unix:
        try:
            entry = pwd.getpwnam(owner.name)
        except KeyError:
            log.warning(
                "owner %r is marked as a unix account but has none; "
                "their kernels run as the service account %r",
                owner.name,
                service_account,
            )
        else:
            return _from_passwd(entry, switch=True)
    try:
        entry = pwd.getpwnam(service_account)
    except KeyError:
        raise KernelIdentityError(
            f"the kernel service account {service_account!r} does not exist"
        ) from None
    return _from_passwd(entry, switch=True)


def popen_kwargs(identity: KernelIdentity) -> dict[str, Any]:
    """The ``subprocess.Popen`` arguments that make the kernel run as ``identity``."""
    if not identity.switch:
        return {}
    return {
        "user": identity.uid,
        "group": identity.gid,
        "extra_groups": list(identity.groups),
        "umask": 0o077,
    }


def _login_shell(shell: str) -> str:
    try:
        allowed = {
            line.strip()
            for line in Path("/etc/shells").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        }
    except OSError:
        allowed = set()
    return shell if shell in allowed else "/bin/sh"


def kernel_env(identity: KernelIdentity, fallback_home: Path) -> dict[str, str]:
    """The environment a kernel of ``identity`` starts with (before its kernelspec's ``env``).

    A kernel of the server's own user inherits the server's environment. A
    kernel of another user gets a clean one: HOME (``fallback_home`` when the
    account's home folder does not exist), USER, LOGNAME, SHELL, a PATH
    starting with the folder of the server's interpreter, and the locale; no
    other variable of the server (they may hold its secrets).
    """
    if not identity.switch:
        return dict(os.environ)
    home = identity.home if os.path.isdir(identity.home) else str(fallback_home)
    path = os.pathsep.join(
        dict.fromkeys([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"])
    )
    env = {
        "HOME": home,
        "USER": identity.user,
        "LOGNAME": identity.user,
        "SHELL": _login_shell(identity.shell),
        "PATH": path,
        # Temporary files go to the account's own 0700 folder, not a shared /tmp.
        "TMPDIR": str(fallback_home),
    }
    env.update({name: os.environ[name] for name in PASSED_ENV if name in os.environ})
    return env


def make_runtime_root(path: Path) -> Path:
    """Create (or tighten) the pool's runtime folder.

    As root it is 0711: every kernel user can reach their own folder inside
    by its name, nobody can list it. Otherwise 0700.
    """
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o711 if server_is_root() else 0o700)
    return path


def user_runtime_dir(root: Path, identity: KernelIdentity) -> Path:
    """The 0700 folder, owned by ``identity``, for its connection files and ipc sockets."""
    folder = root / str(identity.uid)
    folder.mkdir(mode=0o700, exist_ok=True)
    if identity.switch:
        os.chown(folder, identity.uid, identity.gid)
    os.chmod(folder, 0o700)
    return folder


def secure_connection_file(path: Path, identity: KernelIdentity) -> None:
    """Make a connection file readable by ``identity`` only (owner = its uid, mode 0600)."""
    if identity.switch:
        os.chown(path, identity.uid, identity.gid)
    os.chmod(path, 0o600)


def prepare_home(folder: Path, owner: KernelOwner, service_account: str | None = None) -> None:
    """Create ``owner``'s notebook folder so that only their kernels can read it.

    As root: a unix owner's folder is chowned to them (their primary group)
    with mode 0700, so another user's kernel cannot read it. A non-unix
    owner's folder is given to ``service_account`` when one is named (their
    kernels run as it and must enter the folder; every non-unix owner shares
    that account, so only unix accounts separate users from each other).
    When not root, the folder is made 0700 for the server's own user. Only
    the folder itself is changed, not files already inside it.

    Raises:
        KernelIdentityError: the owner would be root, or the service account is missing.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if server_is_root():
        entry: pwd.struct_passwd | None = None
        if owner.unix:
            try:
                entry = pwd.getpwnam(owner.name)
            except KeyError:
                entry = None
        if entry is None and service_account is not None:
            try:
                entry = pwd.getpwnam(service_account)
            except KeyError:
                raise KernelIdentityError(
                    f"the kernel service account {service_account!r} does not exist"
                ) from None
        if entry is not None:
            if entry.pw_uid == 0:
                raise KernelIdentityError(
                    f"refusing to give {folder} to root account {entry.pw_name!r}"
                )
            os.chown(folder, entry.pw_uid, entry.pw_gid)
    os.chmod(folder, 0o700)


def unix_group_names(identity: KernelIdentity) -> set[str]:
    """The names of the unix groups ``identity`` is in (gids without a name are left out)."""
    names = set()
    for gid in identity.groups:
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return names


def describe(identity: KernelIdentity) -> str:
    """``user (uid N, gid M)`` for log lines."""
    try:
        group = grp.getgrgid(identity.gid).gr_name
    except KeyError:
        group = str(identity.gid)
    return f"{identity.user} (uid {identity.uid}, group {group})"


__all__ = [
    "KernelIdentity",
    "KernelOwner",
    "UNIX_PROVIDER",
    "describe",
    "kernel_account",
    "kernel_env",
    "make_runtime_root",
    "popen_kwargs",
    "prepare_home",
    "resolve_identity",
    "secure_connection_file",
    "server_is_root",
    "unix_group_names",
    "user_runtime_dir",
]
