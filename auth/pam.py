"""Logging in with a unix account's password, checked by PAM (python-pam).

A failed PAM check blocks for 2-3 s (``pam_faildelay``), so checks run in a
small thread pool and never on the event loop, and every attempt first passes
:mod:`auth.throttle`: per address, per username and per (username, address)
pair, both by failure counts and by how many attempts are in PAM at once. A
password-guessing flood is refused before PAM is asked and cannot fill the
pool; the real user of an attacked account, logging in from an address that
has not failed for it, is let through.

Checking *another* user's password needs root or membership in the ``shadow``
group (``/etc/shadow`` readable); without it PAM can check only the password
of the user the server runs as. :meth:`PAMAuthenticator.start` says so.

Never use the ``su``/``runuser`` services: they accept any password when the
caller is root (``pam_rootok``). They are refused by configuration, and
:meth:`PAMAuthenticator.start` refuses any service whose auth stack uses
``pam_rootok``.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pam
from traitlets import Float, Integer, Set, TraitError, Unicode, default, validate

from .authenticator import (
    AuthenticatedUser,
    LoginRefused,
    LoginUnavailable,
    PasswordAttempt,
    PasswordAuthenticator,
)
from .throttle import (
    Attempt,
    ConcurrencyLimit,
    LoginThrottle,
    ThrottleLimits,
    address_key,
    username_key,
)

MAX_USERNAME_CHARS = 256
MAX_PASSWORD_BYTES = 8 * 1024
# Retry-After for refusals caused by attempts still in PAM: about one fail delay.
BUSY_RETRY_AFTER = 3.0
# Services that let root in without a password: checking a password with them proves nothing.
ROOTOK_SERVICES = frozenset({"su", "su-l", "runuser", "runuser-l"})
PAM_DIR = Path("/etc/pam.d")
SHADOW = Path("/etc/shadow")
# ASCII and C1 control characters (NUL included): never part of a real name or password.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# PAM answers meaning "these credentials do not log in"; anything else is a broken setup.
_REFUSALS = frozenset(
    {
        pam.PAM_AUTH_ERR,
        pam.PAM_USER_UNKNOWN,
        pam.PAM_PERM_DENIED,
        pam.PAM_MAXTRIES,
        pam.PAM_CRED_INSUFFICIENT,
        pam.PAM_AUTHINFO_UNAVAIL,
        pam.PAM_ACCT_EXPIRED,
        pam.PAM_NEW_AUTHTOK_REQD,
        pam.PAM_AUTHTOK_EXPIRED,
    }
)


@dataclass(frozen=True, slots=True)
class PamAnswer:
    """What PAM said about one username and password: ``code`` 0 is success."""

    code: int
    reason: str

    @property
    def ok(self) -> bool:
        return self.code == 0  # PAM_SUCCESS


@dataclass(frozen=True, slots=True)
class UnixAccount:
    """A unix account: its name as the system spells it and the names of all its groups."""

    name: str
    groups: frozenset[str]


def unix_account(name: str) -> UnixAccount | None:
    """The unix account ``name`` (None if there is none), with primary and supplementary groups.

    Blocking (NSS may ask a directory server): call it from a thread.
    """
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    groups = set()
    for gid in os.getgrouplist(entry.pw_name, entry.pw_gid):
        try:
            groups.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue  # a gid without a name cannot be listed in the configuration
    return UnixAccount(entry.pw_name, frozenset(groups))


def input_problem(username: str, password: str) -> str | None:
    """Why this username/password can never be right (for the log), or None.

    Cheap whatever the size of the input: lengths are checked before content.
    Empty passwords are refused: ``pam_unix nullok`` would let an account
    without a password in with one.
    """
    if not username or len(username) > MAX_USERNAME_CHARS:
        return f"username of {len(username)} characters"
    if _CONTROL.search(username):
        return "control character in username"
    if not password or len(password) > MAX_PASSWORD_BYTES:
        return f"password of {len(password)} characters"
    if "\x00" in password:
        return "NUL in password"
    try:
        username.encode("utf-8")
        if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
            return "password over 8 KiB"
    except UnicodeEncodeError:
        return "lone surrogate in username or password"
    return None


def service_uses_rootok(service: str, pam_dir: Path = PAM_DIR, _depth: int = 0) -> bool:
    """Whether the auth stack of ``service`` (following includes) contains ``pam_rootok``."""
    try:
        lines = (pam_dir / service).read_text(errors="replace").splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "@include" and len(fields) > 1:
            included = fields[1]
        elif fields[0].lstrip("-") == "auth" and len(fields) > 2:
            if any("pam_rootok" in f for f in fields[2:]):
                return True
            included = fields[2] if fields[1] in ("include", "substack") else ""
        else:
            continue
        if (
            included
            and "/" not in included
            and _depth < 8
            and service_uses_rootok(included, pam_dir, _depth + 1)
        ):
            return True
    return False


class PAMAuthenticator(PasswordAuthenticator):
    """Unix accounts' passwords, checked by PAM in a bounded thread pool after the throttle.

    Lifecycle: the pool is created on first use; :meth:`stop` waits for the
    checks in progress (a few seconds at most), cancels queued ones and
    leaves no thread running. Use one instance from one event loop.
    """

    service = Unicode(
        "login",
        config=True,
        help="The PAM service (a file in /etc/pam.d) that checks passwords. "
        "'su', 'su-l', 'runuser' and 'runuser-l' are refused: they accept any password "
        "from root, and so is any service whose auth stack uses pam_rootok.",
    )
    allowed_groups = Set(
        Unicode(),
        config=True,
        help="If not empty, only members of these unix groups (primary or supplementary), "
        "and members of admin_groups, may log in.",
    )
    admin_groups = Set(
        Unicode(), config=True, help="Members of these unix groups are admins (and allowed)."
    )
    pool_size = Integer(
        4,
        min=1,
        config=True,
        help="Threads checking passwords at once. A wrong password holds a thread for the "
        "PAM fail delay (2-3 s).",
    )
    pool_niceness = Integer(
        10,
        min=0,
        max=19,
        config=True,
        help="CPU niceness of the PAM threads (Linux; 0 leaves it alone). Password hashing is "
        "deliberately slow: at full priority a pool of hashing threads can starve the event "
        "loop serving live documents on a small machine.",
    )
    max_pending_attempts = Integer(
        256,
        min=1,
        config=True,
        help="Attempts waiting for or inside PAM at once; beyond it attempts are refused "
        "at once (HTTP 503) instead of queueing.",
    )
    throttle_window = Float(
        600.0, config=True, help="Seconds a failed login is remembered for throttling."
    )
    max_failures_per_address = Integer(
        20,
        min=1,
        config=True,
        help="Failed logins (and attempts in progress) one client address may have within "
        "throttle_window; beyond it that address is refused (HTTP 429) until the window "
        "passes. IPv6 addresses count per /64.",
    )
    max_failures_per_username = Integer(
        5,
        min=1,
        config=True,
        help="Failed logins for one username, from any address, within throttle_window "
        "before the username back-off starts. The back-off applies only to addresses that "
        "failed for that username: the real user elsewhere is not locked out.",
    )
    username_backoff = Float(
        2.0,
        config=True,
        help="Seconds of the first username back-off, doubled per further failure.",
    )
    max_username_backoff = Float(60.0, config=True, help="Longest username back-off, in seconds.")
    max_concurrent_per_username = Integer(
        2,
        min=1,
        config=True,
        help="Attempts for one username inside PAM at once (the rest wait their turn), "
        "so a burst for one name cannot occupy the whole pool.",
    )
    max_concurrent_per_address = Integer(
        2, min=1, config=True, help="Attempts from one client address inside PAM at once."
    )
    max_waiting_per_key = Integer(
        32,
        min=0,
        config=True,
        help="Attempts that may wait for a turn per username and per address; beyond it "
        "refused at once (HTTP 429). One more attempt for the same username from the same "
        "address may wait while one is in PAM (a double-submitted form).",
    )
    max_tracked_keys = Integer(
        10_000,
        min=1,
        config=True,
        help="Client addresses, usernames and pairs the throttle remembers (each); "
        "the oldest are forgotten first.",
    )

    @default("login_service")
    def _default_login_service(self) -> str:
        return "your unix account"

    @validate("service")
    def _validate_service(self, proposal: dict[str, Any]) -> str:
        service = str(proposal["value"])
        if service.strip().lower() in ROOTOK_SERVICES:
            raise TraitError(
                f"PAM service {service!r} accepts any password when the server runs as root; "
                "use 'login' or a service of your own"
            )
        if not service or "/" in service or _CONTROL.search(service) or service in (".", ".."):
            raise TraitError(f"{service!r} is not a PAM service name (a file in /etc/pam.d)")
        return service

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool: ThreadPoolExecutor | None = None
        self._throttle: LoginThrottle | None = None
        self._pending = 0
        self._checks: set[asyncio.Task[PamAnswer]] = set()
        self._limits: (
            tuple[ConcurrencyLimit[tuple[str, str]], ConcurrencyLimit[str], ConcurrencyLimit[str]]
            | None
        ) = None

    # ---- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Check the environment: refuse a rootok service; warn if others' passwords can't be checked.

        Raises RuntimeError if the service's auth stack uses ``pam_rootok``.
        """
        if await asyncio.to_thread(service_uses_rootok, self.service):
            raise RuntimeError(
                f"PAM service {self.service!r} uses pam_rootok: it would accept any password "
                "from a server running as root; configure another PAMAuthenticator.service"
            )
        if not (PAM_DIR / self.service).exists():
            self.log.warning(
                "PAM service %r has no file in %s: PAM will use the 'other' service",
                self.service,
                PAM_DIR,
            )
        problem = password_check_problem()
        if problem:
            self.log.warning("%s", problem)

    async def stop(self) -> None:
        """Cancel queued checks, wait for those inside PAM, shut the pool down."""
        pool, self._pool = self._pool, None
        for task in list(self._checks):
            task.cancel()
        if self._checks:
            await asyncio.gather(*self._checks, return_exceptions=True)
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    # ---- authenticate -------------------------------------------------------------------

    @property
    def throttle(self) -> LoginThrottle:
        """The throttle built from the traits, on first use."""
        if self._throttle is None:
            self._throttle = LoginThrottle(
                ThrottleLimits(
                    window=self.throttle_window,
                    max_failures_per_address=self.max_failures_per_address,
                    max_failures_per_username=self.max_failures_per_username,
                    username_backoff=self.username_backoff,
                    max_username_backoff=self.max_username_backoff,
                    busy_retry_after=BUSY_RETRY_AFTER,
                    max_tracked_keys=self.max_tracked_keys,
                )
            )
        return self._throttle

    async def authenticate(self, attempt: PasswordAttempt) -> AuthenticatedUser | None:
        """Check a unix username and password; None if they do not log in.

        Order: input checks (impossible input is refused without asking PAM),
        the throttle (raises LoginThrottled), the pending-attempt cap (raises
        LoginUnavailable), then PAM in the pool, then the unix account (a PAM
        user without one is refused). Cancelling the caller does not cancel a
        check already in PAM; its outcome is still recorded.
        """
        problem = input_problem(attempt.username, attempt.password)
        if problem:
            self.log.info("login refused before PAM (%s) from %s", problem, attempt.address)
            return None
        admitted = self.throttle.admit(attempt.username, attempt.address)
        if self._pending >= self.max_pending_attempts:
            self.throttle.record_abandoned(admitted)
            self.log.warning(
                "login for %s refused: %d attempts already pending", attempt.username, self._pending
            )
            raise LoginUnavailable("Too many logins at once; try again in a moment.")
        self._pending += 1
        task = asyncio.create_task(self._check(attempt, admitted))
        self._checks.add(task)
        task.add_done_callback(lambda done: self._check_done(done, admitted))
        try:
            answer = await asyncio.shield(task)
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if task.cancelled() and caller is not None and not caller.cancelling():
                raise LoginUnavailable("The server is stopping; try again in a moment.") from None
            raise
        if not answer.ok:
            self.log.info(
                "PAM refused %s from %s: %s", attempt.username, attempt.address, answer.reason
            )
            if answer.code in (pam.PAM_ACCT_EXPIRED, pam.PAM_NEW_AUTHTOK_REQD):
                raise LoginRefused("This account has expired or its password must be changed.")
            return None
        account = await asyncio.to_thread(unix_account, attempt.username)
        if account is None:
            self.log.warning("PAM accepted %s, who has no unix account: refused", attempt.username)
            raise LoginRefused("This account has no unix user on this server.")
        return AuthenticatedUser(
            name=account.name, provider="pam", admin=bool(account.groups & self.admin_groups)
        )

    def _check_done(self, task: asyncio.Task[PamAnswer], admitted: Attempt) -> None:
        """Account for a finished check, even one cancelled before it started."""
        self._checks.discard(task)
        self._pending -= 1
        self.throttle.record_abandoned(admitted)  # no-op if _check recorded an outcome
        if not task.cancelled():
            task.exception()  # retrieved: the caller may have gone (it is re-raised to it if not)

    async def _check(self, attempt: PasswordAttempt, admitted: Attempt) -> PamAnswer:
        """Wait for a turn (pair, address, username), ask PAM in the pool, record the outcome."""
        outcome = self.throttle.record_abandoned
        try:
            pair_limit, address_limit, username_limit = self._concurrency_limits()
            user, address = username_key(attempt.username), address_key(attempt.address)
            async with (
                pair_limit.hold((user, address)),
                address_limit.hold(address),
                username_limit.hold(user),
            ):
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        self.pool_size,
                        thread_name_prefix="pam",
                        initializer=_lower_priority,
                        initargs=(self.pool_niceness,),
                    )
                loop = asyncio.get_running_loop()
                try:
                    answer = await loop.run_in_executor(
                        self._pool, self.check_password, attempt.username, attempt.password
                    )
                except Exception:
                    self.log.exception("PAM check for %s failed", attempt.username)
                    raise LoginUnavailable("Password login failed on the server; try again later.")
            if answer.ok:
                outcome = self.throttle.record_success
            elif answer.code in _REFUSALS:
                outcome = self.throttle.record_failure
            else:
                self.log.error(
                    "PAM service %r failed for %s: %s (code %d)",
                    self.service,
                    attempt.username,
                    answer.reason,
                    answer.code,
                )
                raise LoginUnavailable("Password login is not working on the server right now.")
            return answer
        finally:
            outcome(admitted)

    def _concurrency_limits(
        self,
    ) -> tuple[ConcurrencyLimit[tuple[str, str]], ConcurrencyLimit[str], ConcurrencyLimit[str]]:
        if self._limits is None:
            busy = "Too many logins for this account or from your address at once; try again."
            self._limits = (
                ConcurrencyLimit(1, 1, BUSY_RETRY_AFTER, busy),
                ConcurrencyLimit(
                    self.max_concurrent_per_address,
                    self.max_waiting_per_key,
                    BUSY_RETRY_AFTER,
                    busy,
                ),
                ConcurrencyLimit(
                    self.max_concurrent_per_username,
                    self.max_waiting_per_key,
                    BUSY_RETRY_AFTER,
                    busy,
                ),
            )
        return self._limits

    def check_password(self, username: str, password: str) -> PamAnswer:
        """Ask PAM (auth, then account) about ``username`` and ``password``: the only PAM call.

        Blocking for up to the PAM fail delay: runs in the pool. Does not call
        ``pam_setcred`` (it can change the calling process's groups).
        """
        checker = pam.PamAuthenticator()
        checker.authenticate(username, password, service=self.service, resetcreds=False)
        reason = checker.reason
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        return PamAnswer(int(checker.code), text)

    async def check_allowed(self, name: str, user: AuthenticatedUser) -> bool:
        """Apply ``allowed_groups`` (admins are always allowed)."""
        if not self.allowed_groups or user.admin or name in self.admin_users:
            return True
        account = await asyncio.to_thread(unix_account, user.name)
        return account is not None and bool(account.groups & self.allowed_groups)


def _lower_priority(niceness: int) -> None:
    """Run the calling pool thread at a lower CPU priority (on Linux, niceness is per thread)."""
    if niceness <= 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except OSError:
        pass  # not permitted here: hashing then competes evenly with the event loop


def password_check_problem() -> str | None:
    """Why this process cannot check other users' passwords, or None if it can."""
    if os.geteuid() == 0 or os.access(SHADOW, os.R_OK):
        return None
    me = pwd.getpwuid(os.geteuid()).pw_name
    return (
        f"PAM login: the server runs as {me!r}, not root, and cannot read {SHADOW} (it is not "
        "in the 'shadow' group), so PAM can check only the password of "
        f"{me!r}; other users cannot log in. Run the server as root, or add {me!r} to the "
        "'shadow' group."
    )
