"""Saved sessions: one run's token pair resumed by the next (`VBOClient.saved_session`,
`VBOClient.resume`, `SavedSession`), and ``log_out=False``.

Against the simulator for every API version (what a resumed client sends, and that the saved
session outlives its client), and against the scripted fake for the grants a resumed session due
for renewal makes; the JSON form read back from anything a file could hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import json
import pickle
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbo_async import AuthenticationError, ClientStateError, ConfigError, SavedSession, VBOClient, VBOError
from vbo_async.simulator import create_app

from .conftest import BASE, PASSWORD, USERNAME, FakeVBO, client_for
from .test_versions_simulator import MODES, client, make_simulator

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def saved(**changes: Any) -> SavedSession:
    """A session valid for half an hour from now (the test's now: xdist runs a test long after
    the module was imported)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    fields: dict[str, Any] = {
        "base_url": BASE,
        "username": USERNAME,
        "api_version": "v1",
        "access_token": "access-saved-Qx7",
        "refresh_token": "refresh-saved-Rk2",
        "expires": now + dt.timedelta(minutes=30),
        "renew_after": now + dt.timedelta(minutes=29),
    }
    return SavedSession(**{**fields, **changes})


@pytest.mark.parametrize("mode", MODES)
async def test_a_resumed_session_sends_no_grant_and_outlives_its_client(mode: str) -> None:
    simulator = make_simulator()
    app = create_app(simulator=simulator)
    async with client(app, mode, log_out=False) as first:
        assert first.saved_session() is None  # not signed in yet
        await first.sign_in()
        text = first.saved_session().to_json()  # type: ignore[union-attr]
        grants = sum(simulator.stats.token_requests.values())
    assert sum(simulator.stats.logouts.values()) == 0  # log_out=False: the token lives on
    session = SavedSession.from_json(text)
    async with client(app, mode, log_out=False) as second:
        assert second.resume(session) is True
        assert second.api_version == session.api_version  # "auto" looks for no version
        organizations = await second.organizations()
        assert second.token_requests == 0
        again = second.saved_session()
        assert again is not None
        assert again.access_token == session.access_token
        assert abs(again.expires - session.expires) < dt.timedelta(seconds=1)
    assert organizations
    assert sum(simulator.stats.token_requests.values()) == grants
    assert sum(simulator.stats.logouts.values()) == 0


async def test_closing_logs_out_by_default_and_the_session_then_needs_a_new_grant() -> None:
    simulator = make_simulator()
    app = create_app(simulator=simulator)
    async with client(app, "v8") as first:
        await first.sign_in()
        session = first.saved_session()
    assert session is not None
    assert simulator.stats.logouts["v8"] == 1
    async with client(app, "v8") as second:
        assert second.resume(session) is True
        await second.organizations()  # the logged-out pair is refused: renewed with the password
        assert second.token_requests >= 1
    assert [entry.grant_type for entry in simulator.stats.token_log][-1] == "password"


def test_the_saved_session_round_trips_through_json_and_hides_its_tokens() -> None:
    session = saved()
    assert SavedSession.from_json(session.to_json()) == session
    assert SavedSession.from_json(session.to_json().encode()) == session
    shown = repr(session) + str(session)
    assert "access-saved" not in shown
    assert "refresh-saved" not in shown
    assert copy.copy(session) is session
    assert copy.deepcopy(session) is session
    with pytest.raises(ConfigError, match="cannot be pickled"):
        pickle.dumps(session)


async def test_a_session_due_for_renewal_is_refreshed_not_signed_in_again(fake: FakeVBO) -> None:
    fake.valid_refresh.add("refresh-saved-Rk2")
    fake.route("GET", "/v1/Organizations", [])
    late = saved(renew_after=NOW - dt.timedelta(minutes=2), expires=NOW - dt.timedelta(minutes=1))
    async with client_for(fake, log_out=False) as vbo:
        assert vbo.resume(late) is True
        assert await vbo.organizations() == []
        renewed = vbo.saved_session()
    assert fake.grants() == ["refresh_token"]
    assert fake.token_forms[0]["refresh_token"] == "refresh-saved-Rk2"
    assert renewed is not None
    assert renewed.access_token == fake.issued[0][0]
    assert renewed.refresh_token == fake.issued[0][1]
    assert renewed.expires > dt.datetime.now(dt.UTC)


async def test_a_refused_refresh_token_falls_back_to_the_password(fake: FakeVBO) -> None:
    fake.route("GET", "/v1/Organizations", [])
    late = saved(renew_after=NOW - dt.timedelta(minutes=2), expires=NOW - dt.timedelta(minutes=1))
    async with client_for(fake) as vbo:
        vbo.resume(late)
        await vbo.sign_in()
    assert fake.grants() == ["refresh_token", "password"]


async def test_a_revoked_resumed_token_is_renewed_on_its_401(fake: FakeVBO) -> None:
    fake.valid_refresh.add("refresh-saved-Rk2")
    fake.route("GET", "/v1/Organizations", [])
    async with client_for(fake) as vbo:
        vbo.resume(saved())
        assert await vbo.organizations() == []
    assert fake.grants() == ["refresh_token"]  # the saved access token was unknown: 401, refreshed
    assert fake.api_requests[0].headers["authorization"] == "Bearer access-saved-Qx7"


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"base_url": "https://other.test:4443"}, "on https://other.test:4443, not"),
        ({"username": "someone"}, "for 'someone' on"),
    ],
)
async def test_a_session_of_another_server_or_user_is_refused(
    fake: FakeVBO, changes: dict[str, str], said: str
) -> None:
    async with client_for(fake) as vbo:
        with pytest.raises(ConfigError, match=said) as caught:
            vbo.resume(saved(**changes))
        await vbo.sign_in()  # signs in as usual
    assert "saved-" not in str(caught.value)
    assert "Bearer access-saved-Qx7" not in [r.headers.get("authorization") for r in fake.requests]


async def test_a_session_that_cannot_serve_the_client_is_declined(fake: FakeVBO) -> None:
    expired = saved(
        refresh_token=None, expires=NOW - dt.timedelta(seconds=1), renew_after=NOW - dt.timedelta(minutes=1)
    )
    async with client_for(fake) as vbo:
        assert vbo.resume(saved(api_version="v8")) is False  # the client speaks v1
        assert vbo.resume(expired) is False
        assert vbo.saved_session() is None
        await vbo.sign_in()
        assert vbo.saved_session() is not None
    assert fake.grants() == ["password"]


async def test_resume_is_refused_once_the_client_has_signed_in(fake: FakeVBO) -> None:
    async with client_for(fake) as vbo:
        await vbo.sign_in()
        with pytest.raises(ClientStateError, match="before the client's first request"):
            vbo.resume(saved())
        with pytest.raises(ConfigError, match="must be a SavedSession"):
            vbo.resume(json.loads(saved().to_json()))  # type: ignore[arg-type]
    assert vbo.saved_session() is None  # closed
    with pytest.raises(ClientStateError):
        vbo.resume(saved())
    with pytest.raises(ClientStateError):
        await vbo.sign_in()


async def test_sign_in_raises_a_refused_password_at_once(fake: FakeVBO) -> None:
    async with client_for(fake, password="wrong") as vbo:
        with pytest.raises(AuthenticationError):
            await vbo.sign_in()
        assert vbo.saved_session() is None
    assert fake.grants() == ["password"]


def test_log_out_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="log_out must be True or False, got str"):
        VBOClient(BASE, username=USERNAME, password=PASSWORD, log_out="no")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "not JSON"),
        ("[]", "no 'format'"),
        ('{"format": "vbo-async session 2"}', "no 'format'"),
        (json.dumps({**json.loads(saved().to_json()), "extra": 1}), "unknown member 'extra'"),
        (json.dumps({**json.loads(saved().to_json()), "api_version": "auto"}), "'api_version' is none of"),
        (json.dumps({**json.loads(saved().to_json()), "access_token": "a b"}), "'access_token' is no token"),
        (json.dumps({**json.loads(saved().to_json()), "refresh_token": ""}), "'refresh_token' is not a non"),
        (json.dumps({**json.loads(saved().to_json()), "expires": "2026-01-01T00:00:00"}), "with an offset"),
        (json.dumps({**json.loads(saved().to_json()), "renew_after": 5}), "'renew_after' is not an ISO"),
        (json.dumps({**json.loads(saved().to_json()), "username": None}), "'username' is not a non-empty"),
        (json.dumps({**json.loads(saved().to_json()), "api_version": []}), "'api_version' is none of"),
        (json.dumps({**json.loads(saved().to_json()), "api_version": {}}), "'api_version' is none of"),
    ],
)
def test_text_that_is_no_saved_session_is_refused_saying_why(text: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said) as caught:
        SavedSession.from_json(text)
    assert "saved-" not in str(caught.value)


@given(st.one_of(st.text(), st.binary(), st.recursive(st.none() | st.booleans() | st.text(), st.lists)))
def test_any_text_is_a_session_or_a_config_error(value: Any) -> None:
    text = value if isinstance(value, str | bytes) else json.dumps(value)
    with contextlib.suppress(ConfigError):
        SavedSession.from_json(text)


@given(
    access=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=64),
    refresh=st.none() | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=64),
    seconds=st.floats(min_value=-1e6, max_value=3e7, allow_nan=False),
)
def test_every_session_round_trips(access: str, refresh: str | None, seconds: float) -> None:
    when = NOW + dt.timedelta(seconds=seconds)
    session = saved(access_token=access, refresh_token=refresh, expires=when, renew_after=when)
    assert SavedSession.from_json(session.to_json()) == session


def test_the_token_times_survive_the_trip_between_clocks() -> None:
    session = saved(expires=NOW + dt.timedelta(minutes=30), renew_after=NOW + dt.timedelta(minutes=29))
    token = session.token(now=100.0, wall_now=NOW)
    assert token.expires_at == pytest.approx(100.0 + 30 * 60)
    assert token.refresh_at == pytest.approx(100.0 + 29 * 60)
    again = SavedSession.of(
        token,
        base_url=BASE,
        username=USERNAME,
        api_version="v1",
        now=5_000.0,
        wall_now=NOW + dt.timedelta(seconds=4_900),
    )
    assert again == session


async def test_a_session_over_httpx_transport_is_sent_as_the_bearer() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return httpx.Response(200, json=[])

    async with VBOClient(
        BASE, username=USERNAME, password=PASSWORD, api_version="auto", transport=httpx.MockTransport(handler)
    ) as vbo:
        assert vbo.resume(saved(api_version="v7")) is True
        assert vbo.api_version == "v7"
        await vbo.organizations()
    assert seen[0] == "Bearer access-saved-Qx7"
    assert seen[-1] == "Bearer access-saved-Qx7"  # the v7 logout at close, with the same token


async def test_sign_in_renews_a_token_due_within_the_time_asked_for(fake: FakeVBO) -> None:
    fake.valid_refresh.add("refresh-saved-Rk2")
    soon = saved(renew_after=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    async with client_for(fake, log_out=False) as vbo:
        vbo.resume(soon)
        await vbo.sign_in()  # due in 30 s: not yet
        await vbo.sign_in(valid_for=20)
        assert fake.grants() == []
        await vbo.sign_in(valid_for=60)  # due within the minute asked for: renewed now
        assert fake.grants() == ["refresh_token"]
        renewed = vbo.saved_session()
        assert renewed is not None
        assert renewed.access_token == fake.issued[0][0]
        await vbo.sign_in(valid_for=60)  # the new token is not due within it
    assert fake.grants() == ["refresh_token"]


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), 10**400, "60", True, None])
async def test_sign_in_refuses_a_time_that_is_no_number_of_seconds(fake: FakeVBO, value: Any) -> None:
    async with client_for(fake) as vbo:
        with pytest.raises(ConfigError, match="valid_for must be a number of seconds, 0 or more"):
            await vbo.sign_in(valid_for=value)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"expires": dt.datetime(2026, 1, 1)}, "'expires' is not a time with an offset"),
        ({"renew_after": "2026-01-01T00:00:00+00:00"}, "'renew_after' is not a time with an offset"),
        (
            {"expires": dt.datetime(9999, 12, 31, tzinfo=dt.UTC)},
            "'expires' is not between 1970",
        ),
        (
            {"expires": dt.datetime(1969, 12, 31, tzinfo=dt.UTC)},
            "'expires' is not between 1970",
        ),
        ({"api_version": "v9"}, "'api_version' is none of v8, v7, v6, v1"),
        ({"api_version": "auto"}, "'api_version' is none of"),
        ({"access_token": None}, "'access_token' is not a non-empty string"),
        ({"access_token": "abc\r\nX-Evil: 1"}, "'access_token' is no token"),
        ({"refresh_token": ""}, "'refresh_token' is not a non-empty string"),
        ({"refresh_token": "x" * 16_385}, "'refresh_token' is no token"),
        ({"base_url": 5}, "'base_url' is not a non-empty string"),
        ({"username": ""}, "'username' is not a non-empty string"),
        ({"version_found": "yesterday"}, "'version_found' is not a time with an offset"),
    ],
)
def test_a_session_made_by_hand_is_checked_as_one_read_from_json(changes: dict[str, Any], said: str) -> None:
    """A `SavedSession(...)` made with values `from_json` refuses failed later with bare errors
    (TypeError resuming a naive time, OverflowError saving one of year 9999, KeyError for
    api_version "v9", AttributeError sending a None token) or sent a header-breaking token."""
    with pytest.raises(ConfigError, match=f"^SavedSession: {said}") as caught:
        saved(**changes)
    assert "abc" not in str(caught.value)
    assert "xxx" not in str(caught.value)


def test_a_session_of_year_9999_read_from_json_is_refused() -> None:
    """Its text was accepted, and the client that resumed it failed with a bare OverflowError
    when saving it again (9999-12-31T23:00-05:00 is past datetime's last day in UTC)."""
    text = json.dumps({**json.loads(saved().to_json()), "expires": "9999-12-31T23:00:00-05:00"})
    with pytest.raises(ConfigError, match="not a saved vbo-async session: 'expires' is not between 1970"):
        SavedSession.from_json(text)


async def test_the_same_token_saved_twice_is_the_same_session(fake: FakeVBO) -> None:
    """Its times are kept to the millisecond: two saves of one token a moment apart compared
    unequal (the monotonic and wall clocks drift by microseconds), so a cache rewrote it."""
    async with client_for(fake, log_out=False) as vbo:
        await vbo.sign_in()
        first = vbo.saved_session()
        again = vbo.saved_session()
    assert first is not None
    assert first.same_tokens(again)
    assert abs(first.expires - again.expires) <= dt.timedelta(milliseconds=1)  # type: ignore[union-attr]
    assert first.expires.microsecond % 1000 == 0


async def test_an_auto_client_s_session_says_when_its_version_was_found() -> None:
    simulator = make_simulator()
    app = create_app(simulator=simulator)
    before = dt.datetime.now(dt.UTC)
    async with client(app, "auto", log_out=False) as first:
        await first.sign_in()
        found = first.saved_session()
    async with client(app, "v8", log_out=False) as pinned:
        await pinned.sign_in()
        given = pinned.saved_session()
    assert found is not None
    assert given is not None
    assert found.version_found is not None
    assert before <= found.version_found <= dt.datetime.now(dt.UTC)
    assert given.version_found is None  # a client given its version found none
    async with client(app, "auto", log_out=False) as resumed:
        assert resumed.resume(SavedSession.from_json(found.to_json())) is True
        again = resumed.saved_session()
    assert again is not None
    assert again.version_found == found.version_found


async def test_a_refresh_token_no_header_could_carry_is_saved_all_the_same(fake: FakeVBO) -> None:
    """A refresh token goes in a form's body: one with a blank or a non-ASCII letter, which the
    client accepted and used, made `saved_session()` raise `ConfigError`."""
    fake.token_script.append(
        httpx.Response(
            200, json={"access_token": "access-Qx7", "refresh_token": "réf tok", "expires_in": 3600}
        )
    )
    async with client_for(fake, log_out=False) as vbo:
        await vbo.sign_in()
        session = vbo.saved_session()
    assert session is not None
    assert session.refresh_token == "réf tok"
    assert SavedSession.from_json(session.to_json()) == session


async def test_a_session_cannot_be_resumed_once_a_call_has_begun(fake: FakeVBO) -> None:
    """A call begun, its grant not yet under way: `resume` was accepted, and the password grant
    then replaced the session resumed (the grant resuming exists to avoid)."""
    fake.route("GET", "/v1/Organizations", [])
    async with client_for(fake, log_out=False) as vbo:
        call = asyncio.create_task(vbo.organizations())
        await asyncio.sleep(0)
        with pytest.raises(ClientStateError, match="before the client's first request"):
            vbo.resume(saved())
        assert await call == []
    async with client_for(fake, api_version="auto", log_out=False) as auto:
        call = asyncio.create_task(auto.organizations())
        await asyncio.sleep(0)
        with pytest.raises(ClientStateError, match="before the client's first request"):
            auto.resume(saved())
        with contextlib.suppress(VBOError):
            await call


async def test_sign_in_renews_a_token_expiring_within_the_time_asked_for(fake: FakeVBO) -> None:
    """A token whose renewal falls after its expiry (a lifetime under 30 s): `sign_in(valid_for=)`
    kept it though it expired within the time asked for."""
    fake.valid_refresh.add("refresh-saved-Rk2")
    now = dt.datetime.now(dt.UTC)
    short = saved(expires=now + dt.timedelta(seconds=10), renew_after=now + dt.timedelta(seconds=30))
    async with client_for(fake, log_out=False) as vbo:
        vbo.resume(short)
        await vbo.sign_in(valid_for=5)
        assert fake.grants() == []
        await vbo.sign_in(valid_for=20)
    assert fake.grants() == ["refresh_token"]
