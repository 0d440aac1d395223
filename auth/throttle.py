"""Login throttling, decided before a login method is asked. Framework-free.

Two parts, used together by password logins (PAM):

- :class:`LoginThrottle` counts failed attempts per client address, per
  username and per (username, address) pair in a sliding window. An attempt
  still in progress counts as a failure until it resolves, so a burst of
  simultaneous guesses is refused at once instead of after the first answers
  come back. An address over its limit is refused until its window passes. A
  username over its limit is locked only briefly (a capped, doubling back-off)
  and only for addresses that have failed for it: the real user, typing from
  an address that never failed for that name, still gets in.
- :class:`ConcurrencyLimit` caps how many attempts per key (username, address,
  pair) are inside the login method at once and how many may wait for a turn,
  so a burst for one name or from one address cannot occupy the whole pool.

Both keep bounded memory: ``max_tracked_keys`` keys per map, oldest evicted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .authenticator import LoginThrottled

KeyT = TypeVar("KeyT")


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    """The limits of a :class:`LoginThrottle`; times in seconds."""

    window: float = 600.0
    """How long a failure is remembered."""
    max_failures_per_address: int = 20
    """Failures (and attempts in progress) one address may have in the window."""
    max_failures_per_username: int = 5
    """Failures for one username, from any address, before the back-off starts."""
    username_backoff: float = 2.0
    """First back-off, doubled per further failure, for addresses that failed for that name."""
    max_username_backoff: float = 60.0
    """Cap on the username back-off: the longest an address is kept out of one account."""
    busy_retry_after: float = 3.0
    """Retry-After given when the refusal is due to attempts still in progress."""
    max_tracked_keys: int = 10_000
    """Addresses, usernames and pairs remembered (each map); the oldest are forgotten first."""

    def __post_init__(self) -> None:
        if min(self.max_failures_per_address, self.max_failures_per_username) < 1:
            raise ValueError("failure limits must be at least 1")
        if self.max_tracked_keys < 1 or self.window <= 0:
            raise ValueError("window and max_tracked_keys must be positive")


def address_key(address: str) -> str:
    """The throttling key of a client address.

    IPv4 addresses (also IPv4-mapped IPv6) are keyed as they are; IPv6
    addresses by their /64 network, since one client usually holds a whole
    /64. Anything unparseable is keyed by its first 64 characters.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def username_key(username: str) -> str:
    """The throttling key of a username: case-folded, as some account databases ignore case."""
    return username.strip().casefold()


@dataclass(eq=False, slots=True)
class Attempt:
    """One admitted attempt; hand it back to the throttle with its outcome."""

    username: str
    address: str
    at: float
    in_flight: bool = True
    resolved: bool = field(default=False, repr=False)


class _KeyedDeques(Generic[KeyT]):
    """Per-key deques of attempts, at most ``max_keys`` keys, least recently used evicted."""

    def __init__(self, max_keys: int, max_len: int) -> None:
        self.max_keys = max_keys
        self.max_len = max_len
        self.items: OrderedDict[KeyT, deque[Attempt]] = OrderedDict()

    def live(self, key: KeyT, oldest: float) -> list[Attempt]:
        """Entries of ``key`` still counting: in progress, or failed after ``oldest``."""
        entries = self.items.get(key)
        if entries is None:
            return []
        while entries and not entries[0].in_flight and entries[0].at <= oldest:
            entries.popleft()
        live = [e for e in entries if e.in_flight or e.at > oldest]
        if not live:
            del self.items[key]
        return live

    def append(self, key: KeyT, attempt: Attempt) -> None:
        entries = self.items.get(key)
        if entries is None:
            entries = self.items[key] = deque(maxlen=self.max_len)
            while len(self.items) > self.max_keys:
                self.items.popitem(last=False)
        else:
            self.items.move_to_end(key)
        entries.append(attempt)

    def remove(self, key: KeyT, attempt: Attempt) -> None:
        entries = self.items.get(key)
        if entries is None:
            return
        with contextlib.suppress(ValueError):  # already pushed out by maxlen
            entries.remove(attempt)
        if not entries:
            del self.items[key]

    def forget(self, key: KeyT, predicate: Callable[[Attempt], bool]) -> None:
        entries = self.items.get(key)
        if entries is None:
            return
        kept = [e for e in entries if not predicate(e)]
        if kept:
            self.items[key] = deque(kept, maxlen=self.max_len)
        else:
            del self.items[key]


class LoginThrottle:
    """Decides, before any password is checked, whether an attempt may go ahead.

    Call :meth:`admit` first; it raises LoginThrottled or returns an
    :class:`Attempt`, which must then be given exactly one outcome:
    :meth:`record_success`, :meth:`record_failure` (wrong credentials) or
    :meth:`record_abandoned` (neither: the method failed, the attempt was
    cancelled or refused for another reason). Not thread-safe: use it from
    one thread (the event loop). ``clock`` is monotonic seconds.
    """

    def __init__(
        self, limits: ThrottleLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits = limits or ThrottleLimits()
        self.clock = clock
        keys = limits.max_tracked_keys
        # Enough entries per key to decide every rule; the back-off saturates well before.
        per_name = limits.max_failures_per_username + 64
        self._by_address: _KeyedDeques[str] = _KeyedDeques(keys, limits.max_failures_per_address)
        self._by_username: _KeyedDeques[str] = _KeyedDeques(keys, per_name)
        self._by_pair: _KeyedDeques[tuple[str, str]] = _KeyedDeques(
            keys, limits.max_failures_per_address
        )

    def admit(self, username: str, address: str) -> Attempt:
        """Admit an attempt or refuse it.

        Raises LoginThrottled (with ``retry_after`` seconds) when ``address``
        has too many failures or attempts in progress, or when ``username``
        is over its limit and this address has failed for it within the
        back-off (or still has an attempt for it in progress).
        """
        limits = self.limits
        now = self.clock()
        oldest = now - limits.window
        user, addr = username_key(username), address_key(address)
        by_address = self._by_address.live(addr, oldest)
        if len(by_address) >= limits.max_failures_per_address:
            raise LoginThrottled(
                "Too many failed logins from your address.",
                self._address_retry_after(by_address, now),
            )
        by_username = self._by_username.live(user, oldest)
        by_pair = self._by_pair.live((user, addr), oldest)
        if len(by_username) >= limits.max_failures_per_username and by_pair:
            if any(e.in_flight for e in by_pair):
                retry_after = limits.busy_retry_after
            else:
                excess = len(by_username) - limits.max_failures_per_username
                backoff = min(
                    limits.username_backoff * 2.0 ** min(excess, 62), limits.max_username_backoff
                )
                retry_after = max(e.at for e in by_pair) + backoff - now
            if retry_after > 0:
                raise LoginThrottled("Too many failed logins for this account.", retry_after)
        attempt = Attempt(user, addr, now)
        self._by_address.append(addr, attempt)
        self._by_username.append(user, attempt)
        self._by_pair.append((user, addr), attempt)
        return attempt

    def _address_retry_after(self, entries: list[Attempt], now: float) -> float:
        """When enough of ``entries`` will have expired to let one more attempt in."""
        must_expire = len(entries) - self.limits.max_failures_per_address + 1
        failed = sorted(e.at for e in entries if not e.in_flight)
        if must_expire > len(failed):
            return self.limits.busy_retry_after
        return max(failed[must_expire - 1] + self.limits.window - now, 0.0)

    def record_failure(self, attempt: Attempt) -> None:
        """The credentials were wrong: the attempt counts from now, for the whole window."""
        if attempt.resolved:
            return
        self._remove(attempt)
        attempt.resolved, attempt.in_flight, attempt.at = True, False, self.clock()
        self._by_address.append(attempt.address, attempt)
        self._by_username.append(attempt.username, attempt)
        self._by_pair.append((attempt.username, attempt.address), attempt)

    def record_success(self, attempt: Attempt) -> None:
        """The credentials were right: forget this address's failures for this username.

        Failures of the same name from other addresses stay (a real user
        logging in does not hand an attacker elsewhere a fresh set of
        guesses), and so do this address's failures for other names (an
        attacker cannot launder a password-spraying address by logging into
        an account of their own).
        """
        if attempt.resolved:
            return
        attempt.resolved = True
        self._remove(attempt)
        user, addr = attempt.username, attempt.address
        mine: Callable[[Attempt], bool] = lambda e: e.username == user and e.address == addr
        self._by_pair.forget((user, addr), lambda e: True)
        self._by_address.forget(addr, mine)
        self._by_username.forget(user, mine)

    def record_abandoned(self, attempt: Attempt) -> None:
        """The attempt had no verdict (error, cancellation, refusal by a later limit)."""
        if attempt.resolved:
            return
        attempt.resolved = True
        self._remove(attempt)

    def _remove(self, attempt: Attempt) -> None:
        self._by_address.remove(attempt.address, attempt)
        self._by_username.remove(attempt.username, attempt)
        self._by_pair.remove((attempt.username, attempt.address), attempt)

    def tracked_keys(self) -> int:
        """How many keys are remembered in all maps (for tests and metrics)."""
        return sum(len(m.items) for m in (self._by_address, self._by_username, self._by_pair))


@dataclass(slots=True)
class _Slots:
    holders: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)


class ConcurrencyLimit(Generic[KeyT]):
    """At most ``running`` holders per key at once; at most ``waiting`` more queue (FIFO).

    ``async with limit.hold(key):`` waits for a turn, or raises LoginThrottled
    (``retry_after`` seconds, message ``busy_message``) at once when the
    key's queue is full. Only keys in use are stored. Use from one event loop.
    """

    def __init__(self, running: int, waiting: int, retry_after: float, busy_message: str) -> None:
        if running < 1 or waiting < 0:
            raise ValueError("running must be at least 1 and waiting at least 0")
        self.running = running
        self.waiting = waiting
        self.retry_after = retry_after
        self.busy_message = busy_message
        self._keys: dict[KeyT, _Slots] = {}

    def in_use(self, key: KeyT) -> int:
        """Holders plus waiters of ``key``."""
        slots = self._keys.get(key)
        return 0 if slots is None else slots.holders + len(slots.waiters)

    @contextlib.asynccontextmanager
    async def hold(self, key: KeyT) -> AsyncIterator[None]:
        slots = self._keys.setdefault(key, _Slots())
        if slots.holders < self.running and not slots.waiters:
            slots.holders += 1
        elif len(slots.waiters) >= self.waiting:
            self._drop_if_idle(key, slots)
            raise LoginThrottled(self.busy_message, self.retry_after)
        else:
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            slots.waiters.append(turn)
            try:
                await turn  # the releasing holder hands its slot over
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._release(key, slots)  # handed over just as we were cancelled
                else:
                    with contextlib.suppress(ValueError):  # skipped by a release already
                        slots.waiters.remove(turn)
                    self._drop_if_idle(key, slots)
                raise
        try:
            yield
        finally:
            self._release(key, slots)

    def _release(self, key: KeyT, slots: _Slots) -> None:
        while slots.waiters:
            turn = slots.waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        slots.holders -= 1
        self._drop_if_idle(key, slots)

    def _drop_if_idle(self, key: KeyT, slots: _Slots) -> None:
        if slots.holders == 0 and not slots.waiters and self._keys.get(key) is slots:
            del self._keys[key]


def retry_after_header(seconds: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
