"""The fast decoding pass and the detailed one agree, for every dialect (hypothesis).

For each API version in ``DIALECTS``: wire JSON drawn from that version's simulator answers and
the reference examples (mutated: values replaced, keys dropped, added or respelled as another
version spells them) and arbitrary JSON values is structured with the fast converter and with
the detailed one. Either both raise, or both give equal objects whose links have the same
hrefs, relations, classes and targets. The fast pass never needs the detailed one for what
servers send (``Decoder.fallbacks`` stays 0), every model qualifies for the fast path, generated
code shows in tracebacks, and the schedule-policy cache never answers for a different policy.

Examples per test: ``VBO_PROPERTY_EXAMPLES`` (default 150); derandomized unless
``VBO_PROPERTY_RANDOM=1``.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import linecache
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import cattrs
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbo_async import (
    BackupRepository,
    Job,
    JobSession,
    Link,
    Organization,
    Proxy,
    SchedulePolicy,
    SelectedItem,
    SelectedMailbox,
    ServiceInstance,
    VBOClient,
)
from vbo_async._convert import LINKS, MODELS, WireValueError, fast_path_rules_hold, make_converter
from vbo_async._dialects import DIALECTS, Dialect
from vbo_async._links import ThroughLink
from vbo_async._models import RESOURCES
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

from .test_properties import PROPERTY
from .versions_data import (
    V6_PLUS,
    job_wire,
    organization_wire,
    proxy_wire,
    repository_wire,
    session_wire,
    windowed_policy,
)

EPOCH = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
VERSIONS = tuple(DIALECTS)


def _refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.method} {request.url}")


@pytest.fixture(scope="module")
def navigator() -> Iterator[Any]:
    """A client's fetcher (the links' navigator); its transport refuses every request."""
    client = VBOClient(
        "https://vbo.test:4443",
        username="u",
        password="p",
        api_version="v8",
        transport=httpx.MockTransport(_refuse),
    )
    yield client._fetcher
    asyncio.run(client.aclose())


@pytest.fixture(scope="module")
def converters(navigator: Any) -> dict[str, tuple[cattrs.Converter, cattrs.Converter]]:
    """(fast, detailed) per version, kept for the whole module: the fast one's schedule-policy
    cache fills across examples, as it does across a long sweep."""
    return {
        version: (make_converter(navigator, dialect), make_converter(navigator, dialect, detailed=True))
        for version, dialect in DIALECTS.items()
    }


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    return Simulator(SimulatorConfig(seed=17, organizations=4, sessions_per_job=(0, 5), epoch=EPOCH))


# --- the wire pool ------------------------------------------------------------------------------------


def simulator_wires(simulator: Simulator, version: str) -> list[tuple[type[Any], Any]]:
    """Every kind of resource the version's simulator serves, as sent."""

    def rows(body: Any) -> list[Any]:
        return list(body["results"]) if isinstance(body, dict) else list(body)

    job_ids = simulator.job_ids()[:6]
    wires: list[tuple[type[Any], Any]] = []
    wires += [(Organization, w) for w in rows(simulator.organizations_wire(version=version, limit=10_000))]
    wires += [(Job, w) for w in rows(simulator.jobs_wire(version=version, limit=10_000))]
    wires += [(BackupRepository, w) for w in rows(simulator.repositories_wire(version=version, limit=10_000))]
    wires += [(Proxy, w) for w in rows(simulator.proxies_wire(version=version, limit=10_000))]
    for job_id in job_ids:
        if version in ("v1", "v6"):
            sessions = simulator.job_sessions_wire(job_id, version=version, limit=10_000)
        else:
            sessions = simulator.sessions_wire(version=version, job_id=job_id, limit=10_000)
        wires += [(JobSession, w) for w in rows(sessions)[:4]]
    if version == "v1":
        wires += [
            (SelectedMailbox, w) for job_id in job_ids for w in simulator.selected_mailboxes_wire(job_id)[:3]
        ]
    else:
        for job_id in job_ids:
            wires += [
                (SelectedItem, w) for w in rows(simulator.selected_items_wire(job_id, version=version))[:3]
            ]
        wires.append((ServiceInstance, simulator.service_instance_wire(version=version)))
    return wires


def reference_wires(version: str) -> list[tuple[type[Any], Any]]:
    """The reference note's examples, shaped for ``version`` (v6+; v1 reads them as v1 would)."""
    shaped = version if version in V6_PLUS else "v6"
    windowed = job_wire(shaped)
    windowed["schedulePolicy"] = windowed_policy(shaped)
    return [
        (Job, job_wire(shaped)),
        (Job, windowed),
        (JobSession, session_wire(shaped)),
        (Organization, organization_wire(shaped)),
        (BackupRepository, repository_wire(shaped)),
        (Proxy, proxy_wire(shaped)),
    ]


_POOLS: dict[str, list[tuple[type[Any], Any]]] = {}


def pool(simulator: Simulator, version: str) -> list[tuple[type[Any], Any]]:
    if version not in _POOLS:
        _POOLS[version] = simulator_wires(simulator, version) + reference_wires(version)
    return _POOLS[version]


SPELLINGS: tuple[str, ...] = tuple(
    sorted(
        {
            spelling
            for dialect in DIALECTS.values()
            for cls in (*MODELS, *LINKS)
            for spellings in dialect.wire_names(cls).values()
            for spelling in spellings
        }
        | {"repository", "backupRepository", "proxy", "jobsessions", "job", "backupWindowSettings"}
    )
)
"""Every wire name any version uses: a key respelled as another version spells it."""

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
tricky = st.sampled_from(
    [
        "true", "True", " false ", "1", "0", "", "12", " 7 ", "1.5", "1e3", "١٢", "0x10",
        0, 1, 2, -1, 1.0, 0.0, 2.5, 1e300, 2**63 - 1, True, False, None,
        "2026-06-30T22:00:04.5123371Z", "2026-06-30T22:00:04.512337z", "2026-06-30T22:00:04",
        "2026-06-30T22:00:04+05:30", "2026-06-30", "2026-13-01T00:00:00Z", "22:00:00", "12:30",
        "24:00:00", "Success", "NotAStatus", "Hours4", "Online", "EntireOrganization",
        {"href": "/v8/Jobs/x"}, {"href": "https://elsewhere.example/v1/Jobs/x"}, {"href": None},
        {"href": 5}, {}, [], [True, False], [1, 0], ["true"], {"backupWindow": [True] * 168},
        {"backupWindow": [1] * 168, "minuteOffset": 60}, [True] * 168, [1.0] * 168,
    ]
)  # fmt: skip
replacements = tricky | json_values


def _positions(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from _positions(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            yield (*path, index)
            yield from _positions(item, (*path, index))


@st.composite
def mutated(draw: st.DrawFn, wire: Any) -> Any:
    """``wire`` with one to three values replaced, keys dropped, added or respelled."""
    data = copy.deepcopy(wire)
    for _ in range(draw(st.integers(1, 3))):
        positions = list(_positions(data))
        if not positions:
            break
        path = draw(st.sampled_from(positions))
        holder = data
        for step in path[:-1]:
            holder = holder[step]
        operation = draw(st.sampled_from(["replace", "replace", "drop", "add", "respell"]))
        if operation == "drop" and isinstance(holder, dict):
            del holder[path[-1]]
        elif operation == "add" and isinstance(holder, dict):
            holder[draw(st.sampled_from(SPELLINGS) | st.text(max_size=6))] = copy.deepcopy(draw(replacements))
        elif operation == "respell" and isinstance(holder, dict):
            holder[draw(st.sampled_from(SPELLINGS))] = holder.pop(path[-1])
        else:
            holder[path[-1]] = copy.deepcopy(draw(replacements))
    return data


# --- comparing the two passes -------------------------------------------------------------------------


def _outcome(structure: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        return True, structure()
    except Exception as exc:  # either pass may refuse in its own way; only agreement matters
        return False, exc


def assert_same_links(fast: Any, detailed: Any, path: str = "$") -> None:
    """Beyond ``==``: every link on both sides has the same class, href, relation and target."""
    if isinstance(fast, Link) or isinstance(detailed, Link):
        assert type(fast) is type(detailed), path
        assert (fast.href, fast.relation, fast.target) == (
            detailed.href,
            detailed.relation,
            detailed.target,
        ), path
        if isinstance(fast, ThroughLink):
            assert isinstance(detailed, ThroughLink)
            assert fast.then == detailed.then, path
            assert_same_links(fast.via, detailed.via, f"{path}.via")
        return
    if attrs.has(type(fast)):
        assert type(fast) is type(detailed), path
        for field in attrs.fields(type(fast)):
            assert_same_links(
                getattr(fast, field.name), getattr(detailed, field.name), f"{path}.{field.name}"
            )
    elif isinstance(fast, tuple) and fast and attrs.has(type(fast[0])):
        assert len(fast) == len(detailed), path
        for index, (one, other) in enumerate(zip(fast, detailed, strict=True)):
            assert_same_links(one, other, f"{path}[{index}]")


def assert_agree(converters: tuple[cattrs.Converter, cattrs.Converter], wire: Any, cls: type[Any]) -> Any:
    fast_converter, detailed_converter = converters
    fast_ok, fast = _outcome(lambda: fast_converter.get_structure_hook(cls)(copy.deepcopy(wire), cls))
    detailed_ok, detailed = _outcome(lambda: detailed_converter.structure(copy.deepcopy(wire), cls))
    assert fast_ok == detailed_ok, f"fast {'accepted' if fast_ok else f'refused ({fast!r})'}, detailed " + (
        "accepted" if detailed_ok else f"refused ({detailed!r})"
    )
    if fast_ok:
        assert type(fast) is type(detailed) is cls
        assert fast == detailed
        assert_same_links(fast, detailed)
    return fast if fast_ok else None


@pytest.mark.parametrize("version", VERSIONS)
def test_the_passes_agree_on_every_answer_as_sent(
    converters: dict[str, tuple[cattrs.Converter, cattrs.Converter]], simulator: Simulator, version: str
) -> None:
    decoded = [assert_agree(converters[version], wire, cls) for cls, wire in pool(simulator, version)]
    assert all(model is not None for model in decoded)


@pytest.mark.parametrize("version", VERSIONS)
@PROPERTY
@given(data=st.data())
def test_the_passes_agree_on_mutated_answers(
    converters: dict[str, tuple[cattrs.Converter, cattrs.Converter]],
    simulator: Simulator,
    version: str,
    data: st.DataObject,
) -> None:
    cls, original = data.draw(st.sampled_from(pool(simulator, version)), label="resource")
    wire = data.draw(mutated(original), label="wire")
    assert_agree(converters[version], wire, cls)


@pytest.mark.parametrize("version", VERSIONS)
@PROPERTY
@given(cls=st.sampled_from(RESOURCES), wire=json_values | tricky)
def test_the_passes_agree_on_arbitrary_json(
    converters: dict[str, tuple[cattrs.Converter, cattrs.Converter]], version: str, cls: type[Any], wire: Any
) -> None:
    assert_agree(converters[version], wire, cls)
    if isinstance(wire, dict):
        assert_agree(converters[version], {"id": "x", **wire}, cls)


# --- no fallbacks on what servers send ----------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_no_fallbacks_for_any_simulator_answer(version: str) -> None:
    simulator = Simulator(
        SimulatorConfig(seed=19, organizations=3, sessions_per_job=(1, 40), page_size=7, epoch=EPOCH)
    )
    transport = httpx.ASGITransport(app=create_app(simulator=simulator))
    async with VBOClient(
        "https://vbo.test:4443", username="admin", password="admin", api_version=version, transport=transport
    ) as vbo:
        decoder = vbo._fetcher.decoder
        jobs = []
        for org in await vbo.organizations():
            jobs += await vbo.organization_jobs(org)
        assert jobs
        sessions = [s for job in jobs for s in await vbo.job_sessions(job, limit=None)]
        assert len(sessions) > 20
        await vbo.backup_repositories()
        await vbo.proxies()
        for job in jobs[:4]:
            await job.links.repository
            if job.links.selected_items is not None:
                await job.links.selected_items
            if job.links.selected_mailboxes is not None:
                await job.links.selected_mailboxes
        if version != "v1":
            await vbo.service_instance()
        assert decoder.fallbacks == 0


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "stamp",
    [
        "2026-06-30T22:00:04.5123371Z",
        "2026-06-30T22:00:04.5123371z",
        "2026-06-30T22:00:04.512337z",
        "2026-06-30t22:00:04.5123371z",
        "2026-06-30T22:00:04.5123371",
        "2026-06-30T22:00:04.5123371+00:00",
    ],
)
def test_unusual_timestamps_never_fall_back(navigator: Any, version: str, stamp: str) -> None:
    decoder = navigator.decoder
    before = decoder.fallbacks
    dialect: Dialect = DIALECTS[version]
    wire = {"id": "j", "lastRun": stamp, "nextRun": stamp}
    (job,) = decoder.many([wire], Job, dialect)
    assert decoder.one(dict(wire), Job, dialect) == job
    expected = dt.datetime(2026, 6, 30, 22, 0, 4, 512337, tzinfo=dt.UTC)
    assert job.last_run == job.next_run == expected
    assert decoder.fallbacks == before


# --- the fast path's own rules ------------------------------------------------------------------------


def test_every_model_qualifies_for_the_fast_path() -> None:
    assert fast_path_rules_hold() == {}


@pytest.mark.parametrize("version", VERSIONS)
def test_generated_source_shows_in_tracebacks(
    converters: dict[str, tuple[cattrs.Converter, cattrs.Converter]], version: str
) -> None:
    fast, _ = converters[version]
    hook = fast.get_structure_hook(Job)
    with pytest.raises(WireValueError, match="timestamp") as caught:
        hook({"id": "j", "lastRun": 5}, Job)  # the timestamp hook refuses a number
    frames = [
        frame
        for frame in traceback.extract_tb(caught.value.__traceback__)
        if frame.filename.startswith("<vbo_async")
    ]
    assert frames, "no frame of generated code in the traceback"
    frame = frames[0]
    assert frame.filename.startswith(f"<vbo_async fast structure Job {version} ")
    assert frame.line  # the source line, read from linecache
    assert frame.line == linecache.getline(frame.filename, frame.lineno or 0).strip()
    assert "__h" in frame.line  # the call of the field's hook
    text = "".join(traceback.format_exception(caught.value))
    assert frame.line in text


# --- the schedule-policy cache ------------------------------------------------------------------------


BOOLS = st.sampled_from([True, False, 1, 0, "true", "false", "True", None])
INTS = st.sampled_from([0, 1, 2, 3, 10, -60, 120, True, "1", 1.0, None])


@st.composite
def windows(draw: st.DrawFn) -> list[Any]:
    base = draw(st.sampled_from([[True] * 168, [False] * 168, [h % 24 < 12 for h in range(168)]]))
    return list(base)


@st.composite
def policies(draw: st.DrawFn, version: str) -> dict[str, Any]:
    """A schedule policy in ``version``'s spelling, values of the usual and unusual kinds."""
    window_key, array_key = (
        ("backupWindow", "backupIntervalsArray")
        if version == "v1"
        else (
            "backupWindowSettings",
            "backupWindow",
        )
    )
    policy: dict[str, Any] = {
        "type": draw(st.sampled_from(["Daily", "Periodically", None])),
        "periodicallyEvery": draw(st.sampled_from(["Hours4", "Minutes5", "Hours12", None])),
        "dailyType": draw(st.sampled_from(["Everyday", "Workdays", None])),
        "dailyTime": draw(st.sampled_from(["22:00:00", "22:00", "06:30:00", None])),
        "scheduleEnabled": draw(BOOLS),
        "backupWindowEnabled": draw(BOOLS),
        window_key: {array_key: draw(windows()), "minuteOffset": draw(INTS)},
        "retryEnabled": draw(BOOLS),
        "retryNumber": draw(INTS),
        "retryWaitInterval": draw(INTS),
    }
    if version != "v1":
        policy["periodicallyWindowEnabled"] = draw(BOOLS)
        policy["periodicallyWindowSettings"] = {array_key: draw(windows()), "minuteOffset": draw(INTS)}
        policy["periodicallyOffsetMinutes"] = draw(INTS)
    return policy


@st.composite
def one_change(draw: st.DrawFn, policy: dict[str, Any], version: str) -> dict[str, Any]:
    """``policy`` with exactly one thing changed: a scalar, a window's scalar, one flag of a
    window (to the other value or to another type of the same value), or a key respelled."""
    changed = copy.deepcopy(policy)
    window_keys = [key for key, value in changed.items() if isinstance(value, dict)]
    kind = draw(st.sampled_from(["scalar", "window scalar", "flag", "respell"]))
    if kind == "scalar":
        key = draw(st.sampled_from([k for k in changed if k not in window_keys]))
        changed[key] = draw(
            (BOOLS | INTS | st.sampled_from(["Daily", "Workdays", "22:00:01"])).filter(
                lambda value: value != changed[key] or type(value) is not type(changed[key])
            )
        )
    elif kind == "window scalar":
        window = changed[draw(st.sampled_from(window_keys))]
        window["minuteOffset"] = draw(
            INTS.filter(
                lambda value: (
                    value != window["minuteOffset"] or type(value) is not type(window["minuteOffset"])
                )
            )
        )
    elif kind == "flag":
        window = changed[draw(st.sampled_from(window_keys))]
        array = next(value for value in window.values() if isinstance(value, list))
        index = draw(st.integers(0, 167))
        array[index] = draw(st.sampled_from([not array[index], 1 if array[index] else 0, "true", 1.0]))
    else:
        key = draw(st.sampled_from(sorted(changed)))
        changed[
            draw(st.sampled_from(["backupWindow", "backupWindowSettings", "retrynumber", "RetryNumber"]))
        ] = changed.pop(key)
    return changed


@pytest.mark.parametrize("version", VERSIONS)
@PROPERTY
@given(data=st.data())
def test_the_policy_cache_never_answers_for_another_policy(
    converters: dict[str, tuple[cattrs.Converter, cattrs.Converter]], version: str, data: st.DataObject
) -> None:
    first = data.draw(policies(version), label="policy")
    second = data.draw(one_change(first, version), label="changed")
    pair = converters[version]
    job = {"id": "j"}
    # Each order through the same (cached) fast converter, each result checked against the
    # detailed pass, which has no cache.
    for a, b in ((first, second), (second, first), (first, first)):
        left = assert_agree(pair, {**job, "schedulePolicy": a}, Job)
        right = assert_agree(pair, {**job, "schedulePolicy": b}, Job)
        if left is None or right is None:
            continue
        expected_equal = pair[1].structure({**job, "schedulePolicy": a}, Job) == pair[1].structure(
            {**job, "schedulePolicy": b}, Job
        )
        assert (left.schedule_policy == right.schedule_policy) is expected_equal
        if not expected_equal:
            assert left.schedule_policy is not right.schedule_policy


def test_the_policy_cache_shares_equal_policies(
    converters: dict[str, tuple[cattrs.Converter, cattrs.Converter]],
) -> None:
    fast, detailed = converters["v8"]
    policy = windowed_policy("v8")
    one = fast.structure({"id": "a", "schedulePolicy": copy.deepcopy(policy)}, Job)
    two = fast.structure({"id": "b", "schedulePolicy": copy.deepcopy(policy)}, Job)
    assert one.schedule_policy is two.schedule_policy  # shared: the cache is in use
    policy["backupWindowSettings"]["backupWindow"][100] = not policy["backupWindowSettings"]["backupWindow"][
        100
    ]
    three = fast.structure({"id": "c", "schedulePolicy": policy}, Job)
    assert three.schedule_policy != one.schedule_policy
    assert (
        three.schedule_policy
        == detailed.structure({"id": "c", "schedulePolicy": policy}, Job).schedule_policy
    )
    assert isinstance(three.schedule_policy, SchedulePolicy)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_detailed_pass_decodes_what_the_fast_pass_refused(
    navigator: Any, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    # The decoder's safety net: a value the fast pass refuses is decoded by the detailed pass
    # (and counted). Jobs and sessions have derived values, filled by the detailed pass too.
    decoder = navigator.decoder
    dialect = DIALECTS[version]
    wire = job_wire("v8" if version == "v1" else version)
    session = session_wire("v8" if version == "v1" else version)
    expected_job = decoder.one(copy.deepcopy(wire), Job, dialect)
    expected_session = decoder.one(copy.deepcopy(session), JobSession, dialect)

    def refusing(cls: type[Any], dialect: Dialect) -> Callable[[Any, Any], Any]:
        def structure(value: Any, type_: Any) -> Any:
            raise ValueError("the fast pass refuses everything here")

        return structure

    before = decoder.fallbacks
    monkeypatch.setattr(decoder, "_hook", refusing)
    assert decoder.one(copy.deepcopy(wire), Job, dialect) == expected_job
    assert decoder.many([copy.deepcopy(session)], JobSession, dialect) == [expected_session]
    assert decoder.fallbacks == before + 2
    assert expected_job.links.jobsessions is not None or version == "v1"


@pytest.mark.parametrize("version", VERSIONS)
def test_each_fallback_is_logged_at_debug_level_naming_the_model(
    navigator: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, version: str
) -> None:
    # Issue 10: fallbacks are counted *and* logged at debug level, so a fast pass that refuses
    # what servers send (at twice the cost) shows in a log, not only in a counter.
    decoder = navigator.decoder
    dialect = DIALECTS[version]
    wire = job_wire("v8" if version == "v1" else version)

    def refusing(cls: type[Any], dialect: Dialect) -> Callable[[Any, Any], Any]:
        def structure(value: Any, type_: Any) -> Any:
            raise ValueError("refused-by-the-fast-pass")

        return structure

    monkeypatch.setattr(decoder, "_hook", refusing)
    with caplog.at_level("DEBUG", logger="vbo_async"):
        decoder.one(copy.deepcopy(wire), Job, dialect)
        decoder.one(copy.deepcopy(wire), Job, dialect)
    logged = [r for r in caplog.records if "fast decoding pass refused" in r.getMessage()]
    assert len(logged) == 2
    assert all(r.levelname == "DEBUG" and r.name == "vbo_async" for r in logged)
    assert all("Job" in r.getMessage() and "refused-by-the-fast-pass" in r.getMessage() for r in logged)
