"""Failed attempts counted, so that guessing stops: sign-in passwords and device tokens.

argon2 makes each password guess cost a server a fraction of a second, but does not stop a patient
guesser; camera and sensor tokens cannot be guessed (256 random bits), yet a device with an old
token or a stranger probing ids hammers the server and fills its log. So failures are counted per
key in a sliding window, and past a limit the key is refused with a wait (HTTP 429, Retry-After):

- **sign-in**: at most 5 wrong passwords per user name and 20 per client address in 15 minutes.
  The name is counted whether or not an account has it, and a locked name is refused *before*
  the password is checked, so the answers tell a stranger neither which names exist nor whether
  a guess made during the lockout was right. A right password after the wait signs in and
  clears that name's count; it does not clear the address's (else one valid account would let
  its owner reset the count between guesses at other names).
- **device tokens** (camera uploads and heartbeats, sensor readings): a *valid* token always
  passes, so nobody can lock a camera out of reporting a poacher by sending wrong tokens in its
  name; wrong tokens past 10 per device id or 30 per client address in 5 minutes are answered 429
  instead of 401.

The counts live in memory, not in the store: checking costs no database write, a restart forgets
them (an attacker cannot restart the server) and no migration is needed. A park runs one
``pardus serve``; several servers sharing one PostgreSQL would each count on their own. The table
of keys is bounded (oldest keys dropped first), so a flood of made-up names cannot fill memory.
An IPv6 client is counted by its /64 network, which one subscriber usually holds whole.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from pardus.people.accounts import Person, check_sign_in

Clock = Callable[[], float]


@dataclass(frozen=True)
class Limit:
    """At most ``failures`` failures of one key within ``window_s`` seconds."""

    failures: int
    window_s: float

    def __post_init__(self) -> None:
        if self.failures < 1 or not (self.window_s > 0 and math.isfinite(self.window_s)):
            raise ValueError(f"a limit needs at least 1 failure and a finite window, not {self}")


SIGN_IN_PER_NAME = Limit(5, 15 * 60)
SIGN_IN_PER_ADDRESS = Limit(20, 15 * 60)
TOKEN_PER_DEVICE = Limit(10, 5 * 60)
TOKEN_PER_ADDRESS = Limit(30, 5 * 60)
MAX_KEYS = 50_000  # per counter; ~50 bytes of key + a few floats each: a few MB at most


class Throttle:
    """Failures per key in a sliding window (thread-safe).

    A key is refused while its last ``limit.failures`` failures all fall within ``limit.window_s``;
    it is free again when the oldest of them is a window old. Refused attempts are not counted
    (the caller does not record them), so a person who waits out the lock gets a fresh try."""

    def __init__(self, limit: Limit, clock: Clock = time.monotonic, max_keys: int = MAX_KEYS) -> None:
        self.limit, self.clock, self.max_keys = limit, clock, max_keys
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()  # oldest last failure first
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        with self._lock:
            times = self._fails.get(key)
            if times is None or len(times) < self.limit.failures:
                return 0.0
            return max(0.0, times[0] + self.limit.window_s - self.clock())

    def fail(self, key: str) -> None:
        """Count one failure of ``key`` now."""
        with self._lock:
            self._append(key, self.clock())

    def reserve(self, key: str) -> float | None:
        """Count a failure of ``key`` now unless it is refused (then None); returns the time counted,
        for :meth:`give_back` when the attempt succeeds. Counting *before* the slow check means a
        burst of simultaneous guesses cannot all slip past the limit while argon2 works."""
        with self._lock:
            now = self.clock()
            times = self._fails.get(key)
            if times is not None and len(times) >= self.limit.failures and times[0] + self.limit.window_s > now:
                return None
            self._append(key, now)
            return now

    def give_back(self, key: str, at: float) -> None:
        """Un-count the failure :meth:`reserve` counted at ``at`` (the attempt did not fail)."""
        with self._lock:
            times = self._fails.get(key)
            if times is not None and at in times:
                times.remove(at)
                if not times:
                    del self._fails[key]

    def _append(self, key: str, now: float) -> None:
        times = self._fails.get(key)
        if times is None:
            self._make_room(now)
            times = self._fails[key] = deque(maxlen=self.limit.failures)
        else:
            self._fails.move_to_end(key)
        times.append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)

    def __len__(self) -> int:
        return len(self._fails)

    def _make_room(self, now: float) -> None:
        """Drop keys whose failures have all aged out; if the table is still full, the key failed
        longest ago goes (it is the least likely to be locked)."""
        while self._fails:
            first = next(iter(self._fails.values()))
            if first[-1] + self.limit.window_s > now and len(self._fails) < self.max_keys:
                return
            self._fails.popitem(last=False)


def address_key(address: str | None) -> str:
    """The client address as counted: IPv4 as is, IPv6 by its /64 network, anything else as given
    (clipped), so one subscriber cannot dodge the count by walking through its own addresses."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def minutes(seconds: float) -> str:
    """A wait as a person reads it: '40 seconds', '1 minute', '12 minutes'."""
    s = max(1, math.ceil(seconds))
    if s < 60:
        return f"{s} seconds" if s != 1 else "1 second"
    m = math.ceil(s / 60)
    return "1 minute" if m == 1 else f"{m} minutes"


@dataclass(frozen=True)
class SignIn:
    """What a sign-in attempt came to: the person, or None; ``retry_after`` > 0 when it was refused
    unchecked because of earlier failures, with ``reason`` saying whose ('name' or 'address')."""

    person: Person | None
    retry_after: float = 0.0
    reason: str = ""

    @property
    def message(self) -> str:
        """The words for a refused attempt: the same for a name with an account and one without."""
        if self.retry_after <= 0:
            return ""
        whose = "for this user name" if self.reason == "name" else "from your network address"
        return (f"Too many wrong passwords {whose}. Wait {minutes(self.retry_after)} and try again; an admin can "
                "set a new password with `pardus users add NAME --password-prompt`.")


class SignInGuard:
    """Counts wrong passwords per user name and per client address (see the module's text)."""

    def __init__(self, per_name: Limit = SIGN_IN_PER_NAME, per_address: Limit = SIGN_IN_PER_ADDRESS,
                 clock: Clock = time.monotonic) -> None:
        self.names = Throttle(per_name, clock)
        self.addresses = Throttle(per_address, clock)

    def attempt(self, s: Session, name: str, password: str, address: str | None) -> SignIn:
        """Check ``name`` and ``password`` unless earlier failures lock the name or the address.
        The attempt is counted as a failure before the check and un-counted when it succeeds."""
        name_key, addr_key = name[:200], address_key(address)
        at_name = self.names.reserve(name_key)
        if at_name is None:
            return SignIn(None, self.names.wait(name_key), "name")
        at_addr = self.addresses.reserve(addr_key)
        if at_addr is None:
            self.names.give_back(name_key, at_name)
            return SignIn(None, self.addresses.wait(addr_key), "address")
        try:
            person = check_sign_in(s, name, password)
        except BaseException:  # the store failed, not the person: this was no wrong password
            self.names.give_back(name_key, at_name)
            self.addresses.give_back(addr_key, at_addr)
            raise
        if person is not None:
            self.names.clear(name_key)
            self.addresses.give_back(addr_key, at_addr)
        return SignIn(person)


class TokenGuard:
    """Counts wrong device tokens per device id and per client address (see the module's text).

    It is asked only after a token was found wrong, so a device with its valid token is never
    refused because of what others sent in its name."""

    def __init__(self, per_device: Limit = TOKEN_PER_DEVICE, per_address: Limit = TOKEN_PER_ADDRESS,
                 clock: Clock = time.monotonic) -> None:
        self.devices = Throttle(per_device, clock)
        self.addresses = Throttle(per_address, clock)

    def wrong_token(self, device: str, address: str | None) -> float:
        """Record a wrong token for ``device`` from ``address``; returns the seconds to wait when
        the device id or the address was already past its limit (answer 429, not counted), else 0
        (answer 401, counted)."""
        dev_key, addr_key = device[:128], address_key(address)
        wait = max(self.devices.wait(dev_key), self.addresses.wait(addr_key))
        if wait > 0:
            return wait
        self.devices.fail(dev_key)
        self.addresses.fail(addr_key)
        return 0.0


@dataclass
class Guards:
    """The counters one running server keeps (``pardus serve`` holds one of these)."""

    sign_in: SignInGuard
    tokens: TokenGuard

    @classmethod
    def default(cls, clock: Clock = time.monotonic) -> Guards:
        return cls(SignInGuard(clock=clock), TokenGuard(clock=clock))
