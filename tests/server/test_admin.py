"""Admins manage users and groups by REST and by the CLI; nobody else can."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.auth.unix_users import UnixUsers, throwaway_unix_users
from tests.conftest import Server


async def test_only_admins_manage_users_and_groups(server: Server) -> None:
    server.services.users.get_or_create("root-admin", admin=True)
    for method, path, body in [
        ("GET", "/api/users", None),
        ("POST", "/api/users", {"name": "x"}),
        ("PUT", "/api/groups/g", None),
        ("PATCH", "/api/users/alice", {"admin": True}),
    ]:
        response = await server.api(method, path, body, user="alice")
        assert response.code == 403, (method, path)
        assert b"only admins" in response.body
    assert (await server.api("GET", "/api/users", user="root-admin")).code == 200
    assert not server.services.users.get("alice").admin


async def test_admin_creates_users_groups_and_memberships(server: Server) -> None:
    server.services.users.get_or_create("boss", admin=True)

    async def call(method: str, path: str, body: object = None) -> object:
        response = await server.api(method, path, body, user="boss")
        assert response.code in (200, 201, 204), (method, path, response.body)
        return json.loads(response.body) if response.body else None

    await call("POST", "/api/users", {"name": "tina"})
    await call("POST", "/api/users", {"name": "sam"})
    await call("PUT", "/api/groups/tutors")
    await call("PUT", "/api/groups/tutors/members/tina")
    await call("PUT", "/api/groups/class-a")
    await call("PUT", "/api/groups/class-a/members/sam")
    assert await call("GET", "/api/groups") == {
        "groups": {"class-a": ["sam"], "tutors": ["tina"]}
    }
    await call("PATCH", "/api/users/tina", {"admin": True})
    users = {u["name"]: u for u in (await call("GET", "/api/users"))["users"]}  # type: ignore[index]
    assert users["tina"]["admin"] and users["tina"]["groups"] == ["tutors"]
    await call("DELETE", "/api/groups/class-a/members/sam")
    await call("DELETE", "/api/groups/class-a")
    await call("DELETE", "/api/users/sam")
    assert await call("GET", "/api/groups") == {"groups": {"tutors": ["tina"]}}
    # Bad input: a clear error, nothing changed.
    for method, path, body, code in [
        ("POST", "/api/users", {"name": "../etc"}, 400),
        ("POST", "/api/users", {"name": "Bad Name"}, 400),
        ("POST", "/api/users", {"name": 3}, 400),
        ("PUT", "/api/groups/no%20spaces", None, 400),
        ("PUT", "/api/groups/tutors/members/nobody", None, 404),
        ("DELETE", "/api/groups/missing", None, 404),
        ("PATCH", "/api/users/tina", {"admin": "yes"}, 400),
        ("DELETE", "/api/users/boss", None, 400),
    ]:
        response = await server.api(method, path, body, user="boss")
        assert response.code == code, (method, path, response.body)
        assert json.loads(response.body)["message"]
    assert await call("GET", "/api/groups") == {"groups": {"tutors": ["tina"]}}


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collab_server", *args, f"--data-dir={data_dir}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_manages_users_and_groups(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "user", "add", "tina", "--admin", "--create").returncode == 0
    assert cli(data, "user", "add", "sam").returncode == 0
    assert cli(data, "group", "create", "tutors").returncode == 0
    assert cli(data, "group", "add", "tutors", "tina").returncode == 0
    listed = cli(data, "user", "list")
    assert listed.returncode == 0
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert rows["tina"][1] == "yes" and rows["tina"][-1] == "tutors"
    assert rows["sam"][1] == "no"
    assert "tutors: tina" in cli(data, "group", "list").stdout
    # Neither a user here nor a unix account ("nobody" is one: it would be added).
    missing = cli(data, "group", "add", "tutors", "nosuchperson")
    said = missing.stderr + missing.stdout
    assert missing.returncode != 0 and "no user named 'nosuchperson'" in said
    assert "collab-server user add nosuchperson" in said
    bad = cli(data, "user", "add", "Not Valid")
    assert bad.returncode != 0 and "invalid name" in bad.stderr + bad.stdout
    assert cli(data, "user", "unadmin", "tina").returncode == 0
    assert cli(data, "user", "remove", "sam").returncode == 0
    listed = cli(data, "user", "list").stdout
    assert "sam" not in listed and "tina" in listed


@pytest.fixture
def unix_users() -> Iterator[UnixUsers]:
    yield from throwaway_unix_users()


def test_cli_adds_a_unix_user_to_a_group_before_their_first_login(
    tmp_path: Path, unix_users: UnixUsers
) -> None:
    """The README's walkthrough: `group add tutors tina` works before tina has logged in."""
    data = tmp_path / "data"
    tina, _ = unix_users.add_user()
    assert cli(data, "group", "create", "tutors", "--create").returncode == 0
    added = cli(data, "group", "add", "tutors", tina)
    assert added.returncode == 0, added.stderr
    assert f"new user: {tina}" in added.stdout
    assert f"tutors: {tina}" in cli(data, "group", "list").stdout
    # Nobody else is created along the way, and a missing group is said first.
    missing_group = cli(data, "group", "add", "nosuchgroup", "stranger")
    assert missing_group.returncode != 0
    assert "no group named 'nosuchgroup'" in missing_group.stderr + missing_group.stdout
    assert "stranger" not in cli(data, "user", "list").stdout
