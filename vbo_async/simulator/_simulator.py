"""`Simulator`: the seeded, stateful model of a VBO/VB365 server that the ASGI app serves."""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs

from vbo_async._exceptions import ConfigError

from ._config import SimulatorConfig, check_int, check_text
from ._errors import SimulatedError
from ._filters import (
    LOG_ITEM_TYPES,
    SessionFilter,
    directory_matcher,
    parse_enum,
    parse_uuid,
    time_text,
)
from ._generate import (
    DIRECTORY_KINDS,
    derived_rng,
    detail_jobs,
    detail_organizations,
    detail_proxies,
    detail_repositories,
    exclude_mailboxes,
    finish_session,
    make_directory,
    make_license,
    make_mailbox_pool,
    make_organizations,
    make_proxies,
    make_repositories,
    make_sessions,
    new_id,
    select_mailboxes,
    session_log,
    start_session,
    storage_usage,
)
from ._paging import check_window, relative_page
from ._records import DirectoryItem, Job, JobSession, Mailbox, Organization, Proxy, Repository
from ._schedule import next_run, previous_run
from ._stats import SimulatorStats, TokenRequest
from ._throttle import TokenThrottle
from ._tokens import TokenStore
from ._version import ApiVersion
from ._versions import VERSIONS, newest
from ._views import (
    CopyJobView,
    JobItemView,
    JobView,
    LicenseView,
    OrganizationView,
    ProxyView,
    ServerInfo,
    Wire,
)
from ._wire import mailbox_wire
from ._wireformat import TICKS_PER_SECOND, epoch_ticks

__all__ = ["JOB_ACTIONS", "Simulator"]

JOB_ACTIONS = ("start", "stop", "enable", "disable")
"""The job actions: v1 ``POST /Jobs/{id}/Action`` verbs, v6+ ``POST /Jobs/{id}/{verb}``."""

Body = Any
"""What an endpoint answers: a JSON object, or a list for bare-array answers."""

_T = TypeVar("_T")

_MOST_SESSIONS_KEPT = 1_000
"""The most sessions a job keeps with `SimulatorConfig.run_schedules`, the oldest dropped (as a
server's retention does): a job every 5 minutes runs 288 times a day, for as long as the
simulator runs."""


def _page(items: Sequence[_T], offset: int, limit: int | None) -> Sequence[_T]:
    return items[offset:] if limit is None else items[offset : offset + limit]


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


class Simulator:
    """The state of one simulated server, generated reproducibly from ``config.seed``.

    Holds organizations, jobs, repositories, proxies, job sessions and mailboxes (sessions and
    mailboxes are generated per job on first use, from a generator derived from the seed and
    the job's index, so they do not depend on access order), the issued tokens and `stats`.
    Time is read from `clock` (``time.monotonic`` unless injected): token expiry, the token
    throttle and the ``Running`` → finished transition of started jobs follow it, and the
    simulated wall time starts at ``config.epoch`` (or the real now) when the simulator is built.

    One state is shown through every served version (``config.api_versions``). The ``*_wire``
    methods take the version (``version="v1"`` unless said otherwise) and return exactly the
    JSON that version's endpoint sends, so tests can compare a client's results with them.
    Unknown ids raise `SimulatedError` (404), and so does asking a version for an endpoint it
    does not have or a version that is not served; bad parameters raise it with 400.
    """

    def __init__(
        self, config: SimulatorConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if config is not None and not isinstance(config, SimulatorConfig):
            raise ConfigError(f"config must be a SimulatorConfig or None, got {type(config).__name__}")
        if not callable(clock):
            raise ConfigError(f"clock must be a callable returning seconds, got {type(clock).__name__}")
        self.config: SimulatorConfig = config if config is not None else SimulatorConfig()
        self.clock: Callable[[], float] = clock
        self.stats: SimulatorStats = SimulatorStats()
        self.epoch_ticks: int = epoch_ticks(self.config.epoch)
        """The simulated wall time when the simulator was built (ticks since the Unix epoch)."""
        self.tokens: TokenStore = TokenStore(
            clock, self.config.token_lifetime, self._wall_seconds, self.config.refresh_token_lifetime
        )
        self.fault_rng: random.Random = random.Random(self.config.faults.fault_seed)
        """Draws every fault decision; owned by this instance so runs are reproducible."""
        self.last_revocation: float = time.monotonic()
        """When `Faults.revoke_every` last revoked tokens (``time.monotonic`` seconds)."""
        self._started = clock()
        self._throttle = TokenThrottle(self.config.token_quota)
        rng = random.Random(self.config.seed)
        proxies = make_proxies(rng, self.config.proxies, _host_name(self.config.advertised_host))
        repositories = make_repositories(rng, self.config.repositories, proxies)
        organizations, jobs = make_organizations(rng, self.config, repositories, self.epoch_ticks)
        detail_proxies(self.config, proxies)
        detail_repositories(self.config, repositories)
        detail_organizations(self.config, organizations)
        detail_jobs(self.config, jobs)
        self._proxies = {proxy.id: proxy for proxy in proxies}
        self._repositories = {repository.id: repository for repository in repositories}
        self._organizations = {org.id: org for org in organizations}
        self._jobs = {job.id: job for job in jobs}
        self._sessions: dict[str, JobSession] = {}
        self._all_sessions_generated = False
        self._running: dict[str, Job] = {}
        self._due: list[tuple[int, int, str]] = []
        """With `SimulatorConfig.run_schedules`: a heap of (``nextRun`` in ticks, a tie-break,
        job id), one entry each time a job's next run is set; an entry whose time is no longer
        the job's ``nextRun`` (disabled, run by hand meanwhile) is dropped when it comes up."""
        self._planned = itertools.count()
        for job in jobs:
            self._plan(job)
        self._license = make_license(self.config, self.epoch_ticks)
        newest_served = newest(self.config.api_versions)
        self._server = ServerInfo(
            installation_id=new_id(derived_rng(self.config.seed, "installation", 0)),
            build=newest_served.build,
        )

    # -- versions, time, tokens and stats ---------------------------------------------------

    @property
    def base_url(self) -> str:
        """The prefix of every v1 href: ``https://{advertised_host}/v1``, or the config's
        ``link_origin`` followed by ``/v1``."""
        return self.config.base_url

    def api_version(self, version: str) -> ApiVersion:
        """The served `ApiVersion` named `version`; 404 `SimulatedError` if it is not served."""
        name = version.lower()
        if name not in self.config.api_versions:
            raise SimulatedError(404, f"No HTTP resource was found that matches API version '{version}'.")
        return VERSIONS[name]

    def _base(self, spec: ApiVersion) -> str:
        return f"{self.config.origin}/{spec.name}" if spec.absolute_links else f"/{spec.name}"

    def now(self) -> int:
        """The simulated wall time in 100-ns ticks since the Unix epoch."""
        return self.epoch_ticks + int((self.clock() - self._started) * TICKS_PER_SECOND)

    def _wall_seconds(self) -> float:
        return self.now() / TICKS_PER_SECOND

    def reset_stats(self) -> None:
        """Start counting from zero."""
        self.stats = SimulatorStats()

    def revoke_tokens(self, *, refresh_tokens: bool = False) -> int:
        """Invalidate every issued access token (and refresh token if asked); how many."""
        return self.tokens.revoke(refresh_tokens=refresh_tokens)

    def password_grant(self, username: str, password: str) -> dict[str, object]:
        """The token endpoint's answer to ``grant_type=password`` (v1 form)."""
        if username != self.config.username or password != self.config.password:
            raise _invalid_grant("The user name or password is incorrect.")
        return self.tokens.issue(username)

    def refresh_grant(self, refresh_token: str) -> dict[str, object]:
        """The token endpoint's answer to ``grant_type=refresh_token`` (single use; v1 form)."""
        username = self.tokens.redeem(refresh_token)
        if username is None:
            raise _invalid_grant("The refresh token is invalid, expired or already used.")
        return self.tokens.issue(username)

    def token(self, form: Mapping[str, str], *, version: str = "v1") -> Wire:
        """``POST /vN/Token`` with the fields in `form`: the answer, or a `SimulatedError`.

        Every call is recorded in `stats` (field names and ``disable_antiforgery_token``, never
        values that are secrets). v6+ applies WebApiThrottle's per-user limits of
        ``config.token_quota`` when `Faults.token_throttle` is on (429 with ``Retry-After``
        seconds and no body, see `_throttle_token`); v7+ refuses a refresh grant without
        ``disable_antiforgery_token=true`` with 400, as the servers require.
        """
        spec = self.api_version(version)
        grant = form.get("grant_type", "")
        status = 200
        try:
            self._throttle_token(spec, form)
            return spec.token(self._grant(spec, grant, form))
        except SimulatedError as error:
            status = error.status_code
            raise
        finally:
            self.stats.record_token_request(
                TokenRequest(
                    version=spec.name,
                    grant_type=grant,
                    form_keys=tuple(sorted(form)),
                    disable_antiforgery_token=form.get("disable_antiforgery_token"),
                    status=status,
                )
            )

    def _grant(self, spec: ApiVersion, grant: str, form: Mapping[str, str]) -> dict[str, object]:
        if grant == "password":
            return self.password_grant(form.get("username", ""), form.get("password", ""))
        if grant == "refresh_token":
            flag = form.get("disable_antiforgery_token", "").strip().lower()
            if spec.refresh_needs_antiforgery_flag and flag != "true":
                raise _oauth_error(
                    "invalid_request",
                    "The antiforgery token is required to refresh an access token "
                    "(or send disable_antiforgery_token=true).",
                )
            return self.refresh_grant(form.get("refresh_token", ""))
        if not grant:
            raise _oauth_error("invalid_request", "The grant_type parameter is missing.")
        raise _oauth_error("unsupported_grant_type", f"Grant type '{grant}' is not supported.")

    def _throttle_token(self, spec: ApiVersion, form: Mapping[str, str]) -> None:
        """WebApiThrottle's limits per user name on the v6+ token endpoint: `TokenThrottle` with
        ``config.token_quota`` (a request a second, 5 a minute, 1500 an hour by default).

        A refresh grant counts against its refresh token's holder; a request naming no user (a
        refresh token unknown, used or expired, no ``username``) is not counted. A request beyond
        a limit is answered 429 with the ``Retry-After`` WebApiThrottle names (1 for the second's
        limit, else the seconds left of the period's window) and no body, before its grant is
        looked at.
        """
        if not (spec.token_throttle and self.config.faults.token_throttle):
            return
        if form.get("grant_type") == "refresh_token":
            username = self.tokens.holder(form.get("refresh_token", ""))
        else:
            username = form.get("username")
        if not username:
            return
        retry_after = self._throttle.retry_after(username, self.clock())
        if retry_after is not None:
            self.stats.faults["token_throttle"] += 1
            raise SimulatedError(
                429, "Quota Exceeded", empty_body=True, headers={"Retry-After": str(retry_after)}
            )

    def authenticate(self, authorization: str | None, *, version: str = "v1") -> str:
        """Check an ``Authorization`` header; the access token, or the version's 401 `SimulatedError`.

        v1 answers with `SimulatorConfig.unauthorized_body`; v6+ with an empty body.
        """
        spec = self.api_version(version)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and self.tokens.is_valid(token.strip()):
            return token.strip()
        self.stats.unauthorized += 1
        raise SimulatedError(
            401,
            "Authorization has been denied for this request.",
            empty_body=spec.empty_unauthorized or self.config.unauthorized_body == "empty",
            headers={"WWW-Authenticate": "Bearer"},
        )

    def log_out(self, authorization: str | None, *, version: str) -> int:
        """``POST /vN/token/logout``: revoke the bearer's access token and its refresh token.

        Returns the status the version answers with (v7 200, v8 204); 404 where there is none.
        """
        spec = self.api_version(version)
        if spec.logout_status is None:
            raise _no_resource(f"/{spec.name}/token/logout")
        token = self.authenticate(authorization, version=version)
        self.tokens.log_out(token)
        self.stats.logouts[spec.name] += 1
        return spec.logout_status

    # -- job runs -----------------------------------------------------------------------------

    def _plan(self, job: Job) -> None:
        """With `SimulatorConfig.run_schedules`, run ``job`` at its ``nextRun`` (`settle`)."""
        if self.config.run_schedules and job.enabled and job.next_run is not None:
            heapq.heappush(self._due, (job.next_run, next(self._planned), job.id))

    def _run_due(self) -> None:
        """Start the runs whose scheduled time has come (`SimulatorConfig.run_schedules`), each
        at the latest time it was due: a simulator nobody asked anything for a day runs a
        periodic job once, not for every period missed. A job still running when its time
        comes skips that run, as the server's scheduler does."""
        now = self.now()
        while self._due and self._due[0][0] <= now:
            due, _, job_id = heapq.heappop(self._due)
            job = self._jobs.get(job_id)
            if job is None or not job.enabled or job.next_run != due:
                continue  # deleted, disabled, or rescheduled since this entry was made
            if job.running is not None:
                job.next_run = next_run(job.schedule, now)
                self._plan(job)
                continue
            latest = max(due, previous_run(job.schedule, now))
            clock_at = self._started + (latest - self.epoch_ticks) / TICKS_PER_SECOND
            self._start_run(job, latest, clock_at, full=False)
            job.next_run = next_run(job.schedule, latest)  # shown while it runs, as a server does
            self._plan(job)
            job.etag += 1

    def _start_run(self, job: Job, at: int, clock_at: float, *, full: bool) -> JobSession:
        """A ``Running`` session of ``job`` begun at ``at`` (ticks; ``clock_at`` on the clock)."""
        repository = self._repositories[job.repository_id]
        session = start_session(self.config, job, at, clock_at, repository, full=full)
        job.runs += 1
        sessions = self._job_sessions(job)
        sessions.insert(0, session)
        self._sessions[session.id] = session
        if self.config.run_schedules:
            while len(sessions) > _MOST_SESSIONS_KEPT:
                self._sessions.pop(sessions.pop().id, None)
        job.running = session
        job.last_status = "Running"
        job.last_run = at
        self._running[job.id] = job
        return session

    def settle(self) -> None:
        """Finish every started run whose `session_duration` has elapsed on the clock, and start
        the scheduled runs that are due (`SimulatorConfig.run_schedules`): those finished first,
        so that a run long over is not taken for one still going (its job would skip its turn),
        then again, for a run started at a time long past."""
        self._finish_ended()
        if self._due:
            self._run_due()
            self._finish_ended()

    def _finish_ended(self) -> None:
        if not self._running:
            return
        elapsed_now = self.clock()
        duration = self.config.session_duration
        for job in list(self._running.values()):
            session = job.running
            assert session is not None
            assert session.started_at is not None
            if elapsed_now - session.started_at < duration:
                continue
            end = session.creation + int(duration * TICKS_PER_SECOND)
            finish_session(self.config, job, session, end)
            job.last_status = session.status
            job.running = None
            job.etag += 1
            del self._running[job.id]
            if job.enabled:
                job.next_run = next_run(job.schedule, end)
                self._plan(job)
            org = self._organizations[job.org_id]
            if org.first_backup is None:
                org.first_backup = session.creation

    def job_action(self, job_id: str, action: str, *, full: bool = False) -> str | None:
        """Apply ``start``/``stop``/``enable``/``disable``; invalid transitions raise 400.

        Returns the id of the session a ``start`` began (a full run when `full`), else None.
        """
        self.settle()
        job = self._job(job_id)
        now = self.now()
        started = None
        if action == "start":
            if job.running is not None:
                raise SimulatedError(400, f"Job '{job.name}' is already running.")
            if not job.enabled:
                raise SimulatedError(400, f"Job '{job.name}' is disabled.")
            started = self._start_run(job, now, self.clock(), full=full).id
        elif action == "stop":
            if job.running is None:
                raise SimulatedError(400, f"Job '{job.name}' is not running.")
            job.running.status = "Stopped"
            job.running.end = now
            job.running.started_at = None
            job.running.etag += 1
            job.running = None
            del self._running[job.id]
            job.last_status = "Stopped"
        elif action == "enable":
            job.enabled = True
            job.next_run = next_run(job.schedule, now)
            self._plan(job)
        elif action == "disable":
            job.enabled = False
            job.next_run = None
        else:
            raise SimulatedError(400, f"Unknown job action '{action}'.")
        job.etag += 1
        self.stats.job_actions[(job.id, action)] += 1
        return started

    # -- changes made on the server (as an administrator makes them) ----------------------------
    # Each refuses a value no server holds with a `ConfigError` naming the argument, as
    # `SimulatorConfig` does: a float of free bytes or a numeric name was served as given.

    def rename_repository(self, repository_id: str, name: str) -> None:
        """Rename a backup repository (a non-empty string)."""
        check_text("name", name)
        self._repository(repository_id).name = name

    def set_out_of_order(self, repository_id: str, reason: str | None) -> None:
        """Take a backup repository out of service for ``reason`` (v8 shows ``isOutOfOrder``
        and ``outOfOrderReason``, which a server may leave empty), or put it back in order with None."""
        if reason is not None and not isinstance(reason, str):
            raise ConfigError(f"reason must be None or a string, got {reason!r}")
        self._repository(repository_id).out_of_order = reason

    def set_free_space(self, repository_id: str, free_space: int) -> None:
        """Set how many bytes of a backup repository are free (its disk filling up, or freed):
        an int from 0 to its capacity."""
        check_int("free_space", free_space, 0)
        repository = self._repository(repository_id)
        if free_space > repository.capacity:
            raise ConfigError(
                f"free_space must be from 0 to the capacity {repository.capacity}, got {free_space!r}"
            )
        repository.free_space = free_space

    def set_proxy_status(self, proxy_id: str, status: str, *, maintenance: str | None = None) -> None:
        """Set a backup proxy's ``status`` (``Online``, ``Offline``, or whatever a server may
        say) and, given, its v8 ``maintenanceModeState`` (``Disabled``, ``Enabling``, ``Enabled``);
        both non-empty strings."""
        check_text("status", status)
        check_text("maintenance", maintenance, optional=True)
        proxy = self._proxy(proxy_id)
        proxy.status = status
        if maintenance is not None:
            proxy.maintenance = maintenance

    def set_retries(self, job_id: str, number: int) -> None:
        """Change a job's schedule: how many times a failed run is retried (an int >= 0)."""
        check_int("number", number, 0)
        job = self._job(job_id)
        job.schedule = attrs.evolve(job.schedule, retry_number=number)
        job.etag += 1

    def delete_job(self, job_id: str) -> None:
        """Delete a job with its runs."""
        job = self._job(job_id)
        del self._jobs[job.id]
        self._org(job.org_id).job_ids.remove(job.id)
        self._running.pop(job.id, None)
        for session in job.sessions or ():
            self._sessions.pop(session.id, None)

    def copy_job(self, job_id: str, *, name: str, repository_id: str | None = None) -> str:
        """Create a job of the same organization and schedule as ``job_id`` (backing up to
        ``repository_id``, or to the same repository), with a new id and runs of its own; its id."""
        check_text("name", name)
        check_text("repository_id", repository_id, optional=True)
        job = self._job(job_id)
        if repository_id is not None and repository_id.lower() not in self._repositories:
            raise SimulatedError.not_found("Backup repository", repository_id)
        index = max(other.index for other in self._jobs.values()) + 1
        copy = attrs.evolve(
            job,
            index=index,
            id=new_id(derived_rng(self.config.seed, "copied job", index)),
            name=name,
            repository_id=job.repository_id if repository_id is None else repository_id.lower(),
            copy_job_id=None,
            runs=0,
            sessions=None,
            mailbox_ids=None,
            excluded_ids=None,
            running=None,
        )
        self._jobs[copy.id] = copy
        self._org(job.org_id).job_ids.append(copy.id)
        self._all_sessions_generated = False
        self._plan(copy)
        return copy.id

    # -- lookups ------------------------------------------------------------------------------

    def organization_ids(self) -> list[str]:
        """Organization ids in server order."""
        return list(self._organizations)

    def job_ids(self) -> list[str]:
        """Job ids in server order (grouped by organization)."""
        return list(self._jobs)

    def repository_ids(self) -> list[str]:
        """Backup repository ids in server order."""
        return list(self._repositories)

    def proxy_ids(self) -> list[str]:
        """Proxy ids in server order."""
        return list(self._proxies)

    def _org(self, org_id: str) -> Organization:
        org = self._organizations.get(org_id.lower())
        if org is None:
            raise SimulatedError.not_found("Organization", org_id)
        return org

    def _repository(self, repository_id: str) -> Repository:
        repository = self._repositories.get(repository_id.lower())
        if repository is None:
            raise SimulatedError.not_found("Backup repository", repository_id)
        return repository

    def _proxy(self, proxy_id: str) -> Proxy:
        proxy = self._proxies.get(proxy_id.lower())
        if proxy is None:
            raise SimulatedError.not_found("Proxy", proxy_id)
        return proxy

    def _job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id.lower())
        if job is None:
            raise SimulatedError.not_found("Job", job_id)
        return job

    def _job_sessions(self, job: Job) -> list[JobSession]:
        if job.sessions is None:
            job.sessions = make_sessions(self.config, job, self._repositories[job.repository_id])
            self._sessions.update((session.id, session) for session in job.sessions)
        return job.sessions

    def _all_sessions(self) -> list[JobSession]:
        sessions = [s for job in self._jobs.values() for s in self._job_sessions(job)]
        self._all_sessions_generated = True
        return sessions

    def _session(self, session_id: str) -> JobSession:
        session = self._sessions.get(session_id.lower())
        if session is None and not self._all_sessions_generated:
            self._all_sessions()
            session = self._sessions.get(session_id.lower())
        if session is None:
            raise SimulatedError.not_found("Job session", session_id)
        return session

    def _mailboxes(self, org: Organization) -> dict[str, Mailbox]:
        if org.mailboxes is None:
            org.mailboxes = {m.id: m for m in make_mailbox_pool(self.config, org)}
        return org.mailboxes

    def _directory(self, org: Organization, kind: str) -> list[DirectoryItem]:
        """The organization's `kind` of directory items (404 for a kind it has none of)."""
        if kind not in DIRECTORY_KINDS:
            raise _no_resource(f"/Organizations/{org.id}/{kind}")
        if org.directory is None:
            org.directory = make_directory(org, list(self._mailboxes(org).values()), self.config.seed)
        return org.directory[kind]

    def _selected(self, job: Job) -> list[Mailbox]:
        pool = self._mailboxes(self._organizations[job.org_id])
        if job.mailbox_ids is None:
            job.mailbox_ids = select_mailboxes(self.config, job, list(pool.values()))
        return [pool[mailbox_id] for mailbox_id in job.mailbox_ids]

    def _excluded(self, job: Job) -> list[Mailbox]:
        pool = self._mailboxes(self._organizations[job.org_id])
        if job.excluded_ids is None:
            job.excluded_ids = exclude_mailboxes(self.config, job, list(pool.values()))
        return [pool[mailbox_id] for mailbox_id in job.excluded_ids]

    def _processed(self, job: Job) -> list[Mailbox]:
        """The mailboxes a run of the job backs up: its selection, or (a job of all mailboxes)
        the organization's less those it excludes."""
        if not job.all_mailboxes:
            return self._selected(job)
        excluded = {mailbox.id for mailbox in self._excluded(job)}
        pool = self._mailboxes(self._organizations[job.org_id]).values()
        return [mailbox for mailbox in pool if mailbox.id not in excluded]

    def _last_backup(self, job: Job) -> int | None:
        """The end of the job's newest successful run."""
        for session in self._job_sessions(job):
            if session.status == "Success" and session.end is not None:
                return session.end
        return None

    # -- wire: shared pieces --------------------------------------------------------------------

    def _finish(self, spec: ApiVersion, body: Body) -> Body:
        return _without_nulls(body) if spec.omit_nulls else body

    def _collection(
        self,
        spec: ApiVersion,
        items: Sequence[_T],
        render: Callable[[_T], Wire],
        *,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        offset: int = 0,
        limit: int | None = None,
        paged: bool | None = None,
        next_version: str | None = None,
    ) -> Body:
        """A bare array of every item, or (when `paged`, by default the version's rule) a page."""
        if not (spec.paged_collections if paged is None else paged):
            return self._finish(spec, [render(item) for item in items])
        offset, limit = check_window(offset, limit, self.config.page_size)
        results = [render(item) for item in items[offset : offset + limit]]
        base = self._base(spec)
        next_base = base
        if next_version is not None and next_version in self.config.api_versions:
            next_base = self._base(VERSIONS[next_version])
        page = relative_page(
            results,
            len(items),
            offset=offset,
            limit=limit,
            path=base + path,
            query=query,
            next_path=next_base + path,
        )
        return self._finish(spec, page)

    def _org_view(self, org: Organization, spec: ApiVersion, extended: bool | None) -> OrganizationView:
        runs = [self._jobs[job_id].last_run for job_id in org.job_ids]
        last = max((run for run in runs if run is not None), default=None)
        shown = spec.organization_extended_default if extended is None else extended
        return OrganizationView(org=org, last_backup=last, extended=shown)

    def _job_view(self, job: Job) -> JobView:
        return JobView(job=job, last_backup=self._last_backup(job))

    def _proxy_view(self, spec: ApiVersion, proxy_id: str, extended: bool | None) -> ProxyView:
        proxy = self._proxy(proxy_id)
        default = spec.proxy_extended_default
        shown = True if default is None else (default if extended is None else extended)
        return ProxyView(proxy=proxy, extended=shown, build=self._server.build)

    # -- wire: organizations ----------------------------------------------------------------------

    def organizations_wire(
        self,
        *,
        version: str = "v1",
        extended_view: bool | None = None,
        msid: str | None = None,
        backed_up_organization_id: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Body:
        """``GET /vN/Organizations`` (a bare array before v8, a page on v8).

        v8 filters by `msid` (a GUID; 400 otherwise) and `backed_up_organization_id` (a string,
        matched as a GUID without regard to case), both the tenant's Microsoft 365 id here;
        other versions ignore them.
        """
        spec = self.api_version(version)
        self.settle()
        base = self._base(spec)
        organizations = list(self._organizations.values())
        query = [] if extended_view is None else [("extendedView", str(extended_view).lower())]
        filters = spec.organization_filters
        if msid is not None and "msid" in filters:
            wanted = parse_uuid("msid", msid)
            organizations = [org for org in organizations if org.msid == wanted]
            query.append(("msid", msid))
        if backed_up_organization_id is not None and "backedUpOrganizationId" in filters:
            wanted = backed_up_organization_id.strip().lower()
            organizations = [org for org in organizations if org.msid == wanted]
            query.append(("backedUpOrganizationId", backed_up_organization_id))
        return self._collection(
            spec,
            organizations,
            lambda org: spec.organization(self._org_view(org, spec, extended_view), base),
            path="/Organizations",
            query=query,
            offset=offset,
            limit=limit,
        )

    def organization_wire(
        self, org_id: str, *, version: str = "v1", extended_view: bool | None = None
    ) -> Wire:
        """``GET /vN/Organizations/{id}``."""
        spec = self.api_version(version)
        self.settle()
        view = self._org_view(self._org(org_id), spec, extended_view)
        return self._finish(spec, spec.organization(view, self._base(spec)))  # type: ignore[no-any-return]

    def used_repositories_wire(
        self, org_id: str, *, version: str, offset: int = 0, limit: int | None = None
    ) -> Wire:
        """``GET /vN/Organizations/{id}/usedRepositories`` (v6+, a page): one row per repository
        the organization's jobs write to."""
        spec = self.api_version(version)
        render = _require(spec.used_repository, spec, f"/Organizations/{org_id}/usedRepositories")
        org = self._org(org_id)
        used = {self._jobs[job_id].repository_id for job_id in org.job_ids}
        usage = storage_usage(self.config, org, [r for r in self._repositories if r in used])
        base = self._base(spec)
        return self._collection(  # type: ignore[no-any-return]
            spec,
            usage,
            lambda row: render(row, base),
            path=f"/Organizations/{org.id}/usedRepositories",
            offset=offset,
            limit=limit,
            paged=True,
        )

    def directory_wire(
        self,
        org_id: str,
        kind: str,
        *,
        version: str,
        filters: Mapping[str, str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Wire:
        """``GET /vN/Organizations/{id}/Users`` (`kind` ``users``), ``Groups``, ``Sites`` or
        ``Teams`` (v6+, a page), with the `filters` (canonical names: ``userName``,
        ``locationFilter``...) the version declares for that collection; others are ignored, as
        servers ignore unknown parameters. See `directory_matcher` for what each keeps."""
        spec = self.api_version(version)
        collection = f"/Organizations/{org_id}/{kind.capitalize()}"
        render = _require(spec.directory_item, spec, collection)
        org = self._org(org_id)
        items = self._directory(org, kind.lower())
        known = {name for collection_kind, name in spec.directory_filters if collection_kind == kind.lower()}
        applied = {name: raw for name, raw in (filters or {}).items() if name in known}
        matches = directory_matcher(kind.lower(), applied)
        base = self._base(spec)
        return self._collection(  # type: ignore[no-any-return]
            spec,
            [item for item in items if matches(item)],
            lambda item: render(item, base),
            path=f"/Organizations/{org.id}/{kind.capitalize()}",
            query=list(applied.items()),
            offset=offset,
            limit=limit,
            paged=True,
        )

    def rbac_roles_wire(self, org_id: str, *, version: str) -> list[Wire]:
        """``GET /vN/Organizations/{id}/RbacRoles`` (v6+, an array of ``RESTRbacRole``): empty,
        as on a server where no role was configured."""
        spec = self.api_version(version)
        if not spec.rbac_roles:
            raise _no_resource(f"/{spec.name}/Organizations/{org_id}/RbacRoles")
        self._org(org_id)
        return []

    def directory_item_wire(self, org_id: str, kind: str, item_id: str, *, version: str) -> Wire:
        """``GET /vN/Organizations/{id}/Users/{userId}`` (and ``Groups``, ``Sites``, ``Teams``)."""
        spec = self.api_version(version)
        path = f"/Organizations/{org_id}/{kind.capitalize()}/{item_id}"
        render = _require(spec.directory_item, spec, path)
        wanted = item_id.lower()
        for item in self._directory(self._org(org_id), kind.lower()):
            if item.id == wanted:
                return self._finish(spec, render(item, self._base(spec)))  # type: ignore[no-any-return]
        raise SimulatedError.not_found(kind[:-1].capitalize(), item_id)

    # -- wire: jobs ---------------------------------------------------------------------------------

    def jobs_wire(
        self,
        org_id: str | None = None,
        *,
        version: str = "v1",
        organization_id: str | None = None,
        repository_id: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Body:
        """``GET /vN/Organizations/{org_id}/Jobs`` (not on v8), or ``GET /vN/Jobs`` without `org_id`.

        `organization_id` and `repository_id` are the v8 ``/Jobs`` filters (ignored before v8,
        as the servers ignore unknown parameters).
        """
        spec = self.api_version(version)
        self.settle()
        base = self._base(spec)

        def render(job: Job) -> Wire:
            return spec.job(self._job_view(job), base)

        if org_id is not None:
            if not spec.organization_jobs:
                raise _no_resource(f"/{spec.name}/Organizations/{org_id}/Jobs")
            org = self._org(org_id)
            return self._finish(spec, [render(self._jobs[job_id]) for job_id in org.job_ids])
        jobs = list(self._jobs.values())
        query: list[tuple[str, str]] = []
        for name, raw, field in (
            ("organizationId", organization_id, "org_id"),
            ("repositoryId", repository_id, "repository_id"),
        ):
            if raw is None or name not in spec.job_filters:
                continue
            wanted = parse_uuid(name, raw)
            jobs = [job for job in jobs if getattr(job, field) == wanted]
            query.append((name, raw))
        return self._collection(spec, jobs, render, path="/Jobs", query=query, offset=offset, limit=limit)

    def job_wire(self, job_id: str, *, version: str = "v1") -> Wire:
        """``GET /vN/Jobs/{id}``."""
        spec = self.api_version(version)
        self.settle()
        return self._finish(spec, spec.job(self._job_view(self._job(job_id)), self._base(spec)))  # type: ignore[no-any-return]

    def copy_job_wire(
        self, copy_job_id: str | None = None, *, job_id: str | None = None, version: str
    ) -> Wire:
        """``GET /vN/CopyJobs/{id}``, or with `job_id` ``GET /vN/Jobs/{id}/CopyJob`` (v6+): the
        backup copy job of a job that has one (404 otherwise), copying to the first repository
        other than the job's own."""
        spec = self.api_version(version)
        path = f"/Jobs/{job_id}/CopyJob" if job_id is not None else f"/CopyJobs/{copy_job_id}"
        render = _require(spec.copy_job, spec, path)
        self.settle()
        if job_id is not None:
            job: Job | None = self._job(job_id)
        else:
            wanted = (copy_job_id or "").lower()
            job = next((j for j in self._jobs.values() if j.copy_job_id == wanted), None)
        if job is None:
            raise SimulatedError.not_found("Copy job", str(copy_job_id))
        if job.copy_job_id is None:
            raise SimulatedError(404, f"Job with id '{job.id}' has no copy job.")
        target = next((r for r in self._repositories if r != job.repository_id), job.repository_id)
        view = CopyJobView(
            id=job.copy_job_id, job=job, repository_id=target, last_backup=self._last_backup(job)
        )
        return self._finish(spec, render(view, self._base(spec)))  # type: ignore[no-any-return]

    def _job_items(
        self,
        kind: str,
        mailboxes: Callable[[Job], list[Mailbox]],
        job_id: str,
        spec: ApiVersion,
        offset: int,
        limit: int | None,
    ) -> Body:
        render = _require(spec.job_item, spec, f"/Jobs/{job_id}/{kind}")
        job = self._job(job_id)
        base = self._base(spec)
        return self._collection(
            spec,
            mailboxes(job),
            lambda mailbox: render(JobItemView(job_id=job.id, mailbox=mailbox), base),
            path=f"/Jobs/{job.id}/{kind}",
            offset=offset,
            limit=limit,
        )

    def selected_items_wire(
        self, job_id: str, *, version: str, offset: int = 0, limit: int | None = None
    ) -> Body:
        """``GET /vN/Jobs/{id}/SelectedItems`` (v6+): the selected mailboxes as ``User`` rows
        (an array before v8, a page on v8)."""
        spec = self.api_version(version)
        return self._job_items("SelectedItems", self._selected, job_id, spec, offset, limit)

    def excluded_items_wire(
        self, job_id: str, *, version: str, offset: int = 0, limit: int | None = None
    ) -> Body:
        """``GET /vN/Jobs/{id}/ExcludedItems`` (v6+): mailboxes a whole-organization job leaves out."""
        spec = self.api_version(version)
        return self._job_items("ExcludedItems", self._excluded, job_id, spec, offset, limit)

    # -- wire: sessions -----------------------------------------------------------------------------

    def job_sessions_page(
        self, job_id: str, *, offset: int = 0, limit: int | None = None
    ) -> tuple[list[Wire], int]:
        """A slice of a job's v1 sessions (newest first) and how many there are in all."""
        self.settle()
        sessions = self._job_sessions(self._job(job_id))
        page = _page(sessions, offset, limit)
        spec = self.api_version("v1")
        return [spec.session(session, self.base_url) for session in page], len(sessions)

    def job_sessions_wire(
        self, job_id: str, *, version: str = "v1", offset: int = 0, limit: int | None = None
    ) -> Body:
        """``GET /vN/Jobs/{id}/JobSessions`` (v1 and v6; v7 and v8 answer 404).

        For v1 the results of every page in one list (what existing callers compare with); for
        v6 the page object `offset`/`limit` ask for.
        """
        spec = self.api_version(version)
        if not spec.job_sessions:
            raise _no_resource(f"/{spec.name}/Jobs/{job_id}/JobSessions")
        if not spec.paged_sessions:
            return self.job_sessions_page(job_id)[0]
        self.settle()
        job = self._job(job_id)
        base = self._base(spec)
        return self._collection(
            spec,
            self._job_sessions(job),
            lambda session: spec.session(session, base),
            path=f"/Jobs/{job.id}/JobSessions",
            offset=offset,
            limit=limit,
            paged=True,
        )

    def sessions_wire(
        self,
        *,
        version: str = "v1",
        job_id: str | None = None,
        job_type: str | None = None,
        end_time_lower_bound: str | datetime | None = None,
        end_time_upper_bound: str | datetime | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Body:
        """``GET /vN/JobSessions``: v1 every session of every job (a bare array); v6+ a page of
        them newest first, filtered by what the version knows (v6 ``jobType``,
        ``endTimeLowerBound``; v7 + ``jobId``, ``endTimeUpperBound``; v8 + ``status``, whose
        ``Succeeded`` matches ``Success``). Filters a version does not know are ignored, as the
        servers do. On v8 the ``next`` link names ``/v7/`` when v7 is served (the live bug).
        """
        spec = self.api_version(version)
        self.settle()
        base = self._base(spec)
        sessions = self._all_sessions()
        if not spec.paged_sessions:
            return [spec.session(session, base) for session in sessions]
        given = {
            "jobId": job_id,
            "jobType": job_type,
            "endTimeLowerBound": None
            if end_time_lower_bound is None
            else time_text("endTimeLowerBound", end_time_lower_bound),
            "endTimeUpperBound": None
            if end_time_upper_bound is None
            else time_text("endTimeUpperBound", end_time_upper_bound),
            "status": status,
        }
        filters = {
            name: raw for name, raw in given.items() if raw is not None and name in spec.session_filters
        }
        wanted = SessionFilter.parse(filters)
        chosen = sorted((s for s in sessions if wanted.matches(s)), key=lambda s: s.creation, reverse=True)
        return self._collection(
            spec,
            chosen,
            lambda session: spec.session(session, base),
            path="/JobSessions",
            query=list(filters.items()),
            offset=offset,
            limit=limit,
            paged=True,
            next_version=spec.sessions_next_version,
        )

    def session_wire(self, session_id: str, *, version: str = "v1") -> Wire:
        """``GET /vN/JobSessions/{id}``."""
        spec = self.api_version(version)
        self.settle()
        return self._finish(spec, spec.session(self._session(session_id), self._base(spec)))  # type: ignore[no-any-return]

    def log_items_wire(
        self,
        session_id: str,
        *,
        version: str,
        kind: str | None = None,
        order_asc: bool | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Body:
        """``GET /vN/JobSessions/{id}/LogItems`` (v6+, a page; v1 ``/JobSessions/{id}/log``, a
        bare array): the run's start, then, once it has ended, one line per mailbox it processed
        and one saying how it ended, oldest first.

        v8 keeps the items of one `kind` (its ``type`` filter, matched without regard to case;
        400 for a value it does not list) and lists them newest first when `order_asc` is
        False; other versions ignore both, as servers ignore unknown parameters.
        """
        spec = self.api_version(version)
        render = _require(spec.log_item, spec, f"/JobSessions/{session_id}/LogItems")
        self.settle()
        session = self._session(session_id)
        entries = session_log(session, self._processed(self._job(session.job_id)))
        query: list[tuple[str, str]] = []
        if kind is not None and "type" in spec.log_filters:
            wanted = parse_enum("type", kind, LOG_ITEM_TYPES)
            entries = [entry for entry in entries if entry.kind == wanted]
            query.append(("type", kind))
        if order_asc is not None and "orderAsc" in spec.log_filters:
            entries = entries if order_asc else entries[::-1]
            query.append(("orderAsc", str(order_asc).lower()))
        base = self._base(spec)
        return self._collection(
            spec,
            entries,
            lambda entry: render(entry, base),
            path=f"/JobSessions/{session.id}/LogItems",
            query=query,
            offset=offset,
            limit=limit,
            paged=spec.paged_sessions,
        )

    # -- wire: v1 mailboxes -------------------------------------------------------------------------

    def selected_mailboxes_page(
        self, job_id: str, *, offset: int = 0, limit: int | None = None
    ) -> tuple[list[Wire], int]:
        """A slice of a job's selected mailboxes (v1) and how many there are in all."""
        selected = self._selected(self._job(job_id))
        page = _page(selected, offset, limit)
        return [mailbox_wire(mailbox, self.base_url) for mailbox in page], len(selected)

    def selected_mailboxes_wire(self, job_id: str) -> list[Wire]:
        """All of ``GET /v1/Jobs/{id}/SelectedMailboxes``."""
        return self.selected_mailboxes_page(job_id)[0]

    def mailboxes_page(
        self, org_id: str, *, offset: int = 0, limit: int | None = None
    ) -> tuple[list[Wire], int]:
        """A slice of ``GET /v1/Organizations/{id}/Mailboxes`` and the total count."""
        mailboxes = list(self._mailboxes(self._org(org_id)).values())
        page = _page(mailboxes, offset, limit)
        return [mailbox_wire(mailbox, self.base_url) for mailbox in page], len(mailboxes)

    def mailbox_wire(self, org_id: str, mailbox_id: str) -> Wire:
        """``GET /v1/Organizations/{orgId}/Mailboxes/{id}`` (a selected mailbox's self link)."""
        mailbox = self._mailboxes(self._org(org_id)).get(mailbox_id.lower())
        if mailbox is None:
            raise SimulatedError.not_found("Mailbox", mailbox_id)
        return mailbox_wire(mailbox, self.base_url)

    # -- wire: repositories and proxies ---------------------------------------------------------------

    def repositories_wire(
        self,
        proxy_id: str | None = None,
        *,
        version: str = "v1",
        proxy_pool_id: str | None = None,
        organization_id: str | None = None,
        long_term: bool | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Body:
        """``GET /vN/BackupRepositories``; with `proxy_id` the repositories of that proxy
        (v1 ``GET /v1/Proxies/{id}/repositories``, v6+ the ``proxyId`` filter).

        v8 knows proxy pools: a pooled repository matches `proxy_pool_id`, not `proxy_id`.
        `organization_id` matches a repository's ``organizationId`` (null for every simulated
        repository); `long_term` its ``isLongTerm`` (always false).
        """
        spec = self.api_version(version)
        repositories = list(self._repositories.values())
        query: list[tuple[str, str]] = []
        filters = spec.repository_filters
        pools_known = "proxyPoolId" in filters
        if proxy_id is not None and "proxyId" not in filters:
            proxy = self._proxy_view(spec, proxy_id, None).proxy
            repositories = [r for r in repositories if r.proxy_id == proxy.id]
        elif proxy_id is not None:
            wanted = parse_uuid("proxyId", proxy_id)
            repositories = [
                r for r in repositories if r.proxy_id == wanted and not (pools_known and r.pool_id)
            ]
            query.append(("proxyId", proxy_id))
        if proxy_pool_id is not None and pools_known:
            wanted = parse_uuid("proxyPoolId", proxy_pool_id)
            repositories = [r for r in repositories if r.pool_id == wanted]
            query.append(("proxyPoolId", proxy_pool_id))
        if organization_id is not None and "organizationId" in filters:
            parse_uuid("organizationId", organization_id)
            repositories = []
            query.append(("organizationId", organization_id))
        if long_term is not None and "longTerm" in filters:
            repositories = [] if long_term else repositories
            query.append(("longTerm", str(long_term).lower()))
        base = self._base(spec)
        return self._collection(
            spec,
            repositories,
            lambda repository: spec.repository(repository, base),
            path="/BackupRepositories",
            query=query,
            offset=offset,
            limit=limit,
        )

    def repository_wire(self, repository_id: str, *, version: str = "v1") -> Wire:
        """``GET /vN/BackupRepositories/{id}``."""
        spec = self.api_version(version)
        repository = self._repository(repository_id)
        return self._finish(spec, spec.repository(repository, self._base(spec)))  # type: ignore[no-any-return]

    def object_storage_wire(self, storage_id: str, *, version: str = "v6") -> Wire:
        """``GET /{version}/objectstoragerepositories/{id}`` (v6/v7): the object storage a
        repository names by ``objectStorageId``."""
        spec = self.api_version(version)
        if spec.object_storage is None:
            raise SimulatedError.not_found("Object storage repository", storage_id)
        wanted = storage_id.lower()
        for repository in self._repositories.values():
            store = repository.object_store
            if store is not None and store.id == wanted:
                return self._finish(spec, spec.object_storage(store, self._base(spec)))  # type: ignore[no-any-return]
        raise SimulatedError.not_found("Object storage repository", storage_id)

    def proxies_wire(
        self,
        *,
        version: str = "v1",
        extended_view: bool | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Body:
        """``GET /vN/Proxies`` (v7 hides thread and throttling figures unless `extended_view`)."""
        spec = self.api_version(version)
        base = self._base(spec)
        query = []
        if extended_view is not None and spec.proxy_extended_default is not None:
            query.append(("extendedView", str(extended_view).lower()))
        return self._collection(
            spec,
            list(self._proxies),
            lambda proxy_id: spec.proxy(self._proxy_view(spec, proxy_id, extended_view), base),
            path="/Proxies",
            query=query,
            offset=offset,
            limit=limit,
        )

    def proxy_wire(self, proxy_id: str, *, version: str = "v1", extended_view: bool | None = None) -> Wire:
        """``GET /vN/Proxies/{id}``."""
        spec = self.api_version(version)
        view = self._proxy_view(spec, proxy_id, extended_view)
        return self._finish(spec, spec.proxy(view, self._base(spec)))  # type: ignore[no-any-return]

    # -- wire: server -------------------------------------------------------------------------------

    def license_wire(self, *, version: str) -> Wire:
        """``GET /vN/License`` (v6+): ``usedNumber`` counts the backed-up users of every organization."""
        spec = self.api_version(version)
        render = _require(spec.license, spec, "/License")
        used = sum(
            mailbox.backed_up
            for org in self._organizations.values()
            for mailbox in self._mailboxes(org).values()
        )
        return self._finish(spec, render(LicenseView(license=self._license, used=used)))  # type: ignore[no-any-return]

    def service_instance_wire(self, *, version: str) -> Wire:
        """``GET /vN/ServiceInstance`` (v6+): the installation id and the newest served build."""
        spec = self.api_version(version)
        render = _require(spec.service_instance, spec, "/ServiceInstance")
        return render(self._server)

    def health_wire(self, *, version: str) -> Wire:
        """``GET /v8/Health`` (anonymous)."""
        spec = self.api_version(version)
        render = _require(spec.health, spec, "/Health")
        return render()


_R = TypeVar("_R")


def _require(renderer: _R | None, spec: ApiVersion, path: str) -> _R:
    """`renderer`, or the 404 of a version that has no such endpoint."""
    if renderer is None:
        raise _no_resource(f"/{spec.name}{path}")
    return renderer


def _no_resource(path: str) -> SimulatedError:
    return SimulatedError(404, f"No HTTP resource was found that matches the request URI '{path}'.")


def _oauth_error(error: str, description: str) -> SimulatedError:
    return SimulatedError(400, description, body={"error": error, "error_description": description})


def _invalid_grant(description: str) -> SimulatedError:
    return _oauth_error("invalid_grant", description)


def _host_name(advertised_host: str) -> str:
    host, _, port = advertised_host.rpartition(":")
    return host.strip("[]") if host and port.isdigit() else advertised_host
