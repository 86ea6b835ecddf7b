"""The fast decoding pass against its slow references: every shortcut it takes must agree with them.

The fast pass (`FastHooks`: generated functions bound per client from plans made once per
process) takes shortcuts the detailed pass does not: a generated finisher, links made by slot
stores, windows recognised by list comparison and orjson text, schedule policies shared through
a cache. Each test here compares one shortcut with the plain way of doing the same thing, on
simulator data of every API version and on mutated input.
"""

from __future__ import annotations

import copy
import gc
import tracemalloc
import typing
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vbo_async import (
    BackupRepository,
    BackupWindow,
    CollectionLink,
    HourFlags,
    Job,
    JobLinks,
    JobSession,
    Link,
    Organization,
    Proxy,
    SchedulePolicy,
    SelectedItem,
    SelectedMailbox,
    ThroughLink,
)
from vbo_async._convert import (
    LINKS,
    MODELS,
    FastHooks,
    WireValueError,
    _flags,
    _plans_for,
    _reference_finisher,
    _Windows,
    fast_path_rules_hold,
    make_converter,
)
from vbo_async._dialects import DIALECTS, V1, Route
from vbo_async._fastpath import CACHED_HREFS, fills_like_link, new_link
from vbo_async.simulator import Simulator, SimulatorConfig

from .test_properties import PROPERTY, json_values, mutated


class Navigator:
    """A stand-in navigator: links only need to carry it (nothing is followed here)."""

    def shown(self, href: str) -> str:
        return href


NAVIGATOR: Any = Navigator()


def _items(body: Any) -> list[Any]:
    return body if isinstance(body, list) else body["results"]


def simulator_wires(version: str, seed: int = 5) -> list[tuple[type[Any], dict[str, Any]]]:
    """Every kind of resource the simulator serves on ``version``, as wire dicts."""
    simulator = Simulator(SimulatorConfig(seed=seed, organizations=3, sessions_per_job=(1, 3)))
    job_ids = simulator.job_ids()[:4]
    wires: list[tuple[type[Any], dict[str, Any]]] = []
    wires += [(Organization, w) for w in _items(simulator.organizations_wire(version=version))]
    wires += [(Job, w) for w in _items(simulator.jobs_wire(version=version))]
    wires += [(BackupRepository, w) for w in _items(simulator.repositories_wire(version=version))]
    wires += [(Proxy, w) for w in _items(simulator.proxies_wire(version=version))]
    for job_id in job_ids:
        if version in ("v1", "v6"):
            sessions = simulator.job_sessions_wire(job_id, version=version)
        else:  # /Jobs/{id}/JobSessions is gone: /JobSessions?jobId=
            sessions = simulator.sessions_wire(version=version, job_id=job_id)
        wires += [(JobSession, w) for w in _items(sessions)]
        if version == "v1":
            wires += [(SelectedMailbox, w) for w in simulator.selected_mailboxes_wire(job_id)]
        else:
            items = simulator.selected_items_wire(job_id, version=version)
            wires += [(SelectedItem, w) for w in _items(items)]
    return wires


def assert_same(fast: Any, slow: Any, path: str = "$") -> None:
    """``fast`` and ``slow`` are the same value, down to the classes of every object and the
    href, relation, navigator and target of every link (attrs equality would let a `Link` equal a
    `CollectionLink`)."""
    assert type(fast) is type(slow), f"{path}: {type(fast).__name__} != {type(slow).__name__}"
    if isinstance(fast, Link):
        assert (fast.href, fast.relation, fast.target) == (slow.href, slow.relation, slow.target), path
        assert fast._navigator is slow._navigator, path
        if isinstance(fast, ThroughLink):
            assert fast.then == slow.then, path
            assert_same(fast.via, slow.via, f"{path}.via")
    elif attrs.has(type(fast)):
        for field in attrs.fields(type(fast)):
            assert_same(getattr(fast, field.name), getattr(slow, field.name), f"{path}.{field.name}")
    elif isinstance(fast, tuple):
        assert len(fast) == len(slow), path
        for index, (a, b) in enumerate(zip(fast, slow, strict=True)):
            assert_same(a, b, f"{path}[{index}]")
    else:
        assert fast == slow, f"{path}: {fast!r} != {slow!r}"


def decode_both(version: str, cls: type[Any], wire: Any) -> tuple[Any, Any]:
    """(fast, detailed) results for ``wire``, or the exception class each raised."""
    dialect = DIALECTS[version]
    fast_hooks = FastHooks(NAVIGATOR, dialect)
    detailed = make_converter(NAVIGATOR, dialect, detailed=True)
    try:
        fast: Any = fast_hooks.get(cls)(copy.deepcopy(wire), cls)
    except Exception:
        fast = Exception
    try:
        slow: Any = detailed.structure(copy.deepcopy(wire), cls)
    except Exception:
        slow = Exception
    return fast, slow


# --- the rules the fast path relies on ----------------------------------------------------------------


def test_every_model_qualifies_for_the_fast_path() -> None:
    assert fast_path_rules_hold() == {}


def test_links_of_the_models_are_made_by_slot_stores() -> None:
    used = {
        typing.get_origin(member)
        for links_cls in LINKS
        for field in attrs.fields(links_cls)
        for member in typing.get_args(field.type)
        if typing.get_origin(member) is not None
    }
    assert used == {Link, CollectionLink}
    assert all(fills_like_link(cls) for cls in used)
    assert not fills_like_link(ThroughLink)  # its own __init__ and slots: called, never filled


def test_a_link_class_with_its_own_init_is_called() -> None:
    class Counted(Link[Any]):
        __slots__ = ()

        def __init__(self, href: str, relation: str, navigator: Any, target: Any) -> None:
            super().__init__(href.upper(), relation, navigator, target)

    assert not fills_like_link(Counted)
    (line,) = new_link("l", "__L", Counted, "h", "self", "__nav", "__T")
    namespace: dict[str, Any] = {"__L": Counted, "__nav": NAVIGATOR, "__T": None, "h": "/x"}
    exec(line, namespace)
    assert namespace["l"].href == "/X"


@pytest.mark.parametrize("link_class", [Link, CollectionLink])
def test_a_link_filled_by_slot_stores_equals_one_made_by_its_class(link_class: type[Any]) -> None:
    lines = new_link("l", "__L", link_class, "h", "jobs", "__nav", "__T")
    namespace: dict[str, Any] = {"__L": link_class, "__new": object.__new__, "__nav": NAVIGATOR, "__T": Job}
    namespace["h"] = "/v8/Jobs?organizationId=o"
    exec("\n".join(lines), namespace)
    assert_same(namespace["l"], link_class("/v8/Jobs?organizationId=o", "jobs", NAVIGATOR, Job))


# --- fast and detailed passes agree on every version ---------------------------------------------------


@pytest.mark.parametrize("version", list(DIALECTS))
def test_fast_and_detailed_passes_build_the_same_objects(version: str) -> None:
    """Simulator data of every kind and version: the generated finisher (derived ids and links),
    slot-filled links, inline timestamps and times, shared policies and windows give what the
    detailed pass, with cattrs' functions and the plainly written finisher, gives."""
    dialect = DIALECTS[version]
    fast_hooks = FastHooks(NAVIGATOR, dialect)
    detailed = make_converter(NAVIGATOR, dialect, detailed=True)
    for cls, wire in simulator_wires(version):
        fast = fast_hooks.get(cls)(copy.deepcopy(wire), cls)
        assert_same(fast, detailed.structure(copy.deepcopy(wire), cls))
        # again, now that the caches (links, policies, windows) hold it
        assert_same(fast_hooks.get(cls)(copy.deepcopy(wire), cls), fast)


@st.composite
def mutated_jobs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    version = draw(st.sampled_from(list(DIALECTS)), label="version")
    jobs = _JOBS[version]
    wire = draw(mutated(draw(st.sampled_from(jobs), label="job")), label="wire")
    return version, wire


_JOBS = {v: [w for cls, w in simulator_wires(v, seed=9) if cls is Job][:6] for v in DIALECTS}


@PROPERTY
@given(case=mutated_jobs())
@example(case=("v8", {**_JOBS["v8"][0], "id": "a b/c?d"}))  # a jobsessions href that needs quoting
@example(case=("v7", {**_JOBS["v7"][0], "id": ""}))  # no jobsessions link built from an empty id
@example(case=("v7", {**_JOBS["v7"][0], "_links": {"backupRepository": None}}))  # no proxy to go through
@example(case=("v6", {**_JOBS["v6"][0], "_links": {}}))
def test_mutated_jobs_decode_alike_in_both_passes(case: tuple[str, dict[str, Any]]) -> None:
    version, wire = case
    fast, slow = decode_both(version, Job, wire)
    if fast is Exception or slow is Exception:
        assert fast is slow is Exception
    else:
        assert_same(fast, slow)


@pytest.mark.parametrize("version", ["v7", "v8"])
@pytest.mark.parametrize("job_id", ["plain-Id_1.2~3", "a b", "ü/ö", "%41", "x?y&z=1", "-"])
def test_the_generated_finisher_renders_every_id_as_the_route_does(version: str, job_id: str) -> None:
    dialect = DIALECTS[version]
    wire = {"id": job_id, "_links": {"backupRepository": {"href": f"/{version}/BackupRepositories/r"}}}
    fast = FastHooks(NAVIGATOR, dialect).get(Job)(wire, Job)
    route = Route("JobSessions", query=(("jobId", "{id}"),))
    assert fast.links.jobsessions.href == f"/{version}/{route.render(id=job_id)}"
    slow = make_converter(NAVIGATOR, dialect, detailed=True).structure(wire, Job)
    assert_same(fast, slow)


def test_the_reference_finisher_is_what_the_detailed_pass_runs() -> None:
    assert _reference_finisher(SchedulePolicy, V1, NAVIGATOR) is None  # nothing derived
    assert _reference_finisher(Job, DIALECTS["v8"], NAVIGATOR) is not None


def test_the_proxy_link_is_shared_per_repository_link() -> None:
    dialect = DIALECTS["v8"]
    hook = FastHooks(NAVIGATOR, dialect).get(Job)
    repository = {"href": "/v8/BackupRepositories/r1"}
    a = hook({"id": "a", "_links": {"backupRepository": repository}}, Job)
    b = hook({"id": "b", "_links": {"backupRepository": dict(repository)}}, Job)
    assert a.links.repository is b.links.repository
    assert a.links.proxy is b.links.proxy
    assert a.links.proxy.via is a.links.repository
    assert a.links.jobsessions.href != b.links.jobsessions.href


def test_clients_share_code_but_never_links() -> None:
    dialect = DIALECTS["v8"]
    first, second = Navigator(), Navigator()
    hook_a = FastHooks(first, dialect).get(Job)
    hook_b = FastHooks(second, dialect).get(Job)
    assert hook_a is not hook_b
    assert hook_a.__code__ is hook_b.__code__
    wire = {"id": "j", "_links": {"organization": {"href": "/v8/Organizations/o"}}}
    a, b = hook_a(wire, Job), hook_b(wire, Job)
    assert a.links.organization._navigator is first
    assert b.links.organization._navigator is second
    assert a == b


@pytest.mark.parametrize("version", sorted(DIALECTS))
def test_hooks_known_per_plan_are_the_hooks_a_binding_asks_for(version: str) -> None:
    """Binding with `_Plans.known` (stateless hooks passed as they are) gives every plan the same
    hooks, in the same cells, as asking the client's hooks for each one."""
    dialect = DIALECTS[version]
    hooks = FastHooks(Navigator(), dialect)
    plans = _plans_for(dialect)
    made = [plans.structure(cls) for cls in MODELS] + [plans.policies()]
    checked = 0
    for plan_ in made:
        if plan_ is None or not plan_.hooks:
            continue
        known = plans.known(plan_)
        assert [tp for _, tp in known] == [tp for _, tp in plan_.hooks]
        assert any(hook is not None for hook, _ in known)
        values = {name: object() for name in plan_.params}
        fast = plan_.bind(hooks.get, known=known, **values)
        slow = plan_.bind(hooks.get, **values)
        assert fast.__code__ is slow.__code__
        fast_cells = [cell.cell_contents for cell in fast.__closure__ or ()]
        slow_cells = [cell.cell_contents for cell in slow.__closure__ or ()]
        assert len(fast_cells) == len(slow_cells)
        for a, b in zip(fast_cells, slow_cells, strict=True):
            assert a is b or (type(a) is dict and a == b == {})
        checked += 1
    assert checked >= 3


# --- windows -------------------------------------------------------------------------------------------

flag_values = st.sampled_from(
    # JSON values, and what marshal writes in one byte (None, Ellipsis) or in a few (bytes, a long)
    [True, False, 1, 0, 1.0, 0.0, -0.0, 2, "true", "False", " TRUE ", "1", "x", None, ..., b"T", 2**70]
)
windows = (
    st.lists(st.booleans(), max_size=200)
    | st.lists(flag_values, max_size=30)
    | st.lists(json_values, max_size=5)
    | st.builds(lambda flag, n: [flag] * n, flag_values, st.integers(0, 200))
    | st.builds(
        lambda head, n, tail: [head] * n + tail,
        st.booleans(),
        st.integers(0, 170),
        st.lists(flag_values, max_size=3),
    )
)


def _outcome(fn: Any, value: Any) -> Any:
    try:
        return fn(value)
    except WireValueError as exc:
        return ("refused", exc.suffix)


@PROPERTY
@given(value=windows)
@example(value=[True, [False]])
@example(value=[True, "[]"])
@example(value=[[]])
@example(value=[])
@example(value=[True] * 168)
@example(value=[1] * 168)
@example(value=[False] * 167 + [0.0])
def test_windows_read_as_flag_by_flag(value: list[Any]) -> None:
    """`_Windows` (uniform windows by list comparison, others by what marshal writes) gives what
    reading every flag with the boolean hook gives, whatever was read before."""
    expected = _outcome(_flags, value)
    reader = _Windows()
    assert _outcome(reader.structure, value) == expected
    for other in ([True] * len(value), [False] * len(value), [True, False] * 84):
        reader.structure(other)
    got = _outcome(reader.structure, value)
    assert got == expected
    if isinstance(got, HourFlags):
        assert all(type(flag) is bool for flag in got)
        assert got == tuple(_flags(value))


@pytest.mark.parametrize(
    "entry",
    [1, 0.0, [False], "true", None, {"a": True}, 2**70, ..., StopIteration, b"T", bytearray(b"F"), (True,)],
)
def test_only_true_and_false_are_read_from_marshal_bytes(entry: Any) -> None:
    """The bytes `key` takes from marshal are the flags' only when every entry is True or False:
    anything else is longer than one byte, or a byte `flags_of` refuses (then `_flags` reads)."""
    reader = _Windows()
    value = [True, False, entry]  # not uniform: marshal writes it
    data = reader.key(value)
    assert data is None or data.translate(None, b"TF")
    assert _outcome(reader.structure, value) == _outcome(_flags, value)


def test_marshal_writes_flags_as_their_bytes() -> None:
    reader = _Windows()
    assert reader.key([True, False, True]) == b"TFT"
    flags = reader.structure([True, False, True])
    assert isinstance(flags, HourFlags)
    assert flags == (True, False, True)
    assert reader.structure([]) == ()
    assert reader.structure(None) == ()


def test_a_window_larger_than_the_uniform_table_still_reads_flag_by_flag() -> None:
    reader = _Windows()
    big = [True] * 5000
    assert reader.structure(big) == (True,) * 5000
    assert reader.structure([*big, 1]) == (True,) * 5001
    assert _outcome(reader.structure, [*big, "x"]) == ("refused", "[5000]")


# --- shared schedule policies --------------------------------------------------------------------------

_POLICIES = {
    version: [w["schedulePolicy"] for w in _JOBS[version] if isinstance(w.get("schedulePolicy"), dict)]
    for version in DIALECTS
}


@st.composite
def policy_sequences(draw: st.DrawFn) -> tuple[str, list[Any]]:
    version = draw(st.sampled_from(list(DIALECTS)))
    pool = _POLICIES[version]
    sequence = draw(
        st.lists(st.sampled_from(pool) | mutated(draw(st.sampled_from(pool)), max_mutations=2), max_size=8)
    )
    return version, sequence


@PROPERTY
@given(case=policy_sequences())
def test_shared_policies_are_the_policies_the_wire_says(case: tuple[str, list[Any]]) -> None:
    """Whatever came before, a policy from the cache equals one structured afresh, and a wire
    list changed after it was decoded does not change what the cache answers."""
    version, sequence = case
    dialect = DIALECTS[version]
    shared = FastHooks(NAVIGATOR, dialect).get(SchedulePolicy)
    detailed = make_converter(NAVIGATOR, dialect, detailed=True)
    for wire in sequence:
        fresh = copy.deepcopy(wire)
        try:
            expected: Any = detailed.structure(copy.deepcopy(wire), SchedulePolicy)
        except Exception:
            expected = Exception
        for _ in range(2):
            try:
                got: Any = shared(fresh, SchedulePolicy)
            except Exception:
                got = Exception
            if expected is Exception:
                assert got is Exception
            else:
                assert_same(got, expected)
        _scribble(fresh)  # the caller's lists change after decoding: the cache kept copies


def _scribble(wire: Any) -> None:
    for array in _arrays(wire):
        if array and isinstance(array[0], bool):
            array[0] = not array[0]


def _arrays(value: Any) -> Iterator[list[Any]]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _arrays(item)
    elif isinstance(value, list):
        yield value


def test_an_absent_and_a_null_window_object_are_different_policies() -> None:
    """With two spellings of a window, a ``null`` first spelling hides the second, an absent
    one does not: the two wire policies must not share a cache entry."""
    dialect = V1.evolve(
        version="v1", names={SchedulePolicy: {"backup_window": ("backupWindow", "legacyWindow")}}
    )
    shared = FastHooks(NAVIGATOR, dialect).get(SchedulePolicy)
    window = {"backupIntervalsArray": [True, False] * 84, "minuteOffset": 60}
    hidden = shared({"type": "Daily", "backupWindow": None, "legacyWindow": window}, SchedulePolicy)
    read = shared({"type": "Daily", "legacyWindow": window}, SchedulePolicy)
    assert hidden.backup_window is None
    assert read.backup_window is not None
    assert read.backup_window.minute_offset == 60


def test_a_null_first_spelling_and_an_absent_one_are_different_policies() -> None:
    """A null first spelling hides the second, an absent one does not: keyed on each spelling's
    value (None for both null and absent), the two once shared a cache entry."""
    dialect = V1.evolve(version="v1", names={SchedulePolicy: {"retry_number": ("retryNumber", "retries")}})
    shared = FastHooks(NAVIGATOR, dialect).get(SchedulePolicy)
    detailed = make_converter(NAVIGATOR, dialect, detailed=True)
    wires = [{"type": "Daily", "retryNumber": None, "retries": 5}, {"type": "Daily", "retries": 5}]
    for order in (wires, wires[::-1]):
        for wire in order:
            assert shared(dict(wire), SchedulePolicy) == detailed.structure(dict(wire), SchedulePolicy)
    assert shared(dict(wires[0]), SchedulePolicy).retry_number is None
    assert shared(dict(wires[1]), SchedulePolicy).retry_number == 5


@pytest.mark.parametrize("version", list(DIALECTS))
def test_pages_the_decoder_parsed_itself_decode_as_the_detailed_pass_does(version: str) -> None:
    """`Decoder.page` twice over the same body (every window different, so every policy is
    cached the first time and found the second) gives the jobs the detailed pass builds."""
    import orjson

    from vbo_async._decode import Decoder

    dialect = DIALECTS[version]
    jobs = [w for cls, w in simulator_wires(version) if cls is Job]
    for number, wire in enumerate(jobs):  # every window different
        window = [hour % (number + 2) == 0 for hour in range(168)]
        policy = wire.get("schedulePolicy") or {}
        for key in ("backupWindow", "backupWindowSettings"):
            if isinstance(policy.get(key), dict):
                array = "backupIntervalsArray" if key == "backupWindow" else "backupWindow"
                policy[key][array] = window
    body = orjson.dumps(jobs if version in ("v1", "v6", "v7") else {"results": jobs})
    decoder = Decoder(NAVIGATOR)
    detailed = make_converter(NAVIGATOR, dialect, detailed=True)
    for _ in range(2):
        decoded, _next = decoder.page(body, Job, dialect)
        assert len(decoded) == len(jobs)
        for job, wire in zip(decoded, jobs, strict=True):
            assert_same(job, detailed.structure(copy.deepcopy(wire), Job))


@pytest.mark.parametrize("version", sorted(DIALECTS))
def test_links_of_one_session_each_are_not_kept_by_a_client_s_caches(version: str) -> None:
    """An exporter reads the recent sessions of every job each sweep for months, and each new
    session brings a ``log`` link of its own (a job its ``copyJob`` link): the caches of a
    client share links to resources many objects name, and must not grow with every session
    the server ever ran (65,536 sessions kept about 13 MB per client, never given back)."""
    dialect = DIALECTS[version]
    hooks = FastHooks(NAVIGATOR, dialect)
    session_hook, job_hook = hooks.get(JobSession), hooks.get(Job)

    def session(n: int) -> dict[str, Any]:
        href = f"/{version}/JobSessions/00000000-0000-0000-0000-{n:012d}"
        links = {"self": {"href": href}, "log": {"href": f"{href}/LogItems"}}
        return {"id": f"s{n}", "_links": {**links, "job": {"href": f"/{version}/Jobs/j"}}}

    def job(n: int) -> dict[str, Any]:
        copy = {"href": f"/{version}/Jobs/00000000-0000-0000-0000-{n:012d}"}
        return {"id": f"j{n}", "_links": {"copyJob": copy}}

    session_hook(session(-1), JobSession)  # the plans and hooks are made before measuring
    job_hook(job(-1), Job)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(3000):
            decoded = session_hook(session(n), JobSession)
            assert decoded.links.log is not None
            assert decoded.links.log.href.endswith(f"{n:012d}/LogItems")
            job_hook(job(n), Job)
        del decoded
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 100_000  # kept per session and job: 1.2 MB for these


@pytest.mark.parametrize("version", sorted(DIALECTS))
def test_long_server_values_are_not_kept_by_a_client_s_caches(version: str) -> None:
    """The caches of a client's hooks (links per href, ids per href, proxy links per repository
    link, schedule policies) live as long as the client: an exporter's. A hostile server varying
    long hrefs and schedule values must not make them keep what it sent once the models are gone."""
    dialect = DIALECTS[version]
    hook = FastHooks(NAVIGATOR, dialect).get(Job)
    spellings = [spelling for names in dialect.wire_names(JobLinks).values() for spelling in names]
    long = "x" * 100_000

    def job(n: int) -> dict[str, Any]:
        links = {key: {"href": f"/{version}/Things/{n}{key}{long}"} for key in spellings}
        return {"id": f"j{n}", "_links": links, "schedulePolicy": {"type": f"T{n}{long}"}}

    hook(job(-1), Job)  # the plans and hooks are made before measuring
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(30):
            decoded = hook(job(n), Job)
            assert decoded.links.organization.href.startswith(f"/{version}/Things/{n}")
            del decoded
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 1_000_000  # 30 jobs sent about 20 MB


@pytest.mark.parametrize("version", sorted(DIALECTS))
def test_long_backup_windows_are_not_kept_by_a_client_s_policy_cache(version: str) -> None:
    """A window's flags are one byte per hour whatever the server sends, and the policy cache
    keys on them: a hostile server sending a window of a million flags per job (a 6 MB body
    each) made a client keep a megabyte per policy, up to 4,096 of them (4 GB), after the jobs
    themselves were gone. Windows as long as real ones (168 flags, two per v6+ policy) are
    still cached; longer ones are decoded, not kept."""
    dialect = DIALECTS[version]
    hook = FastHooks(NAVIGATOR, dialect).get(Job)
    names = dialect.wire_names(SchedulePolicy)["backup_window"]
    flags_name = dialect.wire_names(BackupWindow)["backup_intervals_array"][0]

    def job(n: int, hours: int) -> dict[str, Any]:
        window = [hour % (n + 2) == 0 for hour in range(hours)]  # each n its own
        return {"id": f"j{n}", "schedulePolicy": {"type": "Daily", names[0]: {flags_name: window}}}

    real = hook(job(-1, 168), Job)  # the plans and hooks are made before measuring
    assert hook(job(-1, 168), Job).schedule_policy is real.schedule_policy  # a real window is cached
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(30):
            decoded = hook(job(n, 100_000), Job)
            assert decoded.schedule_policy is not None
            assert decoded.schedule_policy.backup_window is not None
            assert len(decoded.schedule_policy.backup_window.backup_intervals_array) == 100_000
            del decoded
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 1_000_000  # 30 windows of 100,000 flags: 3 MB


@pytest.mark.parametrize("version", ["v1", "v8"])
def test_a_client_s_link_caches_stop_growing_at_their_bound(version: str) -> None:
    """The caches of shared links (per href) and of ids read from links live as long as the
    client. A hostile server naming a new organization, repository and proxy of 500 characters
    in every job made them keep about 3 KB per job up to 65,536 entries each: 200 MB per client
    for jobs and sessions alone. Past their bound (two generations of `CACHED_HREFS` / 2
    entries), each generation added drops one: after as many generations again, they hold what
    they held."""
    dialect = DIALECTS[version]
    hooks = FastHooks(NAVIGATOR, dialect)
    job_hook, session_hook = hooks.get(Job), hooks.get(JobSession)
    spellings = [spelling for names in dialect.wire_names(JobLinks).values() for spelling in names]
    pad = "x" * 500

    def job(n: int) -> dict[str, Any]:
        return {
            "id": f"j{n}",
            "_links": {key: {"href": f"/{version}/R/{n:06d}{key}{pad}"[:500]} for key in spellings},
        }

    def session(n: int) -> dict[str, Any]:
        return {"id": f"s{n}", "_links": {"job": {"href": f"/{version}/Jobs/{n:06d}{pad}"[:500]}}}

    def decode(numbers: range) -> None:
        for n in numbers:
            assert job_hook(job(n), Job).links.organization is not None
            assert session_hook(session(n), JobSession).links.job is not None

    tracemalloc.start()
    try:
        generation = CACHED_HREFS // 2  # each job adds a whole number of entries to each cache
        decode(range(3 * generation))  # past the bound
        gc.collect()
        full = tracemalloc.get_traced_memory()[0]
        decode(range(3 * generation, 5 * generation))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - full
    finally:
        tracemalloc.stop()
    assert grown < 200_000  # 4,096 more jobs and sessions: about 13 MB kept before
