"""Rate limits (issue 19, item 6 "no rate limit"): wrong passwords and wrong device tokens are
counted, and past the limit answered 429 with Retry-After, through the real app on both databases.

The app's counters run on a clock the test moves, so a 15-minute lockout takes no time."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from tests.live.helpers import jpeg

from pardus.live.cameras import add_camera
from pardus.people.accounts import add_user
from pardus.people.throttle import (
    SIGN_IN_PER_ADDRESS,
    SIGN_IN_PER_NAME,
    TOKEN_PER_ADDRESS,
    TOKEN_PER_DEVICE,
    Guards,
    Limit,
    Throttle,
    address_key,
)
from pardus.store import Workspace
from pardus.telemetry.sensors import add_sensor, issue_token
from pardus.web.app import LiveConfig, create_app

PASSWORD = "correct horse battery"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its lowest cost: these tests count tries, they do not measure argon2 (at the real
    cost each try takes about half a second on a loaded test machine)."""
    from argon2 import PasswordHasher

    from pardus.people import accounts

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", cheap)
    monkeypatch.setattr(accounts, "_DUMMY_HASH", cheap.hash("not a password of anyone"))


@pytest.fixture
def app(workspace: Workspace, clock: Clock):
    app = create_app(workspace, LiveConfig(pipeline=False))
    app.state.guards = Guards.default(clock=clock)
    return app


def _client(app, address: str = "198.51.100.7") -> TestClient:
    return TestClient(app, base_url="http://testserver", client=(address, 50000))


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page carries no CSRF token"
    return m.group(1)


def _message(html: str) -> str:
    m = re.search(r'id="signin-error">([^<]*)<', html)
    assert m, "the sign-in page says nothing"
    return m.group(1)


def _try(c: TestClient, name: str, password: str):
    token = _csrf(c.get("/signin").text)
    return c.post("/signin", data={"name": name, "password": password, "csrf_token": token}, follow_redirects=False)


def test_item6_five_wrong_passwords_lock_a_name_for_15_minutes_whether_or_not_it_has_an_account(
        cheap_hashes: None, workspace: Workspace, app, clock: Clock) -> None:
    add_user(workspace, "ivanov", "ranger", password=PASSWORD)
    assert Limit(5, 900) == SIGN_IN_PER_NAME
    answers: dict[str, tuple[str, str]] = {}
    with _client(app) as c:
        for name in ("ivanov", "nobody"):  # an account, and a name nobody has
            for _ in range(5):
                r = _try(c, name, "wrong password!")
                assert r.status_code == 401 and "Wrong user name or password" in r.text
            clock.now += 60
            # The sixth try is refused unchecked, even with the right password: guessing stops here.
            r = _try(c, name, PASSWORD)
            assert r.status_code == 429, r.text
            assert "pardus_session" not in r.headers.get("set-cookie", "")
            answers[name] = (r.headers["retry-after"], _message(r.text))
            clock.now -= 60  # both names at the same point of their lockout, for the comparison below
        # Same words and the same wait for both: a stranger learns nothing about which names exist.
        assert answers["ivanov"] == answers["nobody"]
        retry, message = answers["ivanov"]
        assert retry == "840" and "Too many wrong passwords for this user name" in message
        assert "14 minutes" in message
        assert c.get("/alerts", follow_redirects=False).status_code == 303  # not signed in
        clock.now += 60 + 840 - 1
        assert _try(c, "ivanov", PASSWORD).status_code == 429  # a second early: still locked
        clock.now += 1
        # After the window the right password works, and the name's count starts again.
        r = _try(c, "ivanov", PASSWORD)
        assert r.status_code == 303 and "pardus_session" in r.headers["set-cookie"]
        assert c.get("/alerts").status_code == 200
    with _client(app) as other:
        for _ in range(4):
            assert _try(other, "ivanov", "wrong password!").status_code == 401
        assert _try(other, "ivanov", PASSWORD).status_code == 303  # a success clears the name's count


def test_item6_one_address_guessing_many_names_is_stopped_other_addresses_are_not(
        cheap_hashes: None, workspace: Workspace, app, clock: Clock) -> None:
    add_user(workspace, "ivanov", "ranger", password=PASSWORD)
    assert Limit(20, 900) == SIGN_IN_PER_ADDRESS
    with _client(app, "203.0.113.9") as guesser:
        for i in range(20):  # password spraying: a few tries at each of many names
            assert _try(guesser, f"ranger{i // 2}", "Summer2024!!").status_code == 401
        r = _try(guesser, "ivanov", PASSWORD)
        assert r.status_code == 429 and "from your network address" in _message(r.text)
        assert int(r.headers["retry-after"]) == 900
    # The names themselves were tried twice each: a ranger elsewhere signs in as usual.
    with _client(app, "198.51.100.7") as ranger:
        assert _try(ranger, "ivanov", PASSWORD).status_code == 303
    # The same network seen over IPv6 is counted by its /64, so walking through its addresses does not help.
    with _client(app, "2001:db8:1:2::1") as a, _client(app, "2001:db8:1:2:ffff::9") as b:
        for i in range(20):
            assert _try(a if i % 2 else b, f"x{i}", "Summer2024!!").status_code == 401
        assert _try(b, "ivanov", PASSWORD).status_code == 429


def test_item6_a_burst_of_simultaneous_guesses_gets_no_more_than_five_checked(
        workspace: Workspace, app, clock: Clock) -> None:
    """The try is counted before argon2 checks it: parallel guesses cannot slip past the limit
    (argon2 at its real cost here, so the guesses are checked at the same time)."""
    add_user(workspace, "ivanov", "ranger", password=PASSWORD)
    with _client(app) as c:
        token = _csrf(c.get("/signin").text)

        def guess(i: int) -> int:
            return c.post("/signin", data={"name": "ivanov", "password": f"guess number {i}", "csrf_token": token},
                          follow_redirects=False).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = sorted(pool.map(guess, range(12)))
    assert codes == [401] * 5 + [429] * 7


def _heartbeat(c: TestClient, camera: str, token: str):
    return c.post(f"/api/v1/cameras/{camera}/heartbeat", json={"battery_pct": 80},
                  headers={"Authorization": f"Bearer {token}"})


def test_item6_wrong_camera_tokens_are_answered_429_but_the_cameras_own_token_always_passes(
        workspace: Workspace, app, clock: Clock) -> None:
    token = add_camera(workspace, "C1")
    assert Limit(10, 300) == TOKEN_PER_DEVICE
    wrong = "pdc.C1." + "A" * 43
    with _client(app, "192.0.2.50") as stranger, _client(app, "192.0.2.60") as camera:
        for _ in range(10):
            r = _heartbeat(stranger, "C1", wrong)
            assert r.status_code == 401 and "wrong token" in r.json()["error"]
        r = _heartbeat(stranger, "C1", wrong)
        assert r.status_code == 429 and r.headers["retry-after"] == "300"
        assert "too many wrong tokens" in r.json()["error"]
        up = stranger.post("/api/v1/cameras/C1/media", files={"file": ("a.jpg", jpeg(1), "image/jpeg")},
                           headers={"Authorization": f"Bearer {wrong}"})
        assert up.status_code == 429
        # Nobody locks a camera out of reporting by sending wrong tokens in its name.
        assert _heartbeat(camera, "C1", token).status_code == 200
        up = camera.post("/api/v1/cameras/C1/media", files={"file": ("a.jpg", jpeg(1), "image/jpeg")},
                         headers={"Authorization": f"Bearer {token}"})
        assert up.status_code == 201, up.text
        # A wrong token for that id from any address is refused too, until the window has passed.
        assert _heartbeat(camera, "C1", wrong).status_code == 429
        clock.now += 300
        assert _heartbeat(stranger, "C1", wrong).status_code == 401


def test_item6_probing_camera_and_sensor_ids_from_one_address_is_answered_429(
        workspace: Workspace, app, clock: Clock) -> None:
    with workspace.db.session() as s:
        add_sensor(s, "PM25-1", "pm25")
        s.flush()
        sensor_token = issue_token(s, "PM25-1")
    reading = {"time": "2024-05-01T06:30:00+10:00", "kind": "pm25", "value": 12.5}
    assert Limit(30, 300) == TOKEN_PER_ADDRESS
    with _client(app, "192.0.2.70") as prober, _client(app, "192.0.2.80") as sensor:
        for i in range(30):  # unknown ids are answered as wrong tokens are, and counted as such
            assert _heartbeat(prober, f"CAM-{i}", "pdc.x.y").status_code == 401
        r = _heartbeat(prober, "CAM-99", "pdc.x.y")
        assert r.status_code == 429 and int(r.headers["retry-after"]) == 300
        r = prober.post("/api/v1/sensors/PM25-1/readings", json=reading, headers={"Authorization": "Bearer pds.no"})
        assert r.status_code == 429
        # Another address is not affected, and the sensor with its own token is stored.
        assert _heartbeat(sensor, "CAM-99", "pdc.x.y").status_code == 401
        r = sensor.post("/api/v1/sensors/PM25-1/readings", json=reading,
                        headers={"Authorization": f"Bearer {sensor_token}"})
        assert r.status_code == 200 and r.json()["stored"] == 1
        for _ in range(10):
            assert sensor.post("/api/v1/sensors/PM25-1/readings", json=reading,
                               headers={"Authorization": "Bearer pds.no"}).status_code == 401
        assert sensor.post("/api/v1/sensors/PM25-1/readings", json=reading,
                           headers={"Authorization": "Bearer pds.no"}).status_code == 429


def test_throttle_keeps_a_bounded_table_and_counts_ipv6_by_its_network() -> None:
    clock = Clock()
    t = Throttle(Limit(2, 60), clock, max_keys=100)
    for i in range(1000):  # a flood of made-up names
        t.fail(f"name{i}")
    assert len(t) == 100
    clock.now += 61
    t.fail("fresh")  # aged-out keys are dropped first
    assert len(t) == 1 and t.wait("fresh") == 0
    t.fail("fresh")
    assert t.wait("fresh") == 60
    at = t.reserve("other")
    assert at is not None and t.reserve("other") is not None and t.reserve("other") is None
    t.give_back("other", at)
    assert t.wait("other") == 0
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1" and address_key(None) == "-"
    assert address_key("testclient") == "testclient"
    with pytest.raises(ValueError):
        Limit(0, 60)
