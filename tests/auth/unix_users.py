"""Throwaway unix users and groups, and a PAM call counter, for tests against real PAM.

Tests using :func:`throwaway_unix_users` need root (CI runs as root) and are skipped
otherwise. Every name starts with ``cstest_`` and a random part, so runs
never collide, and everything created is deleted when the test ends.
"""

from __future__ import annotations

import collections
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from auth.pam import PamAnswer, PAMAuthenticator


def _run(*args: str, stdin: str | None = None) -> None:
    subprocess.run(args, input=stdin, text=True, check=True, capture_output=True)


class UnixUsers:
    """Creates users and groups on this machine; :meth:`cleanup` deletes them all."""

    def __init__(self) -> None:
        self.prefix = f"cstest_{secrets.token_hex(3)}"
        self.users: list[str] = []
        self.groups: list[str] = []
        self._count = 0

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{self.prefix}_{kind}{self._count}"

    def add_user(
        self,
        password: str | None = None,
        primary_group: str | None = None,
        groups: tuple[str, ...] = (),
    ) -> tuple[str, str]:
        """A new user with ``password`` (a random one if None; "" for no password at all).

        Returns (name, password).
        """
        name = self._name("u")
        args = ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        if primary_group:
            args += ["--gid", primary_group]
        else:
            args += ["--user-group"]
        if groups:
            args += ["--groups", ",".join(groups)]
        _run(*args, name)
        self.users.append(name)
        if password is None:
            password = f"pw-{secrets.token_urlsafe(12)}"
        if password:
            _run("chpasswd", stdin=f"{name}:{password}\n")
        else:
            _run("passwd", "--delete", name)
        return name, password

    def add_group(self) -> str:
        name = self._name("g")
        _run("groupadd", name)
        self.groups.append(name)
        return name

    def add_to_group(self, user: str, group: str) -> None:
        _run("gpasswd", "--add", user, group)

    def cleanup(self) -> None:
        """Delete every user (``userdel -r``) then every group; report what failed."""
        failures: list[str] = []
        for name in reversed(self.users):
            done = subprocess.run(
                ["userdel", "--remove", "--force", name],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode not in (0, 12):  # 12: no home directory to remove
                failures.append(f"userdel {name}: {done.stderr.strip()}")
        for name in reversed(self.groups):
            done = subprocess.run(["groupdel", name], capture_output=True, text=True, check=False)
            # 6: already gone (a user's own group is deleted with the user)
            if done.returncode not in (0, 6):
                failures.append(f"groupdel {name}: {done.stderr.strip()}")
        self.users.clear()
        self.groups.clear()
        assert not failures, failures


def require_root_and_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("creating unix users for PAM tests needs root")
    for tool in ("useradd", "userdel", "chpasswd", "groupadd", "groupdel", "gpasswd", "passwd"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def throwaway_unix_users() -> Iterator[UnixUsers]:
    """The body of a ``unix_users`` fixture: skip unless root, clean up afterwards.

    Each test module declares the fixture itself::

        @pytest.fixture
        def unix_users() -> Iterator[UnixUsers]:
            yield from throwaway_unix_users()
    """
    require_root_and_tools()
    users = UnixUsers()
    try:
        yield users
    finally:
        users.cleanup()


class CountingPAM(PAMAuthenticator):
    """The real authenticator, counting the real PAM calls it makes, per username.

    ``calls`` counts calls started and ``finished`` calls that returned; both
    are updated from the pool threads. ``hold(prefix)`` keeps every call whose
    password starts with ``prefix`` inside "PAM" until ``release()``, so a test
    can show others are not waiting for it without racing PAM's fail delay.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()
        self.finished: collections.Counter[str] = collections.Counter()
        self._held_prefix: str | None = None
        self._released = threading.Event()

    def hold(self, password_prefix: str) -> None:
        self._held_prefix = password_prefix
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def check_password(self, username: str, password: str) -> PamAnswer:
        with self.lock:
            self.calls[username] += 1
        try:
            if self._held_prefix is not None and password.startswith(self._held_prefix):
                self._released.wait(timeout=60)
            return super().check_password(username, password)
        finally:
            with self.lock:
                self.finished[username] += 1

    @property
    def total_calls(self) -> int:
        with self.lock:
            return sum(self.calls.values())
