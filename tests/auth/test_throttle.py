"""The login throttle's rules, on a clock the test moves (no PAM, no sleeping)."""

from __future__ import annotations

import asyncio

import pytest

from auth.authenticator import LoginThrottled
from auth.throttle import (
    ConcurrencyLimit,
    LoginThrottle,
    ThrottleLimits,
    address_key,
    retry_after_header,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(**limits: float) -> tuple[LoginThrottle, Clock]:
    clock = Clock()
    return LoginThrottle(ThrottleLimits(**limits), clock), clock  # type: ignore[arg-type]


def fail(throttle: LoginThrottle, username: str, address: str) -> None:
    throttle.record_failure(throttle.admit(username, address))


def test_address_over_its_limit_is_refused_until_its_window_passes() -> None:
    throttle, clock = make(max_failures_per_address=3, window=100)
    for i in range(3):
        fail(throttle, f"user{i}", "10.0.0.1")  # spraying different names
        clock.now += 10
    with pytest.raises(LoginThrottled) as refused:
        throttle.admit("user9", "10.0.0.1")
    assert refused.value.status == 429
    assert refused.value.retry_after == pytest.approx(70)  # the first failure expires then
    throttle.admit("user9", "10.0.0.2")  # other addresses are not affected
    clock.now += 70
    throttle.admit("user9", "10.0.0.1")


def test_attempts_in_progress_count_so_a_burst_is_refused_at_once() -> None:
    throttle, _ = make(max_failures_per_address=3, max_failures_per_username=100)
    admitted = [throttle.admit("victim", "10.0.0.1") for _ in range(3)]
    with pytest.raises(LoginThrottled) as refused:
        throttle.admit("victim", "10.0.0.1")
    assert refused.value.retry_after == ThrottleLimits().busy_retry_after
    throttle.record_abandoned(admitted[0])  # no verdict: does not count
    throttle.admit("victim", "10.0.0.1")


def test_username_backoff_locks_only_addresses_that_failed_for_it() -> None:
    throttle, clock = make(max_failures_per_username=2, username_backoff=2, max_username_backoff=10)
    fail(throttle, "victim", "10.6.6.6")
    fail(throttle, "victim", "10.6.6.6")
    with pytest.raises(LoginThrottled) as refused:
        throttle.admit("victim", "10.6.6.6")
    assert refused.value.retry_after == pytest.approx(2)
    # The real user, from an address that never failed for this name, gets in.
    throttle.record_success(throttle.admit("victim", "10.0.0.1"))
    # The back-off doubles per failure, capped.
    expected = [4, 8, 10, 10]
    for backoff in expected:
        clock.now += 100
        fail(throttle, "victim", "10.6.6.6")
        with pytest.raises(LoginThrottled) as refused:
            throttle.admit("victim", "10.6.6.6")
        assert refused.value.retry_after == pytest.approx(backoff)
    clock.now += 10
    throttle.admit("victim", "10.6.6.6")  # locked briefly, not for the whole window


def test_a_second_concurrent_guess_is_refused_once_the_username_is_over_its_limit() -> None:
    throttle, _ = make(max_failures_per_username=2)
    throttle.admit("victim", "10.6.6.6")
    throttle.admit("victim", "10.6.6.6")  # below the limit: a double submit is fine
    with pytest.raises(LoginThrottled):
        throttle.admit("victim", "10.6.6.6")
    throttle.admit("victim", "10.0.0.1")


def test_success_forgets_only_that_address_for_that_name() -> None:
    throttle, clock = make(
        max_failures_per_username=2, max_failures_per_address=3, username_backoff=10
    )
    fail(throttle, "victim", "10.6.6.6")
    fail(throttle, "victim", "10.6.6.6")
    fail(throttle, "victim", "10.0.0.1")  # the real user's typo: now they back off too
    fail(throttle, "mallory", "10.0.0.1")
    with pytest.raises(LoginThrottled):
        throttle.admit("victim", "10.0.0.1")
    clock.now += 20
    throttle.record_success(throttle.admit("victim", "10.0.0.1"))
    throttle.record_success(throttle.admit("victim", "10.0.0.1"))  # their failure is gone
    # The attacker's failures for the name stay: one more and they are locked again
    # (had the success reset the name's count, they would be under the limit).
    fail(throttle, "victim", "10.6.6.6")
    with pytest.raises(LoginThrottled):
        throttle.admit("victim", "10.6.6.6")
    # The real user's address keeps its failure for another name (no laundering):
    # two more failures for other names reach its limit of three.
    fail(throttle, "x", "10.0.0.1")
    fail(throttle, "y", "10.0.0.1")
    with pytest.raises(LoginThrottled):
        throttle.admit("z", "10.0.0.1")


def test_usernames_are_throttled_regardless_of_case() -> None:
    throttle, _ = make(max_failures_per_username=2)
    fail(throttle, "Victim", "10.6.6.6")
    fail(throttle, "VICTIM", "10.6.6.6")
    with pytest.raises(LoginThrottled):
        throttle.admit("victim ", "10.6.6.6")


def test_memory_is_bounded() -> None:
    throttle, clock = make(max_tracked_keys=100)
    for i in range(20_000):
        fail(throttle, f"user{i}", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        clock.now += 0.001
    assert throttle.tracked_keys() <= 300


def test_ipv6_addresses_are_throttled_per_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_key("x" * 1000) == "x" * 64


def test_retry_after_header_is_whole_seconds() -> None:
    assert [retry_after_header(s) for s in (0, 0.2, 1.0, 2.1)] == ["1", "1", "1", "3"]


async def test_concurrency_limit_queues_then_refuses() -> None:
    limit: ConcurrencyLimit[str] = ConcurrencyLimit(1, 1, 3.0, "busy")
    order: list[str] = []
    release_first = asyncio.Event()

    async def hold(name: str, until: asyncio.Event | None = None) -> None:
        async with limit.hold("key"):
            order.append(name)
            if until is not None:
                await until.wait()

    first = asyncio.create_task(hold("first", release_first))
    second = asyncio.create_task(hold("second"))
    await asyncio.sleep(0)
    assert order == ["first"] and limit.in_use("key") == 2
    with pytest.raises(LoginThrottled) as refused:
        await hold("third")
    assert str(refused.value) == "busy" and refused.value.retry_after == 3.0
    async with limit.hold("other key"):  # keys are independent
        pass
    release_first.set()
    await asyncio.gather(first, second)
    assert order == ["first", "second"]
    assert limit.in_use("key") == 0


async def test_concurrency_limit_survives_cancelled_waiters() -> None:
    limit: ConcurrencyLimit[str] = ConcurrencyLimit(1, 5, 3.0, "busy")
    release = asyncio.Event()
    entered: list[int] = []

    async def hold(i: int) -> None:
        async with limit.hold("key"):
            entered.append(i)
            await release.wait()

    tasks = [asyncio.create_task(hold(i)) for i in range(4)]
    await asyncio.sleep(0)
    tasks[1].cancel()
    tasks[2].cancel()
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert entered == [0, 3]
    assert [isinstance(r, asyncio.CancelledError) for r in results] == [False, True, True, False]
    assert limit.in_use("key") == 0
