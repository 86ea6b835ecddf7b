"""Reproducible generation of simulated data from seeded ``random.Random`` instances (pure)."""

from __future__ import annotations

import random
import uuid

import attrs

from ._config import SimulatorConfig
from ._records import (
    DirectoryItem,
    Job,
    JobSession,
    License,
    LogEntry,
    Mailbox,
    ObjectStore,
    Organization,
    Proxy,
    Repository,
    Schedule,
)
from ._schedule import DAILY_TYPES, PERIODS, WINDOWS, next_run, run_interval
from ._wireformat import TICKS_PER_SECOND

__all__ = [
    "DIRECTORY_KINDS",
    "StorageUsage",
    "derived_rng",
    "detail_jobs",
    "detail_organizations",
    "detail_proxies",
    "detail_repositories",
    "exclude_mailboxes",
    "finish_session",
    "make_directory",
    "make_license",
    "make_mailbox_pool",
    "make_organizations",
    "make_proxies",
    "make_repositories",
    "make_sessions",
    "new_id",
    "select_mailboxes",
    "session_log",
    "start_session",
    "storage_usage",
]

_TENANTS = (
    "contoso", "fabrikam", "northwind", "adatum", "tailspin", "woodgrove", "litware",
    "proseware", "wingtip", "fourthcoffee", "alpineski", "margies", "lucerne", "treyresearch",
    "blueyonder", "coho", "humongous", "wideworld", "relecloud", "southridge",
)  # fmt: skip
_JOB_SUBJECTS = (
    "ABC", "Mail", "Executives", "Sales", "Finance", "All users", "HR", "Legal", "IT",
    "Shared mailboxes", "Archive", "Support", "Marketing", "Board",
)  # fmt: skip
_JOB_KINDS = ("Backup", "daily", "hourly", "job", "protection")
_DESCRIPTIONS = ("Daily Backups", "Nightly", "Hourly incremental", "Created by admin", "")
_FIRST = (
    "Alex", "Sam", "Maria", "John", "Priya", "Chen", "Fatima", "Lucas", "Olga", "Kenji",
    "Amara", "Noah", "Sofia", "Liam", "Zoe", "Ivan", "Mei", "Omar", "Nina", "Paul",
)  # fmt: skip
_LAST = (
    "Smith", "Garcia", "Müller", "Kowalski", "Nguyen", "Tanaka", "Okafor", "Rossi", "Dubois",
    "Johansson", "Silva", "Novak", "Patel", "Kim", "Cohen", "Larsen", "Costa", "Horvat",
)  # fmt: skip
_OFFSETS = (None, None, None, None, -420, -300, 60, 120, 330)
_FINAL_STATUSES = ("Success", "Warning", "Failed")
_FINAL_WEIGHTS = (0.7, 0.2, 0.1)
_MINUTE = 60 * TICKS_PER_SECOND
_DAY = 24 * 60 * _MINUTE
_RETRY_RATE = 0.6
"""How often a failed generated run (of a job with retries enabled) is followed by its retry."""


def derived_rng(seed: int, kind: str, index: int) -> random.Random:
    """An independent generator for one lazily generated part (e.g. a job's sessions)."""
    return random.Random(f"vbo-sim:{seed}:{kind}:{index}")


def new_id(rng: random.Random) -> str:
    """A lower-case GUID string drawn from `rng`."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_proxies(rng: random.Random, count: int, server_host: str) -> list[Proxy]:
    """`count` proxies; the first is the server itself (`server_host`), most are online."""
    domain = server_host.partition(".")[2] or "local"
    proxies = []
    for number in range(count):
        proxies.append(
            Proxy(
                id=new_id(rng),
                host_name=server_host if number == 0 else f"vbo-proxy{number:02d}.{domain}",
                description="Default proxy" if number == 0 else f"Remote proxy {number}",
                port=9193,
                threads=rng.choice((64, 32, 16)),
                throttling=rng.random() < 0.2,
                throttling_value=rng.choice((0, 100, 1024, 10240)),
                throttling_unit="KBs",
                status="Online" if number == 0 or rng.random() < 0.8 else "Offline",
            )
        )
    return proxies


def make_repositories(rng: random.Random, count: int, proxies: list[Proxy]) -> list[Repository]:
    """`count` repositories spread over the proxies."""
    repositories = []
    for number in range(count):
        capacity = rng.choice((500, 1000, 2000, 4000, 8000)) * 1024**3
        repositories.append(
            Repository(
                id=new_id(rng),
                name="Default Backup Repository" if number == 0 else f"Repository {number}",
                description="Created by Veeam Backup" if number == 0 else f"Backups volume {number}",
                proxy_id=proxies[number % len(proxies)].id,
                path="C:\\ProgramData\\Veeam\\Backup365"
                if number == 0
                else f"{'DEFGH'[number % 5]}:\\VeeamRepository{number}",
                retention_days=rng.choice((7, 14, 30, 90, 365)),
                daily_time=rng.choice(("08:00:00", "02:00:00", "23:30:00")),
                daily_type=rng.choice(("Weekends", "Everyday", "Sunday")),
                capacity=capacity,
                free_space=int(capacity * rng.uniform(0.05, 0.9)),
            )
        )
    return repositories


def _schedule(rng: random.Random) -> Schedule:
    periodic = rng.random() < 0.6
    window = WINDOWS[0] if rng.random() < 0.75 else rng.choice(WINDOWS[1:])
    return Schedule(
        type="Periodically" if periodic else "Daily",
        periodically_every=rng.choice(tuple(PERIODS)) if periodic else "Minutes5",
        daily_type="Everyday" if periodic else rng.choice(tuple(DAILY_TYPES)),
        daily_time="00:00:00" if periodic else f"{rng.choice((0, 1, 2, 20, 22, 23)):02d}:00:00",
        window=window,
        minute_offset=0 if window == "always" else rng.choice((0, 0, 60, -300, -420)),
        retry_enabled=rng.random() < 0.85,
        retry_number=rng.randint(1, 5),
        retry_wait=rng.choice((5, 10, 15, 30)),
    )


def _since_last_run(draw: int, schedule: Schedule, enabled: bool) -> int:
    """Ticks since a job's last run, from one draw in [5 min, 3 days]: an enabled job ran within
    its last scheduled interval nine times in ten, and otherwise (a broken job) one to five days
    ago; a disabled job stopped running one to five days ago. (One draw, as before, so the rest of
    a seed's data stays the same.)"""
    fraction = (draw - 5 * _MINUTE) / (3 * _DAY - 5 * _MINUTE)
    if enabled and fraction < 0.9:
        return 5 * _MINUTE + int(fraction / 0.9 * run_interval(schedule) * TICKS_PER_SECOND)
    return _DAY + int(((fraction - 0.9) / 0.1 if enabled else fraction) * 4 * _DAY)


def _make_job(
    rng: random.Random,
    config: SimulatorConfig,
    index: int,
    org_id: str,
    repos: list[Repository],
    now: int,
) -> Job:
    schedule = _schedule(rng)
    never_run = config.sessions_per_job[1] == 0 or rng.random() < 0.1
    enabled = rng.random() >= (0.5 if never_run else 0.12)
    last_run = None
    last_status = "Stopped"
    if not never_run:
        last_run = now - _since_last_run(rng.randint(5 * _MINUTE, 3 * _DAY), schedule, enabled)
        last_status = rng.choices(_FINAL_STATUSES, _FINAL_WEIGHTS)[0]
    repository = rng.choice(repos)
    return Job(
        index=index,
        id=new_id(rng),
        org_id=org_id,
        name=f"{rng.choice(_JOB_SUBJECTS)} {rng.choice(_JOB_KINDS)}",
        description=rng.choice(_DESCRIPTIONS),
        all_mailboxes=config.mailboxes_per_job[0] == 0 and rng.random() < 0.25,
        last_status=last_status,
        last_run=last_run,
        next_run=next_run(schedule, now) if enabled else None,
        enabled=enabled,
        schedule=schedule,
        repository_id=repository.id,
        proxy_id=repository.proxy_id,
        offset_minutes=rng.choice(_OFFSETS),
    )


def make_organizations(
    rng: random.Random, config: SimulatorConfig, repos: list[Repository], now: int
) -> tuple[list[Organization], list[Job]]:
    """The organizations and all their jobs (sessions and mailboxes are left for later).

    `now` is the simulated time in ticks: jobs last ran in the three days before it.
    """
    organizations: list[Organization] = []
    jobs: list[Job] = []
    used: dict[str, int] = {}
    low, high = config.jobs_per_organization
    for index in range(config.organizations):
        tenant = rng.choice(_TENANTS)
        used[tenant] = used.get(tenant, 0) + 1
        name = f"{tenant}{used[tenant] if used[tenant] > 1 else ''}.onmicrosoft.com"
        org = Organization(
            index=index, id=new_id(rng), name=name, username=f"admin@{name}", first_backup=None
        )
        org_jobs = [
            _make_job(rng, config, len(jobs) + number, org.id, repos, now)
            for number in range(rng.randint(low, high))
        ]
        runs = [job.last_run for job in org_jobs if job.last_run is not None]
        if runs:
            org.first_backup = min(runs) - rng.randint(30, 400) * _DAY
        org.job_ids = [job.id for job in org_jobs]
        organizations.append(org)
        jobs.extend(org_jobs)
    return organizations, jobs


def _blank_session(session_id: str, job: Job, creation: int, repository: Repository) -> JobSession:
    return JobSession(
        id=session_id,
        job_id=job.id,
        creation=creation,
        end=None,
        status="Running",
        progress=0,
        processing_bytes_ps=0,
        processing_items_ps=0,
        read_bytes_ps=0,
        write_bytes_ps=0,
        transferred_bytes=0,
        processed_objects=0,
        bottleneck="Detecting",
        offset_minutes=job.offset_minutes,
        repository_id=repository.id,
        proxy_id=repository.proxy_id,
        pool_id=repository.pool_id,
    )


def _complete(
    session: JobSession, rng: random.Random, config: SimulatorConfig, status: str, end: int
) -> None:
    """Fill in the outcome of a finished run: status, end, progress and statistics."""
    seconds = max((end - session.creation) / TICKS_PER_SECOND, 1.0)
    items = rng.randint(0, 5000)
    transferred = rng.randint(0, 2 * 1024**3) if items else 0
    rate = transferred / seconds
    session.status = status
    session.end = end
    session.progress = rng.randint(0, max(config.mailboxes_per_job[1], 1))
    session.processing_bytes_ps = int(rate)
    session.processing_items_ps = int(items / seconds)
    session.read_bytes_ps = int(rate * rng.uniform(0.8, 3.0))
    session.write_bytes_ps = int(rate * rng.uniform(0.5, 1.2))
    session.transferred_bytes = transferred
    session.processed_objects = items
    session.bottleneck = rng.choice(("Source", "Source", "Target", "NA"))
    session.etag += 1


def make_sessions(config: SimulatorConfig, job: Job, repository: Repository) -> list[JobSession]:
    """A job's generated history, newest first; the newest matches the job's last run.

    The oldest run is a full one. Some failed runs of jobs with retries enabled are followed by
    their retry (see `_link_retries`).
    """
    if job.last_run is None:
        return []
    rng = derived_rng(config.seed, "sessions", job.index)
    low, high = config.sessions_per_job
    count = max(1, rng.randint(low, high))
    interval = run_interval(job.schedule) * TICKS_PER_SECOND
    sessions = []
    creation = job.last_run
    for number in range(count):
        if number:
            creation -= interval + rng.randint(0, _MINUTE)
        session = _blank_session(new_id(rng), job, creation, repository)
        status = job.last_status if number == 0 else rng.choices(_FINAL_STATUSES, _FINAL_WEIGHTS)[0]
        end = creation + int(rng.uniform(15.0, 240.0) * TICKS_PER_SECOND)
        _complete(session, rng, config, status, end)
        sessions.append(session)
    sessions[-1].full = True
    _link_retries(sessions, job.schedule, derived_rng(config.seed, "retries", job.index))
    return sessions


def _link_retries(sessions: list[JobSession], schedule: Schedule, rng: random.Random) -> None:
    """Turn some runs that follow a failed one into its retry (newest-first `sessions`).

    The failed run gets ``will_retry``; its successor gets the next ``retry_count`` and the
    chain's first run as ``main_session_id``, and starts `retry_wait` minutes after the
    failure when that is earlier than its scheduled start (the newest run keeps its time,
    which is the job's ``lastRun``).
    """
    if not schedule.retry_enabled:
        return
    for index in range(len(sessions) - 1, 0, -1):
        failed, retry = sessions[index], sessions[index - 1]
        if failed.status != "Failed" or failed.retry_count >= schedule.retry_number:
            continue
        if rng.random() >= _RETRY_RATE:
            continue
        failed.will_retry = True
        retry.retry_count = failed.retry_count + 1
        retry.main_session_id = failed.main_session_id or failed.id
        assert failed.end is not None
        assert retry.end is not None
        earliest = failed.end + schedule.retry_wait * _MINUTE
        if index - 1 > 0 and earliest < retry.creation:
            shift = retry.creation - earliest
            retry.creation -= shift
            retry.end -= shift


def start_session(
    config: SimulatorConfig, job: Job, now: int, started_at: float, repository: Repository, *, full: bool
) -> JobSession:
    """A new ``Running`` session for the job's next run (ids stay reproducible)."""
    session_id = new_id(derived_rng(config.seed, f"run:{job.runs}", job.index))
    session = _blank_session(session_id, job, now, repository)
    session.started_at = started_at
    session.full = full
    return session


def finish_session(config: SimulatorConfig, job: Job, session: JobSession, end: int) -> None:
    """Settle a running session into Success/Warning/Failed (a seeded choice)."""
    rng = derived_rng(config.seed, f"finish:{job.runs}", job.index)
    status = rng.choices(_FINAL_STATUSES, _FINAL_WEIGHTS)[0]
    _complete(session, rng, config, status, end)
    session.started_at = None


def make_mailbox_pool(config: SimulatorConfig, org: Organization) -> list[Mailbox]:
    """The mailboxes of an organization that jobs pick their selections from."""
    rng = derived_rng(config.seed, "mailboxes", org.index)
    high = config.mailboxes_per_job[1]
    domain = org.name
    seen: dict[str, int] = {}
    pool = []
    for _ in range(high + rng.randint(0, high // 4 + 1)):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        local = f"{first}.{last}".lower().replace("ü", "ue")
        seen[local] = seen.get(local, 0) + 1
        if seen[local] > 1:
            local += str(seen[local])
        mailbox_id = new_id(rng)
        backed_up = rng.random() < 0.9  # drawn always, so the next ids do not depend on the state
        pool.append(
            Mailbox(
                id=mailbox_id,
                org_id=org.id,
                email=f"{local}@{domain}",
                name=f"{first} {last}",
                backed_up=org.first_backup is not None and backed_up,
            )
        )
    return pool


DIRECTORY_KINDS = ("users", "groups", "sites", "teams")
"""The collections of an organization's directory, as its ``_links`` name them (v6+)."""

_UNITS = ("Finance", "Sales", "Marketing", "Engineering", "Support", "Legal", "Operations", "Research")


def make_directory(org: Organization, mailboxes: list[Mailbox], seed: int) -> dict[str, list[DirectoryItem]]:
    """An organization's users (its mailboxes), and 2 to 4 groups, sites and teams each, drawn
    from a generator derived from `seed` and the organization (the same on every run)."""
    rng = derived_rng(seed, "directory", org.index)
    tenant = org.name.partition(".")[0]
    directory = {"users": [DirectoryItem("users", m.id, org.id, m.email, m.name, m.email) for m in mailboxes]}
    for kind in DIRECTORY_KINDS[1:]:
        items = []
        for unit in rng.sample(_UNITS, rng.randint(2, 4)):
            slug = f"{unit.lower()}-{kind[:-1]}"
            address = (
                f"https://{tenant}.sharepoint.com/sites/{slug}" if kind == "sites" else f"{slug}@{org.name}"
            )
            items.append(DirectoryItem(kind, new_id(rng), org.id, slug, f"{unit} {kind[:-1]}", address))
        directory[kind] = items
    return directory


def select_mailboxes(config: SimulatorConfig, job: Job, pool: list[Mailbox]) -> list[str]:
    """The ids of a job's selected mailboxes (none when it backs up all mailboxes)."""
    if job.all_mailboxes:
        return []
    rng = derived_rng(config.seed, "selection", job.index)
    low, high = config.mailboxes_per_job
    count = min(rng.randint(low, high), len(pool))
    return [mailbox.id for mailbox in rng.sample(pool, count)]


def exclude_mailboxes(config: SimulatorConfig, job: Job, pool: list[Mailbox]) -> list[str]:
    """The ids of the mailboxes a job that backs up all mailboxes leaves out (0 to 3 of them)."""
    if not job.all_mailboxes or not pool:
        return []
    rng = derived_rng(config.seed, "exclusion", job.index)
    count = min(rng.randint(0, 3), len(pool))
    return [mailbox.id for mailbox in rng.sample(pool, count)]


# -- details only v6+ shows, drawn from their own generators so v1 data stays as it was --------


def detail_proxies(config: SimulatorConfig, proxies: list[Proxy]) -> None:
    """Type, operating system, maintenance state and load of each proxy."""
    rng = derived_rng(config.seed, "proxy-details", 0)
    for number, proxy in enumerate(proxies):
        proxy.kind = "Local" if number == 0 else rng.choice(("Domain", "Domain", "Workgroup"))
        proxy.operating_system = "Windows" if number == 0 or rng.random() < 0.7 else "Linux"
        proxy.maintenance = "Enabled" if number > 0 and rng.random() < 0.15 else "Disabled"
        proxy.cpu_percent = round(rng.uniform(1.0, 95.0), 1)
        proxy.memory_percent = round(rng.uniform(10.0, 90.0), 1)


def detail_repositories(config: SimulatorConfig, repositories: list[Repository]) -> None:
    """Sync and retention kind of each repository; with 3 or more, the last is in a proxy pool."""
    rng = derived_rng(config.seed, "repository-details", 0)
    for repository in repositories:
        repository.out_of_sync = rng.random() < 0.15
        repository.snapshot_based = rng.random() < 0.3
    if len(repositories) >= 3:
        repositories[-1].pool_id = new_id(rng)
    # Drawn from a generator of their own, so that the details above stay what they were.
    stores = derived_rng(config.seed, "object-storage", 0)
    for number, repository in enumerate(repositories):
        if number % 2 == 0:  # every other one, the first kept on disk
            continue
        limit = stores.choice((None, 10_240, 51_200))
        repository.object_store = ObjectStore(
            id=new_id(stores),
            name=f"vb365-backups-{number}",
            type=stores.choice(("AmazonS3", "AzureBlob", "AmazonS3Compatible")),  # what v6 already knows
            used=stores.randrange(50, 4_000) * 1024**3,
            limit_gb=limit,
            immutable_days=stores.choice((None, 30, 90)),
        )


def detail_organizations(config: SimulatorConfig, organizations: list[Organization]) -> None:
    """Tenant id, backup application and the services each organization backs up."""
    for org in organizations:
        rng = derived_rng(config.seed, "organization-details", org.index)
        org.msid = new_id(rng)
        org.application_id = new_id(rng)
        org.sharepoint = rng.random() < 0.8
        org.teams = rng.random() < 0.6
        org.teams_chats = org.teams and rng.random() < 0.3
        org.description = rng.choice(("", "", f"Tenant {org.name}", "Managed by the service desk"))


def detail_jobs(config: SimulatorConfig, jobs: list[Job]) -> None:
    """Each job's change counter, and a backup copy job for about one job in eight."""
    for job in jobs:
        rng = derived_rng(config.seed, "job-details", job.index)
        job.etag = rng.randint(1, 500)
        job.copy_job_id = new_id(rng) if rng.random() < 0.125 else None


def make_license(config: SimulatorConfig, now: int) -> License:
    """The server's subscription license, valid for months after `now`."""
    rng = derived_rng(config.seed, "license", 0)
    expires = now - now % _DAY + rng.randint(30, 700) * _DAY
    return License(
        id=new_id(rng),
        email=f"licensing@{_host_domain(config.advertised_host)}",
        licensed_to=rng.choice(("Contoso Managed Services", "Fabrikam Cloud Backup", "Northwind IT")),
        contact=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
        support_id=str(rng.randint(10_000_000, 99_999_999)),
        kind="Subscription",
        package="Backup",
        total=rng.choice((500, 1000, 2500, 5000, 10_000)),
        expires=expires,
        grace_expires=expires + 30 * _DAY,
        support_expires=expires,
    )


def _host_domain(advertised_host: str) -> str:
    host = advertised_host.rsplit(":", 1)[0] if advertised_host.count(":") == 1 else advertised_host
    return host.partition(".")[2] or "local"


@attrs.frozen
class StorageUsage:
    """What one organization's backups take in one repository (v6+ ``usedRepositories``)."""

    org_id: str
    repository_id: str
    used_bytes: int
    local_cache_bytes: int | None
    protected_objects: int


def storage_usage(
    config: SimulatorConfig, org: Organization, repository_ids: list[str]
) -> list[StorageUsage]:
    """An organization's usage of each repository its jobs write to (in the order given)."""
    rng = derived_rng(config.seed, "usage", org.index)
    return [
        StorageUsage(
            org_id=org.id,
            repository_id=repository_id,
            used_bytes=rng.randint(1, 800) * 1024**3 + rng.randint(0, 1024**3),
            local_cache_bytes=None,
            protected_objects=rng.randint(1, 400),
        )
        for repository_id in repository_ids
    ]


_LOG_ENDINGS = {
    "Success": ("Success", "Job finished successfully"),
    "Warning": ("Warning", "Job finished with warnings"),
    "Failed": ("Error", "Job failed"),
    "Stopped": ("Stop", "Job stopped by user"),
}
"""A finished run's status -> the kind (v8 ``type``) and text of its log's last line."""


def session_log(session: JobSession, mailboxes: list[Mailbox]) -> list[LogEntry]:
    """The log of one run (pure): its start, and once it has ended one line per mailbox it
    processed and one saying how it ended, spread over the run in order; a running run has
    its start alone. Ids are derived from the session's, so the log reads the same every time."""
    if session.end is None:
        lines: list[tuple[str, str, str | None]] = [("Running", "Job started", None)]
    else:
        kind, text = _LOG_ENDINGS.get(session.status, ("Warning", f"Job finished: {session.status}"))
        lines = [
            ("Success", "Job started", None),
            *(("Success", f"Processing mailbox: {mailbox.email}", None) for mailbox in mailboxes),
            (kind, text, session.status),
        ]
    end = session.creation if session.end is None else session.end
    step = (end - session.creation) // max(len(lines) - 1, 1)
    moments = [session.creation + number * step for number in range(len(lines))]
    namespace = uuid.UUID(session.id)
    return [
        LogEntry(
            id=str(uuid.uuid5(namespace, f"log:{number}")),
            usn=number + 1,
            creation=moments[number],
            end=moments[number + 1] if number + 1 < len(lines) else end,
            kind=kind,
            text=text,
            outcome=outcome,
        )
        for number, (kind, text, outcome) in enumerate(lines)
    ]
