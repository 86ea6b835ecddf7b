"""`Simulator`: the seeded, stateful model of a VBO v1 server that the ASGI app serves."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from ._config import SimulatorConfig
from ._errors import SimulatedError
from ._generate import (
    finish_session,
    make_mailbox_pool,
    make_organizations,
    make_proxies,
    make_repositories,
    make_sessions,
    select_mailboxes,
    start_session,
)
from ._records import Job, JobSession, Mailbox, Organization
from ._schedule import next_run
from ._stats import SimulatorStats
from ._tokens import TokenStore
from ._wire import (
    Wire,
    job_wire,
    mailbox_wire,
    organization_wire,
    proxy_wire,
    repository_wire,
    session_wire,
)
from ._wireformat import EPOCH_TICKS, TICKS_PER_SECOND

__all__ = ["JOB_ACTIONS", "Simulator"]

JOB_ACTIONS = ("start", "stop", "enable", "disable")
"""The v1 ``POST /Jobs/{id}/Action`` verbs."""

_T = TypeVar("_T")


def _page(items: Sequence[_T], offset: int, limit: int | None) -> Sequence[_T]:
    return items[offset:] if limit is None else items[offset : offset + limit]


class Simulator:
    """The state of one simulated server, generated reproducibly from ``config.seed``.

    Holds organizations, jobs, repositories, proxies, job sessions and mailboxes (sessions and
    mailboxes are generated per job on first use, from a generator derived from the seed and
    the job's index, so they do not depend on access order), the issued tokens and `stats`.
    Time is read from `clock` (``time.monotonic`` unless injected): token expiry and the
    ``Running`` → finished transition of started jobs follow it, and the simulated wall time
    starts at 2017-04-04T10:00:00Z when the simulator is built.

    The ``*_wire`` methods return exactly the JSON the server sends, so tests can compare a
    client's results with them. Unknown ids raise `SimulatedError` (404).
    """

    def __init__(
        self, config: SimulatorConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self.clock = clock
        self.stats = SimulatorStats()
        self.tokens = TokenStore(clock, self.config.token_lifetime)
        self.fault_rng = random.Random(self.config.faults.fault_seed)
        """Draws every fault decision; owned by this instance so runs are reproducible."""
        self.last_revocation = time.monotonic()
        """When `Faults.revoke_every` last revoked tokens (``time.monotonic`` seconds)."""
        self._started = clock()
        rng = random.Random(self.config.seed)
        proxies = make_proxies(rng, self.config.proxies, _host_name(self.config.advertised_host))
        repositories = make_repositories(rng, self.config.repositories, proxies)
        organizations, jobs = make_organizations(rng, self.config, repositories)
        self._proxies = {proxy.id: proxy for proxy in proxies}
        self._repositories = {repository.id: repository for repository in repositories}
        self._organizations = {org.id: org for org in organizations}
        self._jobs = {job.id: job for job in jobs}
        self._sessions: dict[str, JobSession] = {}
        self._all_sessions_generated = False
        self._running: dict[str, Job] = {}

    # -- time, tokens and stats -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The prefix of every href: ``https://{advertised_host}/v1``."""
        return self.config.base_url

    def now(self) -> int:
        """The simulated wall time in 100-ns ticks since the Unix epoch."""
        return EPOCH_TICKS + int((self.clock() - self._started) * TICKS_PER_SECOND)

    def reset_stats(self) -> None:
        """Start counting from zero."""
        self.stats = SimulatorStats()

    def revoke_tokens(self, *, refresh_tokens: bool = False) -> int:
        """Invalidate every issued access token (and refresh token if asked); how many."""
        return self.tokens.revoke(refresh_tokens=refresh_tokens)

    def password_grant(self, username: str, password: str) -> dict[str, object]:
        """The token endpoint's answer to ``grant_type=password``."""
        if username != self.config.username or password != self.config.password:
            raise _invalid_grant("The user name or password is incorrect.")
        return self.tokens.issue(username)

    def refresh_grant(self, refresh_token: str) -> dict[str, object]:
        """The token endpoint's answer to ``grant_type=refresh_token`` (single use)."""
        username = self.tokens.redeem(refresh_token)
        if username is None:
            raise _invalid_grant("The refresh token is invalid, expired or already used.")
        return self.tokens.issue(username)

    def authenticate(self, authorization: str | None) -> None:
        """Check an ``Authorization`` header; raise the 401 `SimulatedError` if rejected."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and self.tokens.is_valid(token.strip()):
            return
        self.stats.unauthorized += 1
        raise SimulatedError(
            401,
            "Authorization has been denied for this request.",
            empty_body=self.config.unauthorized_body == "empty",
            headers={"WWW-Authenticate": "Bearer"},
        )

    # -- job runs -----------------------------------------------------------------------------

    def settle(self) -> None:
        """Finish every started run whose `session_duration` has elapsed on the clock."""
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
            del self._running[job.id]
            if job.enabled:
                job.next_run = next_run(job.schedule, end)
            org = self._organizations[job.org_id]
            if org.first_backup is None:
                org.first_backup = session.creation

    def job_action(self, job_id: str, action: str) -> None:
        """Apply ``start``/``stop``/``enable``/``disable``; invalid transitions raise 400."""
        self.settle()
        job = self._job(job_id)
        now = self.now()
        if action == "start":
            if job.running is not None:
                raise SimulatedError(400, f"Job '{job.name}' is already running.")
            if not job.enabled:
                raise SimulatedError(400, f"Job '{job.name}' is disabled.")
            session = start_session(self.config, job, now, self.clock())
            job.runs += 1
            self._job_sessions(job).insert(0, session)
            self._sessions[session.id] = session
            job.running = session
            job.last_status = "Running"
            job.last_run = now
            self._running[job.id] = job
        elif action == "stop":
            if job.running is None:
                raise SimulatedError(400, f"Job '{job.name}' is not running.")
            job.running.status = "Stopped"
            job.running.end = now
            job.running.started_at = None
            job.running = None
            del self._running[job.id]
            job.last_status = "Stopped"
        elif action == "enable":
            job.enabled = True
            job.next_run = next_run(job.schedule, now)
        elif action == "disable":
            job.enabled = False
            job.next_run = None
        else:
            raise SimulatedError(400, f"Unknown job action '{action}'.")
        self.stats.job_actions[(job.id, action)] += 1

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

    def _job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id.lower())
        if job is None:
            raise SimulatedError.not_found("Job", job_id)
        return job

    def _job_sessions(self, job: Job) -> list[JobSession]:
        if job.sessions is None:
            job.sessions = make_sessions(self.config, job)
            self._sessions.update((session.id, session) for session in job.sessions)
        return job.sessions

    def _all_sessions(self) -> list[JobSession]:
        sessions = [s for job in self._jobs.values() for s in self._job_sessions(job)]
        self._all_sessions_generated = True
        return sessions

    def _mailboxes(self, org: Organization) -> dict[str, Mailbox]:
        if org.mailboxes is None:
            org.mailboxes = {m.id: m for m in make_mailbox_pool(self.config, org)}
        return org.mailboxes

    def _selected(self, job: Job) -> list[Mailbox]:
        pool = self._mailboxes(self._organizations[job.org_id])
        if job.mailbox_ids is None:
            job.mailbox_ids = select_mailboxes(self.config, job, list(pool.values()))
        return [pool[mailbox_id] for mailbox_id in job.mailbox_ids]

    # -- wire ---------------------------------------------------------------------------------

    def _org_wire(self, org: Organization) -> Wire:
        runs = [self._jobs[job_id].last_run for job_id in org.job_ids]
        last = max((run for run in runs if run is not None), default=None)
        return organization_wire(org, self.base_url, last)

    def organizations_wire(self) -> list[Wire]:
        """``GET /v1/Organizations`` (a bare array)."""
        self.settle()
        return [self._org_wire(org) for org in self._organizations.values()]

    def organization_wire(self, org_id: str) -> Wire:
        """``GET /v1/Organizations/{id}``."""
        self.settle()
        return self._org_wire(self._org(org_id))

    def jobs_wire(self, org_id: str | None = None) -> list[Wire]:
        """``GET /v1/Organizations/{id}/Jobs``, or ``GET /v1/Jobs`` when `org_id` is None."""
        self.settle()
        if org_id is None:
            return [job_wire(job, self.base_url) for job in self._jobs.values()]
        org = self._org(org_id)
        return [job_wire(self._jobs[job_id], self.base_url) for job_id in org.job_ids]

    def job_wire(self, job_id: str) -> Wire:
        """``GET /v1/Jobs/{id}``."""
        self.settle()
        return job_wire(self._job(job_id), self.base_url)

    def job_sessions_page(
        self, job_id: str, *, offset: int = 0, limit: int | None = None
    ) -> tuple[list[Wire], int]:
        """A slice of a job's sessions (newest first) and how many there are in all."""
        self.settle()
        sessions = self._job_sessions(self._job(job_id))
        page = _page(sessions, offset, limit)
        return [session_wire(session, self.base_url) for session in page], len(sessions)

    def job_sessions_wire(self, job_id: str) -> list[Wire]:
        """All of ``GET /v1/Jobs/{id}/JobSessions`` (the ``results`` of every page)."""
        return self.job_sessions_page(job_id)[0]

    def sessions_wire(self) -> list[Wire]:
        """``GET /v1/JobSessions``: every session of every job (a bare array in v1)."""
        self.settle()
        return [session_wire(session, self.base_url) for session in self._all_sessions()]

    def session_wire(self, session_id: str) -> Wire:
        """``GET /v1/JobSessions/{id}``."""
        self.settle()
        session = self._sessions.get(session_id.lower())
        if session is None and not self._all_sessions_generated:
            self._all_sessions()
            session = self._sessions.get(session_id.lower())
        if session is None:
            raise SimulatedError.not_found("Job session", session_id)
        return session_wire(session, self.base_url)

    def selected_mailboxes_page(
        self, job_id: str, *, offset: int = 0, limit: int | None = None
    ) -> tuple[list[Wire], int]:
        """A slice of a job's selected mailboxes and how many there are in all."""
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

    def repositories_wire(self, proxy_id: str | None = None) -> list[Wire]:
        """``GET /v1/BackupRepositories``, or ``GET /v1/Proxies/{id}/repositories``."""
        repositories = list(self._repositories.values())
        if proxy_id is not None:
            proxy = self.proxy_wire(proxy_id)
            repositories = [r for r in repositories if r.proxy_id == proxy["id"]]
        return [repository_wire(repository, self.base_url) for repository in repositories]

    def repository_wire(self, repository_id: str) -> Wire:
        """``GET /v1/BackupRepositories/{id}``."""
        repository = self._repositories.get(repository_id.lower())
        if repository is None:
            raise SimulatedError.not_found("Backup repository", repository_id)
        return repository_wire(repository, self.base_url)

    def proxies_wire(self) -> list[Wire]:
        """``GET /v1/Proxies``."""
        return [proxy_wire(proxy, self.base_url) for proxy in self._proxies.values()]

    def proxy_wire(self, proxy_id: str) -> Wire:
        """``GET /v1/Proxies/{id}``."""
        proxy = self._proxies.get(proxy_id.lower())
        if proxy is None:
            raise SimulatedError.not_found("Proxy", proxy_id)
        return proxy_wire(proxy, self.base_url)


def _invalid_grant(description: str) -> SimulatedError:
    return SimulatedError(400, description, body={"error": "invalid_grant", "error_description": description})


def _host_name(advertised_host: str) -> str:
    host, _, port = advertised_host.rpartition(":")
    return host.strip("[]") if host and port.isdigit() else advertised_host
