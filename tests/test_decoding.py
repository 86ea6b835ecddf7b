"""Decoding wire JSON into the models: the vendor's seed field by field, then every tolerance."""

from __future__ import annotations

import copy
import datetime as dt
import pickle
import weakref
from typing import Any

import attrs
import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbo_async import (
    BackupRepository,
    BackupWindow,
    Bottleneck,
    CollectionLink,
    ConfigError,
    DailyType,
    DecodeError,
    Job,
    JobLinks,
    JobSession,
    JobStatus,
    Link,
    Organization,
    PeriodicallyEvery,
    Proxy,
    ProxyStatus,
    SchedulePolicy,
    ScheduleType,
    SelectedMailbox,
    VBOClient,
)
from vbo_async._convert import ENUMS, WireValueError
from vbo_async._enums import OpenEnum

from .conftest import BASE, FOREIGN, FakeVBO
from .test_properties import PROPERTY

UTC = dt.UTC
JOB_ID = "70a8cbaf-642f-4c6f-934d-fb10e597a82a"
ORG_ID = "b2d9414d-c417-4a94-be3b-b38a3c2e8a7b"
REPO_ID = "a740fb93-4de8-4de4-977e-765dd092748f"
PROXY_ID = "5a905bb5-9071-433c-9d2f-f805d4da2cf4"


async def decode_jobs(fake: FakeVBO, vbo: VBOClient, body: Any) -> list[Job]:
    fake.route("GET", "/v1/Jobs", body)
    return await vbo.jobs()


async def decode_job(fake: FakeVBO, vbo: VBOClient, job: dict[str, Any]) -> Job:
    (decoded,) = await decode_jobs(fake, vbo, [job])
    return decoded


# --- the seed, field by field ------------------------------------------------------------------------


async def test_seed_job_scalar_fields(fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]) -> None:
    (job,) = await decode_jobs(fake, vbo, seed)

    assert isinstance(job, Job)
    assert job.id == JOB_ID
    assert job.name == "ABC Backup"
    assert job.description == "Daily Backups"
    assert job.all_mailboxes is True
    assert job.last_status is JobStatus.SUCCESS
    assert job.last_status.is_known
    assert job.is_enabled is True
    # Not sent by the vendor, but read from the job's links (their last path segments).
    assert job.repository_id == REPO_ID
    assert job.organization_id == ORG_ID
    assert job.proxy_id == PROXY_ID
    # Not sent by the vendor: absent means None.
    assert job.is_run is None
    assert job.selected_mailboxes is None
    assert job.excluded_mailboxes is None


async def test_seed_job_datetimes_are_exact_utc(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    (job,) = await decode_jobs(fake, vbo, seed)

    # "2017-04-01T09:35:59.0469161Z": the 7th fractional digit is dropped.
    assert job.last_run == dt.datetime(2017, 4, 1, 9, 35, 59, 46916, tzinfo=UTC)
    assert job.last_run.microsecond == 46916
    assert job.last_run.tzinfo is not None
    assert job.last_run.utcoffset() == dt.timedelta(0)
    # "2017-04-04T22:00:00Z": no fraction.
    assert job.next_run == dt.datetime(2017, 4, 4, 22, 0, 0, tzinfo=UTC)
    assert job.next_run.utcoffset() == dt.timedelta(0)


async def test_seed_schedule_policy(fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]) -> None:
    (job,) = await decode_jobs(fake, vbo, seed)
    policy = job.schedule_policy

    assert isinstance(policy, SchedulePolicy)
    assert policy.type is ScheduleType.PERIODICALLY
    assert policy.periodically_every is PeriodicallyEvery.MINUTES5
    assert policy.daily_type is DailyType.EVERYDAY
    assert policy.daily_time == dt.time(0, 0, 0)
    assert isinstance(policy.daily_time, dt.time)
    assert policy.retry_enabled is True
    assert policy.retry_number == 1
    assert type(policy.retry_number) is int
    assert policy.retry_wait_interval == 5
    assert type(policy.retry_wait_interval) is int


async def test_seed_backup_window_has_168_booleans(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    (job,) = await decode_jobs(fake, vbo, seed)
    window = job.schedule_policy.backup_window

    assert isinstance(window, BackupWindow)
    assert window.minute_offset == 0
    assert len(window.backup_intervals_array) == 168
    assert all(flag is True for flag in window.backup_intervals_array)
    assert window.backup_intervals_array == tuple(
        seed[0]["schedulePolicy"]["backupWindow"]["backupIntervalsArray"]
    )
    assert window.allows(0, 0)
    assert window.allows(6, 23)
    with pytest.raises(ConfigError):
        window.allows(7, 0)  # past the week


async def test_seed_backup_window_keeps_each_hour(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any]
) -> None:
    flags = [(i % 3 == 0) for i in range(168)]
    seed_job["schedulePolicy"]["backupWindow"]["backupIntervalsArray"] = flags
    job = await decode_job(fake, vbo, seed_job)

    window = job.schedule_policy.backup_window
    assert window.backup_intervals_array == tuple(flags)
    assert window.allows(0, 3) is True
    assert window.allows(0, 4) is False
    assert window.allows(1, 0) is True  # index 24


def test_decoded_models_are_exactly_their_frozen_classes(vbo: VBOClient, seed_job: dict[str, Any]) -> None:
    """The fast path fills a building subclass and then gives each object its real class."""
    job = vbo.from_wire(seed_job, Job)
    policy = job.schedule_policy
    assert policy is not None
    objects = [job, policy, policy.backup_window, job.links]
    assert [type(o) for o in objects] == [Job, SchedulePolicy, BackupWindow, JobLinks]
    for model in objects:
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            model.__setattr__("id", "other")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            model.__delattr__("links" if model is job else attrs.fields(type(model))[0].name)
        assert weakref.ref(model)() is model
    for model in (policy, policy.backup_window):  # links hold their client, so only these
        assert pickle.loads(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) == model
    assert job == vbo.from_wire(copy.deepcopy(seed_job), Job)
    assert hash(policy) == hash(vbo.from_wire(copy.deepcopy(seed_job), Job).schedule_policy)


def _with_window(job: dict[str, Any], flags: list[Any], **policy: Any) -> dict[str, Any]:
    job = copy.deepcopy(job)
    job["schedulePolicy"]["backupWindow"]["backupIntervalsArray"] = flags
    job["schedulePolicy"].update(policy)
    return job


def test_equal_policies_are_shared_and_different_ones_are_not(
    vbo: VBOClient, seed_job: dict[str, Any]
) -> None:
    mornings = [hour % 24 < 12 for hour in range(168)]
    evenings = [hour % 24 >= 12 for hour in range(168)]
    wires = [
        _with_window(seed_job, mornings),
        _with_window(seed_job, evenings),
        _with_window(seed_job, mornings),
        _with_window(seed_job, mornings, retryNumber=2),
        _with_window(seed_job, mornings, retryNumber="1"),  # the same value, sent as a string
    ]
    a, b, c, d, e = (vbo.from_wire(wire, Job).schedule_policy for wire in wires)
    assert a is c
    assert a is not b
    assert a != b
    assert a.backup_window.backup_intervals_array == tuple(mornings)
    assert b.backup_window.backup_intervals_array == tuple(evenings)
    assert d is not a
    assert d.retry_number == 2
    assert e == a
    assert type(e.retry_number) is int


def test_a_window_written_with_numbers_or_strings_reads_as_the_same_flags(
    vbo: VBOClient, seed_job: dict[str, Any]
) -> None:
    flags = [hour % 5 == 0 for hour in range(168)]
    spellings = (flags, [int(f) for f in flags], [float(f) for f in flags], [str(f).lower() for f in flags])
    for spelling in spellings:
        policy = vbo.from_wire(_with_window(seed_job, spelling), Job).schedule_policy
        window = policy.backup_window.backup_intervals_array
        assert window == tuple(flags)
        assert all(type(flag) is bool for flag in window)


def test_many_windows_under_one_schedule_all_decode(vbo: VBOClient, seed_job: dict[str, Any]) -> None:
    """More distinct windows than the policy cache keeps per schedule: each still decodes exactly,
    first time and again."""
    windows = [[hour % (n + 2) == 0 for hour in range(168)] for n in range(40)]
    for _ in range(2):
        for flags in windows:
            policy = vbo.from_wire(_with_window(seed_job, flags), Job).schedule_policy
            assert policy.backup_window.backup_intervals_array == tuple(flags)


def test_a_bad_flag_fails_even_after_its_window_was_cached(vbo: VBOClient, seed_job: dict[str, Any]) -> None:
    flags: list[Any] = [True] * 168
    vbo.from_wire(_with_window(seed_job, flags), Job)
    flags[7] = 2
    with pytest.raises(DecodeError) as info:
        vbo.from_wire(_with_window(seed_job, flags), Job)
    assert info.value.path == "$.schedulePolicy.backupWindow.backupIntervalsArray[7]"


async def test_seed_links(fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]) -> None:
    (job,) = await decode_jobs(fake, vbo, seed)
    links = job.links
    wire = seed[0]["_links"]

    assert isinstance(links, JobLinks)
    expected = {
        "self": (links.self, Link, Job),
        "organization": (links.organization, Link, Organization),
        "repository": (links.repository, Link, BackupRepository),
        "proxy": (links.proxy, Link, Proxy),
        "selectedMailboxes": (links.selected_mailboxes, CollectionLink, SelectedMailbox),
        "jobsessions": (links.jobsessions, CollectionLink, JobSession),
    }
    assert set(expected) == set(wire)
    for relation, (link, kind, target) in expected.items():
        assert isinstance(link, kind), relation
        assert link.relation == relation
        assert link.href == wire[relation]["href"]
        assert link.href.startswith(FOREIGN)
        assert link.target is target
    assert isinstance(links.self, Link)
    assert not isinstance(links.self, CollectionLink)
    # Followed at the client's own host, never the server's self-reported one.
    assert links.self.url == f"{BASE}/v1/Jobs/{JOB_ID}"
    assert links.organization.url == f"{BASE}/v1/Organizations/{ORG_ID}"
    assert links.repository.url == f"{BASE}/v1/BackupRepositories/{REPO_ID}"
    assert links.proxy.url == f"{BASE}/v1/Proxies/{PROXY_ID}"
    assert links.selected_mailboxes.url == f"{BASE}/v1/Jobs/{JOB_ID}/SelectedMailboxes"
    assert links.jobsessions.url == f"{BASE}/v1/Jobs/{JOB_ID}/JobSessions"


async def test_seed_decodes_to_the_expected_job_as_a_whole(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    (job,) = await decode_jobs(fake, vbo, seed)
    base = f"{FOREIGN}/v1"
    expected = Job(
        id=JOB_ID,
        name="ABC Backup",
        description="Daily Backups",
        all_mailboxes=True,
        organization_id=ORG_ID,
        repository_id=REPO_ID,
        proxy_id=PROXY_ID,
        last_status=JobStatus.SUCCESS,
        last_run=dt.datetime(2017, 4, 1, 9, 35, 59, 46916, tzinfo=UTC),
        next_run=dt.datetime(2017, 4, 4, 22, 0, tzinfo=UTC),
        is_enabled=True,
        schedule_policy=SchedulePolicy(
            type=ScheduleType.PERIODICALLY,
            periodically_every=PeriodicallyEvery.MINUTES5,
            daily_type=DailyType.EVERYDAY,
            daily_time=dt.time(0, 0),
            backup_window=BackupWindow(backup_intervals_array=(True,) * 168, minute_offset=0),
            retry_enabled=True,
            retry_number=1,
            retry_wait_interval=5,
        ),
        links=JobLinks(
            self_=Link(f"{base}/Jobs/{JOB_ID}", "self", None, Job),
            organization=Link(f"{base}/Organizations/{ORG_ID}", "organization", None, Organization),
            repository=Link(f"{base}/BackupRepositories/{REPO_ID}", "repository", None, BackupRepository),
            proxy=Link(f"{base}/Proxies/{PROXY_ID}", "proxy", None, Proxy),
            selected_mailboxes=CollectionLink(
                f"{base}/Jobs/{JOB_ID}/SelectedMailboxes",
                "selectedMailboxes",
                None,
                SelectedMailbox,
            ),
            jobsessions=CollectionLink(f"{base}/Jobs/{JOB_ID}/JobSessions", "jobsessions", None, JobSession),
        ),
    )
    assert job == expected


async def test_seed_as_organization_jobs(fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]) -> None:
    fake.route("GET", f"/v1/Organizations/{ORG_ID}/Jobs", seed)
    jobs = await vbo.organization_jobs(ORG_ID)
    assert [job.id for job in jobs] == [JOB_ID]
    assert fake.api_requests[-1].url == f"{BASE}/v1/Organizations/{ORG_ID}/Jobs"


# --- tolerances -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "expected"),
    [("true", True), ("false", False), (True, True), (False, False), ("True", True), ("False", False)],
)
async def test_booleans_as_strings_or_booleans(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any], wire: Any, expected: bool
) -> None:
    seed_job["allMailboxes"] = wire
    seed_job["isEnabled"] = wire
    seed_job["schedulePolicy"]["retryEnabled"] = wire
    job = await decode_job(fake, vbo, seed_job)
    assert job.all_mailboxes is expected
    assert job.is_enabled is expected
    assert job.schedule_policy.retry_enabled is expected


async def test_numbers_as_numeric_strings(fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any]) -> None:
    seed_job["schedulePolicy"]["retryNumber"] = "14"
    seed_job["schedulePolicy"]["retryWaitInterval"] = " 30 "
    seed_job["schedulePolicy"]["backupWindow"]["minuteOffset"] = "-420"
    job = await decode_job(fake, vbo, seed_job)
    assert job.schedule_policy.retry_number == 14
    assert type(job.schedule_policy.retry_number) is int
    assert job.schedule_policy.retry_wait_interval == 30
    assert job.schedule_policy.backup_window.minute_offset == -420


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("2017-04-01T09:35:59.0469161Z", dt.datetime(2017, 4, 1, 9, 35, 59, 46916, tzinfo=UTC)),
        # Truncated, not rounded: .1234567 -> 123456 (rounding would give 123457).
        ("2017-04-01T09:35:59.1234567Z", dt.datetime(2017, 4, 1, 9, 35, 59, 123456, tzinfo=UTC)),
        ("2017-04-01T09:35:59.9999999Z", dt.datetime(2017, 4, 1, 9, 35, 59, 999999, tzinfo=UTC)),
        ("2022-01-31T16:39:24.008771Z", dt.datetime(2022, 1, 31, 16, 39, 24, 8771, tzinfo=UTC)),
        ("2017-04-04T22:00:00Z", dt.datetime(2017, 4, 4, 22, 0, tzinfo=UTC)),
        ("2017-04-04T22:00:00+00:00", dt.datetime(2017, 4, 4, 22, 0, tzinfo=UTC)),
        # No zone: read as UTC.
        ("2017-04-05T08:04:55", dt.datetime(2017, 4, 5, 8, 4, 55, tzinfo=UTC)),
        ("2017-04-05T08:04:55.1234567", dt.datetime(2017, 4, 5, 8, 4, 55, 123456, tzinfo=UTC)),
    ],
)
async def test_timestamps(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any], wire: str, expected: dt.datetime
) -> None:
    seed_job["lastRun"] = wire
    job = await decode_job(fake, vbo, seed_job)
    assert job.last_run == expected
    assert job.last_run.microsecond == expected.microsecond
    assert job.last_run.utcoffset() == dt.timedelta(0)


async def test_timestamp_with_an_offset_keeps_the_offset(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any]
) -> None:
    seed_job["lastRun"] = "2017-04-04T00:07:21.3994255-07:00"
    job = await decode_job(fake, vbo, seed_job)
    assert job.last_run.utcoffset() == dt.timedelta(hours=-7)
    assert job.last_run.microsecond == 399425
    assert job.last_run == dt.datetime(2017, 4, 4, 7, 7, 21, 399425, tzinfo=UTC)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [("00:00:00", dt.time(0, 0, 0)), ("15:00:00", dt.time(15, 0)), ("08:30", dt.time(8, 30))],
)
async def test_time_of_day(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any], wire: str, expected: dt.time
) -> None:
    seed_job["schedulePolicy"]["dailyTime"] = wire
    job = await decode_job(fake, vbo, seed_job)
    assert job.schedule_policy.daily_time == expected
    assert isinstance(job.schedule_policy.daily_time, dt.time)


@pytest.mark.parametrize(
    "field",
    [
        "name",
        "description",
        "allMailboxes",
        "lastStatus",
        "lastRun",
        "nextRun",
        "isEnabled",
        "schedulePolicy",
    ],
)
async def test_null_where_a_value_is_usually_present(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any], field: str
) -> None:
    seed_job[field] = None
    job = await decode_job(fake, vbo, seed_job)
    attribute = {
        "name": "name",
        "description": "description",
        "allMailboxes": "all_mailboxes",
        "lastStatus": "last_status",
        "lastRun": "last_run",
        "nextRun": "next_run",
        "isEnabled": "is_enabled",
        "schedulePolicy": "schedule_policy",
    }[field]
    assert getattr(job, attribute) is None
    assert job.id == JOB_ID


async def test_nulls_inside_the_schedule_policy(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any]
) -> None:
    for key in list(seed_job["schedulePolicy"]):
        seed_job["schedulePolicy"][key] = None
    seed_job["_links"] = None
    job = await decode_job(fake, vbo, seed_job)
    assert job.schedule_policy == SchedulePolicy()
    assert job.links == JobLinks()


async def test_absent_fields_are_none(fake: FakeVBO, vbo: VBOClient) -> None:
    job = await decode_job(fake, vbo, {"id": JOB_ID})
    assert job == Job(id=JOB_ID)
    assert job.links.self is None


async def test_unknown_fields_are_ignored(fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any]) -> None:
    plain = await decode_job(fake, vbo, copy.deepcopy(seed_job))
    seed_job["retentionMood"] = "EntireOrganization"
    seed_job["eTagV9"] = 12
    seed_job["futureThing"] = {"nested": [1, 2, {"x": None}]}
    seed_job["schedulePolicy"]["weeklyWindowEnabled"] = True
    seed_job["schedulePolicy"]["backupWindow"]["extra"] = "x"
    seed_job["_links"]["excludedMailboxes"] = {"href": f"{FOREIGN}/v1/Jobs/{JOB_ID}/ExcludedMailboxes"}
    seed_job["_links"]["weird"] = "not-an-object"
    with_extras = await decode_job(fake, vbo, seed_job)
    assert with_extras == plain


async def test_unknown_enum_value_equals_the_wire_string(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any]
) -> None:
    seed_job["lastStatus"] = "Exploded"
    seed_job["schedulePolicy"]["periodicallyEvery"] = "Hours24"
    seed_job["schedulePolicy"]["dailyType"] = "Holidays"
    seed_job["schedulePolicy"]["type"] = "Continuous"
    job = await decode_job(fake, vbo, seed_job)

    assert job.last_status == "Exploded"
    assert str(job.last_status) == "Exploded"
    assert isinstance(job.last_status, JobStatus)
    assert job.last_status.is_known is False
    assert job.schedule_policy.periodically_every == "Hours24"
    assert job.schedule_policy.periodically_every.is_known is False
    assert job.schedule_policy.daily_type == "Holidays"
    assert job.schedule_policy.type == "Continuous"
    # Nothing leaks into the enum class.
    assert "Exploded" not in JobStatus.__members__
    assert [member.value for member in JobStatus if member.value == "Exploded"] == []


async def test_known_enum_values_of_later_versions(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any]
) -> None:
    seed_job["lastStatus"] = "Queued"
    job = await decode_job(fake, vbo, seed_job)
    assert job.last_status is JobStatus.QUEUED
    assert job.last_status.is_known is True


async def test_a_wire_value_spelled_as_a_member_s_name_is_not_known(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any]
) -> None:
    """``SUCCESS`` is the Python name of `JobStatus.SUCCESS`, not a value the server defines."""
    seed_job["lastStatus"] = "SUCCESS"
    seed_job["schedulePolicy"]["periodicallyEvery"] = "HOURS1"
    job = await decode_job(fake, vbo, seed_job)
    assert job.last_status == "SUCCESS"
    assert job.last_status != JobStatus.SUCCESS
    assert job.last_status.is_known is False
    assert job.schedule_policy.periodically_every.is_known is False


@pytest.mark.parametrize("enum_cls", ENUMS, ids=lambda cls: cls.__name__)
def test_is_known_says_whether_the_value_is_a_member_s(enum_cls: type[OpenEnum]) -> None:
    for member in enum_cls:
        assert enum_cls(member.value) is member
        assert member.is_known is True
        for spelling in {member.name, member.value.upper(), member.value.lower(), f"{member.value} "}:
            value = enum_cls(spelling)
            assert value.is_known is (spelling in enum_cls._value2member_map_), (enum_cls, spelling)


@pytest.mark.parametrize("wire", ["Fail\x1b[2J\x1b[31mOWNED\nfake: line", "a\u202eb", "x\r\x00y"])
def test_the_repr_of_an_unknown_enum_value_escapes_it_as_every_string_is(wire: str) -> None:
    """A model's repr (logs, tracebacks, a REPL) quotes the server's strings with repr(): an
    unknown status must not carry raw escape sequences or newlines into it either."""
    vbo = VBOClient("https://vbo.test:4443", username="u", password="p", api_version="v8")
    job = vbo.from_wire({"id": "j", "name": wire, "lastStatus": wire}, Job)
    assert job.last_status == wire
    assert repr(wire) in repr(job.last_status)
    assert repr(job).count(repr(wire)) >= 2
    assert not any(char in repr(job) for char in "\x1b\n\r\x00\u202e")
    assert repr(JobStatus.SUCCESS) == "<JobStatus.SUCCESS: 'Success'>"


# --- other resources --------------------------------------------------------------------------------


async def test_organization(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route(
        "GET",
        f"/v1/Organizations/{ORG_ID}",
        {
            "type": "Office365",
            "username": "admin@contoso.onmicrosoft.com",
            "region": "worldwide",
            "id": ORG_ID,
            "name": "contoso.onmicrosoft.com",
            "isBackedup": "true",
            "firstBackuptime": "2017-05-26T22:07:39.4361193Z",
            "lastBackuptime": "2017-05-28T22:27:07.5266181",
            "isExchangeOnline": True,
            "_links": {
                "self": {"href": f"{FOREIGN}/v1/Organizations/{ORG_ID}"},
                "jobs": {"href": f"{FOREIGN}/v1/Organizations/{ORG_ID}/Jobs"},
                "mailboxes": {"href": f"{FOREIGN}/v1/Organizations/{ORG_ID}/Mailboxes"},
            },
        },
    )
    org = await vbo.organization(ORG_ID)

    assert isinstance(org, Organization)
    assert org.id == ORG_ID
    assert org.type == "Office365"
    assert org.username == "admin@contoso.onmicrosoft.com"
    assert org.region == "worldwide"
    assert org.name == "contoso.onmicrosoft.com"
    assert org.is_backedup is True
    assert org.first_backuptime == dt.datetime(2017, 5, 26, 22, 7, 39, 436119, tzinfo=UTC)
    assert org.last_backuptime == dt.datetime(2017, 5, 28, 22, 27, 7, 526618, tzinfo=UTC)
    assert org.links.self.href == f"{FOREIGN}/v1/Organizations/{ORG_ID}"
    assert isinstance(org.links.jobs, CollectionLink)
    assert org.links.jobs.target is Job
    assert org.links.mailboxes.url == f"{BASE}/v1/Organizations/{ORG_ID}/Mailboxes"


async def test_organization_with_nulls_and_booleans(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route(
        "GET",
        "/v1/Organizations",
        [{"id": ORG_ID, "isBackedup": False, "firstBackuptime": None, "lastBackuptime": None, "name": None}],
    )
    (org,) = await vbo.organizations()
    assert org == Organization(id=ORG_ID, is_backedup=False)


async def test_backup_repository(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route(
        "GET",
        "/v1/BackupRepositories",
        [
            {
                "id": REPO_ID,
                "name": "Default Backup Repository",
                "description": "Created by Veeam",
                "proxyId": PROXY_ID,
                "path": "C:\\ProgramData\\Veeam\\Backup365\\Repository",
                "retentionPeriodType": "Daily",
                "dailyRetentionPeriod": "14",
                "retentionFrequencyType": "Daily",
                "dailyTime": "08:00:00",
                "dailyType": "Weekends",
                "capacity": 85897244672,
                "freeSpace": "53687091200",
                "_links": {
                    "self": {"href": f"{FOREIGN}/v1/BackupRepositories/{REPO_ID}"},
                    "proxy": {"href": f"{FOREIGN}/v1/Proxies/{PROXY_ID}"},
                },
            }
        ],
    )
    (repo,) = await vbo.backup_repositories()

    assert isinstance(repo, BackupRepository)
    assert repo.id == REPO_ID
    assert repo.name == "Default Backup Repository"
    assert repo.description == "Created by Veeam"
    assert repo.proxy_id == PROXY_ID
    assert repo.path == "C:\\ProgramData\\Veeam\\Backup365\\Repository"
    assert repo.retention_period_type == "Daily"
    assert repo.daily_retention_period == 14
    assert type(repo.daily_retention_period) is int
    assert repo.retention_frequency_type == "Daily"
    assert repo.daily_time == dt.time(8, 0)
    assert repo.daily_type is DailyType.WEEKENDS
    assert repo.capacity == 85897244672
    assert repo.free_space == 53687091200
    assert repo.links.proxy.target is Proxy
    assert repo.links.proxy.url == f"{BASE}/v1/Proxies/{PROXY_ID}"


@pytest.mark.parametrize("spelling", ["enableNetworkthrottling", "enableNetworkThrottling"])
async def test_proxy_network_throttling_spellings(fake: FakeVBO, vbo: VBOClient, spelling: str) -> None:
    fake.route(
        "GET",
        "/v1/Proxies",
        [
            {
                "id": PROXY_ID,
                "hostName": "vbo-proxy01.lab.local",
                "description": "Proxy",
                "port": "9193",
                "threadsNumber": 64,
                spelling: "true",
                "throttlingValue": 1024,
                "throttlingUnit": "KBs",
                "status": "Online",
                "_links": {
                    "self": {"href": f"{FOREIGN}/v1/Proxies/{PROXY_ID}"},
                    "repositories": {"href": f"{FOREIGN}/v1/Proxies/{PROXY_ID}/repositories"},
                },
            }
        ],
    )
    (proxy,) = await vbo.proxies()

    assert isinstance(proxy, Proxy)
    assert proxy.id == PROXY_ID
    assert proxy.host_name == "vbo-proxy01.lab.local"
    assert proxy.description == "Proxy"
    assert proxy.port == 9193
    assert proxy.threads_number == 64
    assert proxy.enable_network_throttling is True
    assert proxy.throttling_value == 1024
    assert proxy.throttling_unit == "KBs"
    assert proxy.status is ProxyStatus.ONLINE
    assert isinstance(proxy.links.repositories, CollectionLink)
    assert proxy.links.repositories.target is BackupRepository


@pytest.mark.parametrize("spelling", ["enableNetworkthrottling", "enableNetworkThrottling"])
async def test_a_bad_value_is_named_by_the_spelling_the_server_sent(
    fake: FakeVBO, vbo: VBOClient, spelling: str
) -> None:
    """A field read under more than one spelling: the error's path is the key the body holds,
    not the first spelling (which a reader would look for in the body in vain)."""
    fake.route("GET", "/v1/Proxies", [{"id": PROXY_ID}, {"id": PROXY_ID, spelling: "maybe"}])
    with pytest.raises(DecodeError) as caught:
        await vbo.proxies()
    assert caught.value.path == f"$[1].{spelling}"
    assert f"at $[1].{spelling}" in str(caught.value)


async def test_proxy_unknown_status(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route(
        "GET", "/v1/Proxies", [{"id": PROXY_ID, "status": "Upgrading", "enableNetworkthrottling": False}]
    )
    (proxy,) = await vbo.proxies()
    assert proxy.status == "Upgrading"
    assert proxy.status.is_known is False
    assert proxy.enable_network_throttling is False


async def test_job_session_with_statistics(fake: FakeVBO, vbo: VBOClient) -> None:
    session_id = "9c8b7a6d-3333-4c5d-9e0f-1a2b3c4d5e6f"
    fake.route(
        "GET",
        f"/v1/JobSessions/{session_id}",
        {
            "id": session_id,
            "creationTime": "2017-04-04T00:07:21.3994255-07:00",
            "endTime": "2017-04-04T00:11:36.9857918-07:00",
            "progress": "3",
            "status": "Success",
            "details": "ignored (v6 field)",
            "statistics": {
                "processingRate": "99.1 KB/s (6 items/s)",
                "readRate": "1.0 MB/s",
                "writeRate": "20.8 MB/s",
                "transferredData": "0 B",
                "processedObjects": 1655,
                "bottleneck": "Source",
            },
            "_links": {
                "self": {"href": f"{FOREIGN}/v1/JobSessions/{session_id}"},
                "log": {"href": f"{FOREIGN}/v1/JobSessions/{session_id}/log"},
                "job": {"href": f"{FOREIGN}/v1/Jobs/{JOB_ID}"},
            },
        },
    )
    session = await vbo.job_session(session_id)

    assert isinstance(session, JobSession)
    assert session.id == session_id
    minus7 = dt.timezone(dt.timedelta(hours=-7))
    assert session.creation_time == dt.datetime(2017, 4, 4, 0, 7, 21, 399425, tzinfo=minus7)
    assert session.creation_time.utcoffset() == dt.timedelta(hours=-7)
    assert session.end_time == dt.datetime(2017, 4, 4, 0, 11, 36, 985791, tzinfo=minus7)
    assert session.progress == 3
    assert session.status is JobStatus.SUCCESS
    stats = session.statistics
    assert stats.processing_rate == "99.1 KB/s (6 items/s)"
    assert stats.read_rate == "1.0 MB/s"
    assert stats.write_rate == "20.8 MB/s"
    assert stats.transferred_data == "0 B"
    assert stats.processed_objects == 1655
    assert stats.bottleneck is Bottleneck.SOURCE
    assert session.links.job.target is Job
    assert session.links.log.target is None
    assert session.links.log.url == f"{BASE}/v1/JobSessions/{session_id}/log"


async def test_job_session_running_without_end_time(fake: FakeVBO, vbo: VBOClient) -> None:
    fake.route(
        "GET",
        "/v1/JobSessions/s1",
        {"id": "s1", "endTime": None, "status": "Running", "statistics": {"bottleneck": "Detecting"}},
    )
    session = await vbo.job_session("s1")
    assert session.end_time is None
    assert session.status is JobStatus.RUNNING
    assert session.statistics.bottleneck is Bottleneck.DETECTING
    assert session.statistics.processed_objects is None


async def test_selected_mailboxes_through_the_job_link(
    fake: FakeVBO, vbo: VBOClient, seed: list[dict[str, Any]]
) -> None:
    mailbox_id = "3f1c2d4e-5555-4a6b-8c7d-9e0f1a2b3c4d"
    (job,) = await decode_jobs(fake, vbo, seed)
    fake.route(
        "GET",
        f"/v1/Jobs/{JOB_ID}/SelectedMailboxes",
        [
            {
                "id": mailbox_id,
                "email": "kate@contoso.onmicrosoft.com",
                "name": "Kate",
                "isBackedUp": "true",
                "_links": {
                    "self": {"href": f"{FOREIGN}/v1/Organizations/{ORG_ID}/Mailboxes/{mailbox_id}"},
                    "organization": {"href": f"{FOREIGN}/v1/Organizations/{ORG_ID}"},
                },
            },
            {"id": "second", "email": None, "isBackedUp": False},
        ],
    )
    mailboxes = await job.links.selected_mailboxes

    assert [type(m) for m in mailboxes] == [SelectedMailbox, SelectedMailbox]
    first, second = mailboxes
    assert first.id == mailbox_id
    assert first.email == "kate@contoso.onmicrosoft.com"
    assert first.name == "Kate"
    assert first.is_backed_up is True
    assert first.links.organization.target is Organization
    assert first.links.self.url == f"{BASE}/v1/Organizations/{ORG_ID}/Mailboxes/{mailbox_id}"
    assert second == SelectedMailbox(id="second", is_backed_up=False)


# --- decode errors --------------------------------------------------------------------------------


async def test_missing_id_names_the_path_and_url(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any]
) -> None:
    second = copy.deepcopy(seed_job)
    del second["id"]
    fake.route("GET", "/v1/Jobs", [seed_job, second])

    with pytest.raises(DecodeError) as info:
        await vbo.jobs()

    error = info.value
    assert error.path == "$[1].id"
    assert error.url == f"{BASE}/v1/Jobs"
    assert "$[1].id" in str(error)
    assert f"{BASE}/v1/Jobs" in str(error)


async def test_bad_number_names_the_nested_wire_path(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any]
) -> None:
    second = copy.deepcopy(seed_job)
    second["schedulePolicy"]["retryNumber"] = "abc"
    fake.route("GET", "/v1/Jobs", [seed_job, second])

    with pytest.raises(DecodeError) as info:
        await vbo.jobs()

    error = info.value
    assert error.path == "$[1].schedulePolicy.retryNumber"
    assert "$[1].schedulePolicy.retryNumber" in str(error)
    assert "abc" in str(error)
    assert f"{BASE}/v1/Jobs" in str(error)


async def test_bad_value_in_a_single_resource(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any]
) -> None:
    seed_job["isEnabled"] = "maybe"
    fake.route("GET", f"/v1/Jobs/{JOB_ID}", seed_job)
    with pytest.raises(DecodeError) as info:
        await vbo.job(JOB_ID)
    assert info.value.path == "$.isEnabled"
    assert info.value.url == f"{BASE}/v1/Jobs/{JOB_ID}"


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("lastRun", "yesterday", "$[0].lastRun"),
        ("schedulePolicy", "daily", "$[0].schedulePolicy"),
        ("id", None, "$[0].id"),
        ("id", {"x": 1}, "$[0].id"),
    ],
)
async def test_bad_values_are_decode_errors(
    fake: FakeVBO, vbo: VBOClient, seed_job: dict[str, Any], field: str, value: Any, path: str
) -> None:
    seed_job[field] = value
    fake.route("GET", "/v1/Jobs", [seed_job])
    with pytest.raises(DecodeError) as info:
        await vbo.jobs()
    assert info.value.path == path


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Service Unavailable</body></html>",
        b"not json at all",
        b'[{"id": "70a8cbaf-642f-4c6f-934d-fb10e597a82a", "name": "ABC',
        b"",
        b"   ",
    ],
    ids=["html", "text", "truncated", "empty", "blank"],
)
async def test_non_json_bodies_are_decode_errors(fake: FakeVBO, vbo: VBOClient, body: bytes) -> None:
    fake.route(
        "GET", "/v1/Jobs", httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
    )
    with pytest.raises(DecodeError) as info:
        await vbo.jobs()
    assert info.value.url == f"{BASE}/v1/Jobs"
    assert f"{BASE}/v1/Jobs" in str(info.value)
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, Exception)


@pytest.mark.parametrize("body", [{"id": JOB_ID}, "a string", 42, None])
async def test_a_list_endpoint_answering_something_else(fake: FakeVBO, vbo: VBOClient, body: Any) -> None:
    fake.route("GET", "/v1/Jobs", body)
    with pytest.raises(DecodeError):
        await vbo.jobs()


async def test_a_single_resource_answering_an_array(fake: FakeVBO, vbo: VBOClient, seed: list[Any]) -> None:
    fake.route("GET", f"/v1/Jobs/{JOB_ID}", seed)
    with pytest.raises(DecodeError) as info:
        await vbo.job(JOB_ID)
    assert info.value.path == "$"


@pytest.mark.parametrize("wire", ["١٢", "²", "-", "1_000", " "])
def test_numeric_strings_are_ascii_decimal_only(wire: str) -> None:
    vbo = VBOClient("https://vbo.test:4443", username="u", password="p", api_version="v1")
    with pytest.raises(DecodeError, match=r"expected an integer") as info:
        vbo.from_wire({"id": "r", "capacity": wire}, BackupRepository)
    assert info.value.path == "$.capacity"


@pytest.mark.parametrize(
    ("text", "read"),
    [
        (b"9007199254740991.0", 9007199254740991),  # 2**53 - 1: every float below 2**53 is exact
        (b"-9007199254740991.0", -9007199254740991),
        (b"9007199254740992.0", None),  # 2**53 itself: also what 9007199254740993.0 parses to
        (b"9007199254740993.0", None),
        (b"1e300", None),
    ],
)
def test_a_float_is_an_integer_only_where_every_float_is_exact(text: bytes, read: int | None) -> None:
    """An integer field sent as a float is read only below 2**53: 9007199254740993.0 parses to
    2**53, and was read as 9007199254740992, one byte short, without a word."""
    vbo = VBOClient("https://vbo.test:4443", username="u", password="p", api_version="v1")
    wire = orjson.loads(b'{"id": "r", "capacity": ' + text + b"}")
    if read is None:
        with pytest.raises(DecodeError, match=r"expected an integer"):
            vbo.from_wire(wire, BackupRepository)
    else:
        assert vbo.from_wire(wire, BackupRepository).capacity == read


@pytest.mark.parametrize(("field", "opening", "closing"), [("name", "[", "]"), ("lastRun", '{"a":', "}")])
async def test_a_value_nested_too_deeply_to_quote_is_a_decode_error(
    fake: FakeVBO, vbo: VBOClient, field: str, opening: str, closing: str
) -> None:
    """orjson parses up to 1024 levels. Python 3.11's repr() gives up before 1000: the refused
    value is named, not quoted, instead of a bare RecursionError escaping the client; from 3.12
    repr() goes deeper, and the value is quoted, cut short, as any other."""
    nested = opening * 1000 + "1" + closing * 1000
    body = f'[{{"id": "j1", "{field}": {nested}}}]'.encode()
    fake.route(
        "GET", "/v1/Jobs", httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
    )
    with pytest.raises(DecodeError) as info:
        await vbo.jobs()
    assert info.value.path == f"$[0].{field}"
    message = str(info.value)
    quoted = opening.replace('"', "'").replace(":", ": ") * 5  # repr() of {"a": ...} is {'a': ...
    assert "nested too deeply to quote" in message or quoted in message
    assert len(message) < 300


def test_a_value_too_deep_for_repr_is_named_not_quoted() -> None:
    """The branch 3.11 takes for 1000 levels of nesting (see above), on every Python: a
    RecursionError from repr(), scrubbed or not, gives the message without the value."""

    class TooDeep:
        def __repr__(self) -> str:
            raise RecursionError("maximum recursion depth exceeded while getting the repr")

    error = WireValueError("expected a string, got list", value=TooDeep())
    assert str(error) == "expected a string, got list (nested too deeply to quote)"
    assert error.shown(scrub=str.upper) == "expected a string, got list (nested too deeply to quote)"


@pytest.mark.parametrize("wire", ["1e999", "-1e400", " 1E309 "])
def test_a_numeric_string_beyond_a_float_is_refused_like_an_infinite_number(wire: str) -> None:
    vbo = VBOClient("https://vbo.test:4443", username="u", password="p", api_version="v8")
    with pytest.raises(DecodeError, match=r"expected a finite number") as info:
        vbo.from_wire({"id": "p", "cpuUsagePercent": wire}, Proxy)
    assert info.value.path == "$.cpuUsagePercent"
    assert vbo.from_wire({"id": "p", "cpuUsagePercent": "1e308"}, Proxy).cpu_usage_percent == 1e308


def _allowed_hour(window: BackupWindow, when: dt.datetime) -> bool:
    """`BackupWindow.allows_at` as datetime arithmetic says (where it stays within the calendar)."""
    local = when.astimezone(UTC) + dt.timedelta(minutes=window.minute_offset or 0)
    return window.allows(day=(local.weekday() + 1) % 7, hour=local.hour)


@PROPERTY
@given(
    when=st.datetimes(
        min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=st.timezones()
    ),
    offset=st.integers(-(10**6), 10**6),
    flags=st.lists(st.booleans(), min_size=168, max_size=168),
)
def test_allows_at_reads_the_window_in_its_own_zone(
    when: dt.datetime, offset: int, flags: list[bool]
) -> None:
    window = BackupWindow(backup_intervals_array=tuple(flags), minute_offset=offset)
    assert window.allows_at(when) is _allowed_hour(window, when)


def test_a_window_built_with_a_list_hashes_and_equals_the_decoded_one(
    vbo: VBOClient, seed_job: dict[str, Any]
) -> None:
    """A window's flags may be any sequence of booleans (the field is a ``Sequence[bool]``): one
    built from a list is hashed and compared by its flags, so the window, its policy and its
    job go into sets and dict keys (``hash()`` was a bare TypeError: unhashable type 'list') and
    equal the decoded ones."""
    decoded = vbo.from_wire(seed_job, Job)
    assert decoded.schedule_policy is not None
    window = decoded.schedule_policy.backup_window
    assert window is not None
    flags = list(window.backup_intervals_array)
    by_hand = BackupWindow(backup_intervals_array=flags, minute_offset=window.minute_offset)
    policy = attrs.evolve(decoded.schedule_policy, backup_window=by_hand)
    job = attrs.evolve(decoded, schedule_policy=policy)
    assert by_hand == window
    assert hash(by_hand) == hash(window)
    assert hash(policy) == hash(decoded.schedule_policy)
    assert {job, decoded} == {decoded}
    assert {by_hand: "window"}[window] == "window"
    assert by_hand != BackupWindow(
        backup_intervals_array=[not flags[0], *flags[1:]], minute_offset=window.minute_offset
    )


@pytest.mark.parametrize("offset", [10**18, -(2**63), 2**64 - 1, 4_204_800_000, 10_080 * 10**9 + 61])
@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(2026, 6, 29, 6, 30, tzinfo=UTC),
        dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=5))),
        dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ],
)
def test_allows_at_with_any_offset_a_server_sends(offset: int, when: dt.datetime) -> None:
    """A window repeats every week: a server's minuteOffset counts modulo 10,080 minutes, and no
    offset (nor a moment at the ends of the calendar) makes allows_at overflow."""
    flags = [hour % 3 == 0 for hour in range(168)]
    window = BackupWindow(backup_intervals_array=tuple(flags), minute_offset=offset)
    same = BackupWindow(backup_intervals_array=tuple(flags), minute_offset=offset % 10_080)
    assert window.allows_at(when) is same.allows_at(when)
    moment = dt.datetime(2026, 6, 29, 6, 30, tzinfo=UTC)
    assert window.allows_at(moment) is _allowed_hour(same, moment)
