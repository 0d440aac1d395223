"""PAMAuthenticator against this machine's real PAM stack, with throwaway unix users.

Nothing is faked: passwords are checked by libpam's ``login`` service
(``pam_unix``, ``pam_faildelay``: a wrong password costs ~3 s). Tests count
real PAM calls by wrapping ``check_password``, the one method that calls PAM.
Failing attempts run concurrently so the whole file stays short.
"""

from __future__ import annotations

import asyncio
import grp
import json
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pam
import pytest
from traitlets import TraitError
from traitlets.config import Config

from auth.authenticator import (
    AuthenticatedUser,
    LoginRefused,
    LoginThrottled,
    LoginUnavailable,
    PasswordAttempt,
)
from auth.pam import PAM_DIR, PAMAuthenticator
from tests.auth.unix_users import CountingPAM, UnixUsers, throwaway_unix_users

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def unix_users() -> Iterator[UnixUsers]:
    yield from throwaway_unix_users()


Factory = Callable[..., CountingPAM]


@pytest.fixture
async def make_pam() -> AsyncIterator[Factory]:
    """PAM authenticators (counting their PAM calls), all stopped at the end of the test."""
    made: list[CountingPAM] = []

    def make(**traits: Any) -> CountingPAM:
        authenticator = CountingPAM(**traits)
        made.append(authenticator)
        return authenticator

    yield make
    for authenticator in made:
        authenticator.release()
        await authenticator.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("pam")]


async def login(
    authenticator: PAMAuthenticator, username: str, password: str, address: str = "10.0.0.1"
) -> AuthenticatedUser:
    return await authenticator.get_authenticated_user(PasswordAttempt(username, password, address))


async def refusal(
    authenticator: PAMAuthenticator, username: str, password: str, address: str = "10.0.0.1"
) -> LoginRefused:
    with pytest.raises(LoginRefused) as refused:
        await login(authenticator, username, password, address)
    return refused.value


async def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Wait for a condition set by the PAM threads."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_right_password_logs_in(unix_users: UnixUsers, make_pam: Factory) -> None:
    name, password = unix_users.add_user()
    authenticator = make_pam()
    await authenticator.start()

    user = await login(authenticator, name, password)

    assert (user.name, user.provider, user.admin) == (name, "pam", False)
    assert authenticator.calls == {name: 1}
    assert authenticator.login_service == "your unix account"
    assert authenticator.kind == "password"


async def test_wrong_password_and_unknown_user_are_refused_alike(
    unix_users: UnixUsers, make_pam: Factory
) -> None:
    """Both take a real PAM round (with its fail delay) and give the same 403 message.

    While those two are inside PAM, a third attempt exceeds
    ``max_pending_attempts`` and is refused at once with 503.
    """
    name, password = unix_users.add_user()
    authenticator = make_pam(max_pending_attempts=2)
    authenticator.hold(password + "x")
    wrong = asyncio.create_task(refusal(authenticator, name, password + "x", "10.0.0.1"))
    unknown = asyncio.create_task(
        refusal(authenticator, f"{unix_users.prefix}_nobody", password, "10.0.0.2")
    )
    await wait_for(lambda: authenticator.total_calls == 2)

    busy = await refusal(authenticator, name, password, "10.0.0.3")
    assert isinstance(busy, LoginUnavailable) and busy.status == 503
    assert authenticator.finished.total() == 0  # refused while the two were still in PAM
    authenticator.release()

    refused = [await wrong, await unknown]
    assert [type(r) for r in refused] == [LoginRefused, LoginRefused]
    assert {str(r) for r in refused} == {"Invalid username or password."}
    assert {r.status for r in refused} == {403}
    assert authenticator.total_calls == 2


async def test_impossible_input_never_reaches_pam(unix_users: UnixUsers, make_pam: Factory) -> None:
    name, password = unix_users.add_user()
    no_password, _ = unix_users.add_user(password="")
    authenticator = make_pam()
    # Proof that the empty-password rule matters: pam_unix (nullok) lets this account in.
    assert PAMAuthenticator().check_password(no_password, "").ok
    cases = {
        "NUL in username": (name + "\x00root", password),
        "NUL in password": (name, password + "\x00anything"),  # C would stop at the NUL
        "10 MB username": ("a" * 10_000_000, password),
        "control character": (name + "\n", password),
        "empty username": ("", password),
        "empty password": (no_password, ""),
        "9 KiB password": (name, "p" * 9 * 1024),
        "lone surrogate": (name, password + "\udc80"),
    }
    for case, (username, secret) in cases.items():
        refused = await refusal(authenticator, username, secret)
        assert type(refused) is LoginRefused and refused.status == 403, case
    assert authenticator.total_calls == 0
    # And the right password still works after all that.
    assert (await login(authenticator, name, password)).name == name


async def test_blocked_and_allowed_users(unix_users: UnixUsers, make_pam: Factory) -> None:
    blocked, blocked_pw = unix_users.add_user()
    allowed, allowed_pw = unix_users.add_user()
    other, other_pw = unix_users.add_user()
    authenticator = make_pam(blocked_users={blocked}, allowed_users={allowed, blocked})

    assert "may not log in" in str(await refusal(authenticator, blocked, blocked_pw))
    assert (await login(authenticator, allowed, allowed_pw)).name == allowed
    assert "may not log in here" in str(await refusal(authenticator, other, other_pw))


async def test_allowed_and_admin_groups(unix_users: UnixUsers, make_pam: Factory) -> None:
    students, admins = unix_users.add_group(), unix_users.add_group()
    member, member_pw = unix_users.add_user(groups=(students,))
    primary, primary_pw = unix_users.add_user(primary_group=students)
    added_later, added_later_pw = unix_users.add_user()
    unix_users.add_to_group(added_later, students)
    admin, admin_pw = unix_users.add_user()
    unix_users.add_to_group(admin, admins)
    outsider, outsider_pw = unix_users.add_user()
    authenticator = make_pam(allowed_groups={students}, admin_groups={admins})

    results = {
        name: await login(authenticator, name, pw)
        for name, pw in [
            (member, member_pw),
            (primary, primary_pw),
            (added_later, added_later_pw),
            (admin, admin_pw),
        ]
    }
    assert {name: user.admin for name, user in results.items()} == {
        member: False,
        primary: False,
        added_later: False,
        admin: True,  # admins are allowed without being in allowed_groups
    }
    refused = await refusal(authenticator, outsider, outsider_pw)
    assert refused.status == 403 and "may not log in here" in str(refused)


@pytest.mark.parametrize("service", ["su", "su-l", "runuser", "runuser-l", "SU", "../su", ""])
def test_rootok_services_are_refused_by_configuration(service: str) -> None:
    with pytest.raises(TraitError):
        PAMAuthenticator(service=service)
    with pytest.raises(TraitError):
        PAMAuthenticator(config=Config({"PAMAuthenticator": {"service": service}}))


def test_su_really_accepts_any_password_from_root(unix_users: UnixUsers) -> None:
    """Why the rule exists: as root, 'su' says yes to a wrong password, 'login' does not."""
    name, _ = unix_users.add_user()
    assert pam.authenticate(name, "certainly wrong", service="su", resetcreds=False)


async def test_service_using_rootok_is_refused_at_start(unix_users: UnixUsers) -> None:
    custom = f"{unix_users.prefix}_svc"
    indirect = f"{unix_users.prefix}_svc2"
    files = {
        custom: "# a careless custom service\nauth sufficient pam_rootok.so\n@include common-auth\n",
        indirect: "auth include su\naccount include common-account\n",
    }
    try:
        for service, text in files.items():
            (PAM_DIR / service).write_text(text)
        for service in files:
            with pytest.raises(RuntimeError, match="pam_rootok"):
                await PAMAuthenticator(service=service).start()
        await PAMAuthenticator(service="login").start()  # the default is fine
    finally:
        for service in files:
            (PAM_DIR / service).unlink(missing_ok=True)


CHILD = """
import asyncio, json, logging, os, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(levelname)s %(message)s")
from auth.pam import PAMAuthenticator
uid, gid, groups, other, other_pw = json.loads(sys.argv[1])
import pam
pam.PamAuthenticator()  # load libpam while the interpreter's files are still readable
authenticator = PAMAuthenticator()
authenticator.log  # imported lazily by traitlets
os.setgroups(groups)
os.setgid(gid)
os.setuid(uid)
asyncio.run(authenticator.start())
print("CHECK", authenticator.check_password(other, other_pw).ok, flush=True)
"""


async def test_start_warns_when_other_passwords_cannot_be_checked(
    unix_users: UnixUsers,
) -> None:
    """Run as an unprivileged user: without the shadow group PAM really cannot check
    another user's password, and start() says so; with it, it can and start() is quiet."""
    runner, _ = unix_users.add_user()
    other, other_pw = unix_users.add_user()
    uid, gid = int(_id("-u", runner)), int(_id("-g", runner))
    shadow_gid = grp.getgrnam("shadow").gr_gid

    async def child(groups: list[int]) -> tuple[int | None, str]:
        args = json.dumps([uid, gid, groups, other, other_pw])
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            args,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        return process.returncode, output.decode()

    results = await asyncio.gather(child([]), child([shadow_gid]))
    assert [code for code, _ in results] == [0, 0], results
    without_shadow, with_shadow = (output for _, output in results)

    assert "WARNING" in without_shadow
    assert f"runs as '{runner}', not root" in without_shadow
    assert "cannot read /etc/shadow" in without_shadow and "'shadow' group" in without_shadow
    assert "CHECK False" in without_shadow  # the warning is true
    assert "WARNING" not in with_shadow
    assert "CHECK True" in with_shadow


def _id(flag: str, name: str) -> str:
    return subprocess.run(["id", flag, name], capture_output=True, text=True, check=True).stdout


async def test_200_concurrent_logins_are_correct_and_the_loop_stays_responsive(
    unix_users: UnixUsers, make_pam: Factory
) -> None:
    """200 logins at once (8 users, 4 of them with a wrong password), from 200 addresses.

    Every result is right, every attempt reached PAM (no false throttling),
    and the event loop never stalled 100 ms (the issue's bound for a concurrent
    request) while PAM worked in the pool.
    """
    accounts = [unix_users.add_user() for _ in range(8)]
    authenticator = make_pam()
    attempts: list[tuple[str, str, bool]] = []
    for i in range(200):
        name, password = accounts[i % len(accounts)]
        right = i % 50 != 7  # 4 wrong passwords, spread over users
        attempts.append((name, password if right else "wrong-" + password, right))

    done = asyncio.Event()
    worst_stall = 0.0

    async def probe() -> None:
        """How late a 5 ms timer fires: what a concurrent request would wait for the loop."""
        nonlocal worst_stall
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            worst_stall = max(worst_stall, time.perf_counter() - start - 0.005)

    async def one(i: int, name: str, password: str) -> AuthenticatedUser | LoginRefused:
        try:
            return await login(authenticator, name, password, f"10.1.{i // 250}.{i % 250}")
        except LoginRefused as refused:
            return refused

    probing = asyncio.create_task(probe())
    results = await asyncio.gather(*(one(i, n, p) for i, (n, p, _) in enumerate(attempts)))
    done.set()
    await probing

    for (name, _, right), result in zip(attempts, results, strict=True):
        if right:
            assert isinstance(result, AuthenticatedUser) and result.name == name, result
        else:
            assert type(result) is LoginRefused and result.status == 403, result
    assert authenticator.total_calls == 200
    assert worst_stall < 0.1, f"event loop stalled {worst_stall * 1000:.0f} ms"


async def test_password_flood_is_throttled_before_pam(
    unix_users: UnixUsers, make_pam: Factory
) -> None:
    """1,000 wrong passwords for one user from one address, all at once, then again.

    Only a handful reach PAM; the rest are refused at once with 429. While
    the attacker's first guess is still inside PAM, the victim (from their own
    address) and another user log in: they never wait for a failing check.
    Once the username is over its limit, a second flood reaches PAM not at
    all, and the victim still logs in.
    """
    victim, victim_pw = unix_users.add_user()
    bystander, bystander_pw = unix_users.add_user()
    # A long back-off so the second wave's lock does not depend on how fast it is sent.
    authenticator = make_pam(max_failures_per_username=2, username_backoff=60)
    attacker = "10.66.0.1"

    async def guess(i: int) -> LoginRefused | AuthenticatedUser:
        try:
            return await login(authenticator, victim, f"guess-{i}", attacker)
        except LoginRefused as refused:
            return refused

    authenticator.hold("guess-")
    flood = asyncio.gather(*(guess(i) for i in range(1000)))
    await wait_for(lambda: authenticator.calls[victim] >= 1)

    assert (await login(authenticator, victim, victim_pw, "10.0.0.5")).name == victim
    assert (await login(authenticator, bystander, bystander_pw, "10.0.0.6")).name == bystander
    assert authenticator.finished[victim] == 1  # the attacker's guess is still in PAM:
    # neither the victim nor the bystander waited for it
    authenticator.release()

    results = await flood
    attacker_calls = authenticator.calls[victim] - 1
    throttled = [r for r in results if isinstance(r, LoginThrottled)]
    wrong = [r for r in results if type(r) is LoginRefused]
    assert len(throttled) + len(wrong) == 1000
    assert len(wrong) == attacker_calls <= 2
    assert all(r.status == 429 and r.retry_after > 0 for r in throttled)

    second = await asyncio.gather(*(guess(i) for i in range(1000)))
    assert all(isinstance(r, LoginThrottled) for r in second)
    assert authenticator.calls[victim] - 1 == attacker_calls  # not one more PAM call

    assert (await login(authenticator, victim, victim_pw, "10.0.0.7")).name == victim


async def test_stop_waits_for_pam_and_refuses_the_waiting_caller(
    unix_users: UnixUsers, make_pam: Factory
) -> None:
    name, _ = unix_users.add_user()
    authenticator = make_pam()
    attempt = asyncio.create_task(refusal(authenticator, name, "wrong"))
    await wait_for(lambda: authenticator.total_calls == 1)

    await authenticator.stop()

    assert authenticator.finished[name] == 1  # stop() waited for the thread inside PAM
    assert not [t for t in threading.enumerate() if t.name.startswith("pam")]
    refused = await attempt
    assert isinstance(refused, LoginUnavailable) and refused.status == 503
