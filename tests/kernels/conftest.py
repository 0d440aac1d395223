"""Fixtures for the kernel tests: folders kernels may enter, throwaway unix accounts, helpers.

Every kernel here is a real ipykernel. Helpers wait on kernel messages with
timeouts; nothing sleeps to let things settle.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kernels.identity import KernelOwner, prepare_home, server_is_root
from kernels.pool import KernelPool

#: Generous: the machine has 2 cores and is shared with other test runs.
TIMEOUT = 60.0


@dataclass
class Result:
    """What one execution produced: the reply's content and its iopub messages."""

    reply: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stdout(self) -> str:
        return "".join(
            m["content"]["text"]
            for m in self.messages
            if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
        )

    @property
    def value(self) -> str | None:
        """The text/plain of the execute_result, if there was one."""
        for m in self.messages:
            if m["msg_type"] == "execute_result":
                text: str = m["content"]["data"]["text/plain"]
                return text
        return None


async def execute(client: Any, code: str, timeout: float = TIMEOUT) -> Result:
    """Run ``code`` on a kernel client; wait for its reply and its iopub status idle."""
    async with asyncio.timeout(timeout):
        msg_id = client.execute(code)
        result = Result(reply={})
        while True:
            msg = await client.get_iopub_msg()
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status":
                if msg["content"]["execution_state"] == "idle":
                    break
                continue
            result.messages.append(msg)
        while not result.reply:
            msg = await client.get_shell_msg()
            if msg["parent_header"].get("msg_id") == msg_id:
                result.reply = msg["content"]
    return result


async def wait_for_output(client: Any, msg_id: str, text: str, timeout: float = TIMEOUT) -> None:
    """Wait until the execution ``msg_id`` printed ``text`` to stdout."""
    seen = ""
    async with asyncio.timeout(timeout):
        while text not in seen:
            msg = await client.get_iopub_msg()
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                seen += msg["content"]["text"]


def kernel_children() -> set[int]:
    """Pids of this process's children that run an ipykernel (directly or by the launcher)."""
    found: set[int] = set()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")
        )
        if ppid == me and b"ipykernel" in cmdline:
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def notebook_root() -> Iterator[Path]:
    """A folder that kernel users can traverse (0711), holding per-owner notebook folders."""
    root = Path(tempfile.mkdtemp(prefix="cs-notebooks-", dir="/tmp"))
    os.chmod(root, 0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def folder_for(notebook_root: Path) -> Callable[[KernelOwner, str], Path]:
    """Make ``owner``'s notebook folder as the web layer would (prepare_home, service account)."""

    def make(owner: KernelOwner, service_account: str = "nobody") -> Path:
        folder = notebook_root / owner.name
        prepare_home(folder, owner, service_account)
        return folder

    return make


@pytest.fixture
def pool_factory() -> Callable[..., KernelPool]:
    """KernelPool(**traits), with short check intervals for tests; use it with ``async with``."""

    def make(**traits: Any) -> KernelPool:
        traits.setdefault("check_interval", 0.2)
        traits.setdefault("startup_timeout", TIMEOUT)
        return KernelPool(**traits)

    return make


class UnixAccounts:
    """Throwaway unix accounts with homes (``useradd -m``); :meth:`cleanup` deletes them."""

    def __init__(self) -> None:
        self.prefix = f"csk{secrets.token_hex(3)}"
        self.users: list[str] = []
        self.groups: list[str] = []

    def add_group(self) -> str:
        name = f"{self.prefix}g{len(self.groups)}"
        subprocess.run(["groupadd", name], check=True, capture_output=True)
        self.groups.append(name)
        return name

    def add(self, groups: tuple[str, ...] = ()) -> pwd.struct_passwd:
        name = f"{self.prefix}u{len(self.users)}"
        args = ["useradd", "-m", "--user-group", "--shell", "/bin/bash"]
        if groups:
            args += ["--groups", ",".join(groups)]
        subprocess.run([*args, name], check=True, capture_output=True)
        self.users.append(name)
        entry = pwd.getpwnam(name)
        os.chmod(entry.pw_dir, 0o700)
        return entry

    def cleanup(self) -> None:
        failures = []
        for name in reversed(self.users):
            done = subprocess.run(
                ["userdel", "-r", name], check=False, capture_output=True, text=True
            )
            if done.returncode not in (0, 12):
                failures.append(f"userdel {name}: {done.stderr.strip()}")
        for name in reversed(self.groups):
            done = subprocess.run(["groupdel", name], check=False, capture_output=True, text=True)
            if done.returncode not in (0, 6):
                failures.append(f"groupdel {name}: {done.stderr.strip()}")
        assert not failures, failures


@pytest.fixture
def unix_accounts() -> Iterator[UnixAccounts]:
    """A factory of throwaway unix accounts, all deleted (with their homes) after the test."""
    if not server_is_root():
        pytest.skip("kernel identity tests need root (CI runs as root)")
    for tool in ("useradd", "userdel", "groupadd", "groupdel"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    accounts = UnixAccounts()
    try:
        yield accounts
    finally:
        accounts.cleanup()
