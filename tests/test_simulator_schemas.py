"""The simulator's v6/v7/v8 answers validate against the vendor's own schemas.

The vendor's OpenAPI facts (``vb365-openapi-facts.json``, a copy in tests/data) are turned into
JSON Schema: ``nullable: true`` also allows null, ``$ref`` resolves into the facts' schemas of
the same version, object schemas that list ``properties`` forbid every other key (no invented
fields), enums hold, and ``uuid``/``date-time`` formats are checked. Every implemented GET of
every v6+ version is fetched over HTTP (all pages, extended views on and off, a running, a
stopped and a retried session present) and validated against the response schema of the
operation the facts list for that path, and so is the v8 start answer.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from vbo_async.simulator import Faults, Simulator, SimulatorConfig, create_app

EPOCH = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
VERSIONS = ("v6", "v7", "v8")
PASSWORD_FORM = {
    "grant_type": "password",
    "username": "admin",
    "password": "admin",
    "disable_antiforgery_token": "true",
}
_KNOWN_KEYS = {
    "type", "nullable", "format", "$ref", "properties", "enum", "items", "required", "additionalProperties",
    "allOf",
}  # fmt: skip
_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?(Z|[+-]\d\d:\d\d)$")


# -- the facts ------------------------------------------------------------------------------------


def _facts_path() -> Path:
    # The repository ships a copy so a fresh clone tests on its own; the shared reference beside
    # the checkout is the original (test_the_copy_is_the_reference checks they are equal).
    return Path(__file__).resolve().parent / "data" / "vb365-openapi-facts.json"


def _original_facts() -> Path | None:
    candidates = []
    if os.environ.get("VBO_SHARED"):
        candidates.append(Path(os.environ["VBO_SHARED"]) / "reference" / "vb365-openapi-facts.json")
    candidates.append(
        Path(__file__).resolve().parents[2] / "shared" / "reference" / "vb365-openapi-facts.json"
    )
    return next((path for path in candidates if path.is_file()), None)


@cache
def facts() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_facts_path().read_text(encoding="utf-8"))
    return data


def _convert(schema: Any) -> Any:
    """One OpenAPI 3.0 schema (as the facts hold it) in JSON Schema (draft 2020-12)."""
    if not isinstance(schema, dict):
        return schema
    unknown = set(schema) - _KNOWN_KEYS
    assert not unknown, f"the facts use schema keys this converter does not map: {unknown}"
    if "$ref" in schema or "allOf" in schema:
        if "$ref" in schema:
            target: dict[str, Any] = {"$ref": "#/$defs/" + schema["$ref"].rsplit("/", 1)[-1]}
        else:
            target = {"allOf": [_convert(part) for part in schema["allOf"]]}
        return {"anyOf": [target, {"type": "null"}]} if schema.get("nullable") else target
    out: dict[str, Any] = {}
    nullable = bool(schema.get("nullable"))
    if "type" in schema:
        out["type"] = [schema["type"], "null"] if nullable else schema["type"]
    if "enum" in schema:
        out["enum"] = [*schema["enum"], None] if nullable else list(schema["enum"])
    if "format" in schema:
        out["format"] = schema["format"]
    if "items" in schema:
        out["items"] = _convert(schema["items"])
    if "required" in schema:
        out["required"] = list(schema["required"])
    if "properties" in schema:
        out["properties"] = {name: _convert(value) for name, value in schema["properties"].items()}
        out["additionalProperties"] = False
    if "additionalProperties" in schema:
        out["additionalProperties"] = _convert(schema["additionalProperties"])
    return out


@cache
def _definitions(version: str) -> dict[str, Any]:
    return {name: _convert(schema) for name, schema in facts()["versions"][version]["schemas"].items()}


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("uuid", raises=ValueError)
    def is_uuid(value: object) -> bool:
        return not isinstance(value, str) or str(uuid.UUID(value)) == value.lower()

    @checker.checks("date-time", raises=ValueError)
    def is_date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not _DATE_TIME.match(value):
            raise ValueError(f"not an ISO 8601 date-time with a zone: {value!r}")
        dt.datetime.fromisoformat(re.sub(r"\.(\d{6})\d", r".\1", value).replace("Z", "+00:00"))
        return True

    return checker


def response_schema(version: str, path: str, method: str = "get", status: str = "200") -> dict[str, Any]:
    """The JSON Schema of one operation's answer, as the facts of `version` define it."""
    operation = facts()["versions"][version]["paths"][path][method]
    return {"$defs": _definitions(version), **_convert(operation["responses"][status])}


def validate(version: str, path: str, body: Any, *, method: str = "get", status: str = "200") -> None:
    validator = jsonschema.Draft202012Validator(
        response_schema(version, path, method, status), format_checker=_format_checker()
    )
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(
        f"{version} {path}: {'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in errors[:10]
    )


# -- the checker itself ------------------------------------------------------------------------------


def test_the_copy_is_the_reference() -> None:
    original = _original_facts()
    if original is None:
        pytest.skip("the shared reference is not beside this checkout; the copy in tests/data is used")
    assert json.loads(original.read_text(encoding="utf-8")) == facts()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"installationId": str(uuid.uuid4()), "version": "8.5", "extra": 1}, "Additional properties"),
        ({"installationId": "not-a-guid", "version": "8.5"}, "is not a 'uuid'"),
        ({"installationId": str(uuid.uuid4()), "version": None}, "is not of type 'string'"),
    ],
)
def test_the_checker_refuses_invented_fields_bad_formats_and_nulls(body: Any, problem: str) -> None:
    with pytest.raises(AssertionError, match=problem):
        validate("v8", "/v8/ServiceInstance", body)


def test_the_checker_maps_nullable_enums_and_dates() -> None:
    job = {"id": str(uuid.uuid4()), "lastStatus": None, "lastRun": None, "_links": {}}
    validate("v8", "/v8/Jobs/{jobId}", job)
    with pytest.raises(AssertionError, match="is not one of"):
        validate("v8", "/v8/Jobs/{jobId}", {**job, "lastStatus": "Succeeded"})
    with pytest.raises(AssertionError, match="is not a 'date-time'"):
        validate("v8", "/v8/Jobs/{jobId}", {**job, "lastRun": "Wed, 01 Jul 2026 12:00:00 GMT"})
    with pytest.raises(AssertionError, match="is not of type"):
        validate("v6", "/v6/JobSessions/{jobSessionsId}", {"id": str(uuid.uuid4()), "endTime": None})


# -- every implemented GET, every version ---------------------------------------------------------------


@pytest.fixture
def simulator() -> Simulator:
    config = SimulatorConfig(seed=5, organizations=4, repositories=3, proxies=3, epoch=EPOCH)
    return Simulator(config, clock=lambda: 0.0)


@pytest.fixture
async def client(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(simulator=simulator))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        token = (await client.post("/v8/Token", data=PASSWORD_FORM)).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def _idle_enabled_jobs(simulator: Simulator) -> list[str]:
    jobs = [simulator.job_wire(job_id, version="v8") for job_id in simulator.job_ids()]
    return [job["id"] for job in jobs if job["isEnabled"] and job["lastStatus"] != "Running"]


async def _get(client: httpx.AsyncClient, url: str) -> Any:
    response = await client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text)
    return response.json()


async def test_every_get_validates_against_the_vendor_schema(
    client: httpx.AsyncClient, simulator: Simulator
) -> None:
    idle = _idle_enabled_jobs(simulator)
    started = await client.post(f"/v8/Jobs/{idle[0]}/start", json={"full": True})
    assert started.status_code == 200
    validate("v8", "/v8/Jobs/{jobId}/start", started.json(), method="post")
    assert (await client.post(f"/v6/Jobs/{idle[1]}/start", json={})).status_code == 204
    assert (await client.post(f"/v6/Jobs/{idle[1]}/stop")).status_code == 204
    assert (await client.post(f"/v7/Jobs/{idle[2]}/disable")).status_code == 204

    sessions = simulator.sessions_wire(version="v8", limit=10_000)["results"]
    assert any(s["status"] == "Running" and s["endTime"] is None for s in sessions)
    assert any(s["status"] == "Stopped" for s in sessions)
    assert any(s["jobWillBeRetried"] for s in sessions)
    assert any(s["retryCount"] > 0 for s in sessions)
    checked: set[tuple[str, str]] = set()

    async def check(version: str, template: str, url: str) -> None:
        """GET ``/{version}{url}`` and validate it against the operation ``/{version}{template}``."""
        validate(version, f"/{version}{template}", await _get(client, f"/{version}{url}"))
        checked.add((version, template))

    for v in VERSIONS:
        for extended in ("", "&extendedView=true", "&extendedView=false"):
            await check(v, "/Organizations", f"/Organizations?limit=10000{extended}")
        for org_id in simulator.organization_ids():
            await check(v, "/Organizations/{organizationId}", f"/Organizations/{org_id}")
            await check(v, "/Organizations/{organizationId}", f"/Organizations/{org_id}?extendedView=true")
            used = "/usedRepositories"
            await check(v, "/Organizations/{organizationId}" + used, f"/Organizations/{org_id}{used}")
            if v != "v8":
                await check(v, "/Organizations/{organizationId}/Jobs", f"/Organizations/{org_id}/Jobs")
        await check(v, "/Jobs", "/Jobs?limit=10000")
        for job_id in simulator.job_ids():
            await check(v, "/Jobs/{jobId}", f"/Jobs/{job_id}")
            for items in ("SelectedItems", "ExcludedItems"):
                await check(v, f"/Jobs/{{jobId}}/{items}", f"/Jobs/{job_id}/{items}?limit=10000")
            if v == "v6":
                await check(v, "/Jobs/{jobId}/JobSessions", f"/Jobs/{job_id}/JobSessions?limit=10000")
        await check(v, "/JobSessions", "/JobSessions?limit=10000")
        await check(v, "/JobSessions", "/JobSessions?jobType=Backup&endTimeLowerBound=2026-06-30T00:00:00Z")
        for session in sessions:
            await check(v, "/JobSessions/{jobSessionsId}", f"/JobSessions/{session['id']}")
        await check(v, "/BackupRepositories", "/BackupRepositories?limit=10000")
        for repository_id in simulator.repository_ids():
            await check(v, "/BackupRepositories/{repositoryId}", f"/BackupRepositories/{repository_id}")
            storage = simulator.repository_wire(repository_id, version=v).get("objectStorageId")
            if storage is not None:  # v6/v7: the object storage is a resource of its own
                await check(
                    v, "/objectstoragerepositories/{repositoryId}", f"/objectstoragerepositories/{storage}"
                )
        for extended in ("", "?extendedView=true", "?extendedView=false"):
            await check(v, "/Proxies", f"/Proxies{extended}")
        for proxy_id in simulator.proxy_ids():
            await check(v, "/Proxies/{proxyId}", f"/Proxies/{proxy_id}")
        await check(v, "/License", "/License")
        await check(v, "/ServiceInstance", "/ServiceInstance")
    await check("v8", "/Health", "/Health")
    await check("v8", "/JobSessions", f"/JobSessions?status=Succeeded&jobId={sessions[0]['jobId']}")
    await check("v8", "/Jobs", f"/Jobs?organizationId={simulator.organization_ids()[0]}")
    # 15 GETs every version has, + Organizations/{id}/Jobs and objectstoragerepositories/{id} on
    # v6 and v7, + Jobs/{id}/JobSessions on v6, + Health on v8.
    assert len(checked) == 3 * 15 + 2 + 2 + 1 + 1


_LOG_END = {"Success": "Success", "Warning": "Warning", "Failed": "Error", "Stopped": "Stop"}
"""A finished session's status -> the v8 ``type`` of its log's last item."""


async def test_every_session_s_log_link_is_served_and_validates(
    client: httpx.AsyncClient, simulator: Simulator
) -> None:
    """A session's ``log`` link names ``/JobSessions/{id}/LogItems``, a page of ``RESTLogItem``s
    (v6/v7 ``title``, v8 ``type`` and ``message``; vb365-v6-v8.md §6.3): served on every v6+
    version, paged as the other lists are (30 by default, ``next`` while items remain), every
    page valid against the version's schema, the last item of a finished run saying how it ended."""
    idle = _idle_enabled_jobs(simulator)
    assert (await client.post(f"/v8/Jobs/{idle[0]}/start", json={})).status_code == 200
    for v in VERSIONS:
        sessions = (await _get(client, f"/{v}/JobSessions?limit=10000"))["results"]
        assert any(s["status"] == "Running" for s in sessions)
        longest = 0
        for session in sessions:
            url: str | None = session["_links"]["log"]["href"]
            assert url == f"/{v}/JobSessions/{session['id']}/LogItems"
            items: list[dict[str, Any]] = []
            while url is not None:
                page = await _get(client, url)
                validate(v, f"/{v}/JobSessions/{{sessionId}}/LogItems", page)
                items += page["results"]
                url = page["_links"].get("next", {}).get("href")
            longest = max(longest, len(items))
            assert len({item["id"] for item in items}) == len(items)
            usns = [item["usn"] for item in items]
            assert usns == sorted(usns)
            last = items[-1]
            if session["status"] == "Running":
                assert last.get("type", "Running") == "Running"
                assert len(items) == 1
            elif v == "v8":
                assert last["type"] == _LOG_END[session["status"]]
            else:
                assert last["title"].startswith(f"[{session['status']}]")
        assert longest > 30  # some logs take several pages


async def test_a_v8_log_is_filtered_by_type_and_ordered_as_asked(
    client: httpx.AsyncClient, simulator: Simulator
) -> None:
    """v8's ``LogItems`` takes ``type`` (one of the items' ``type`` values) and ``orderAsc``; v6
    and v7 declare neither and ignore them, as servers ignore unknown parameters."""
    sessions = simulator.sessions_wire(version="v8", limit=10_000)["results"]
    failed = next(s for s in sessions if s["status"] == "Failed")
    url = f"/v8/JobSessions/{failed['id']}/LogItems?limit=10000"
    whole = (await _get(client, url))["results"]
    assert {item["type"] for item in whole} == {"Success", "Error"}
    errors = await _get(client, f"{url}&type=error")
    validate("v8", "/v8/JobSessions/{sessionId}/LogItems", errors)
    assert errors["results"] == [item for item in whole if item["type"] == "Error"]
    assert errors["_links"]["self"]["href"].startswith(f"/v8/JobSessions/{failed['id']}/LogItems?type=")
    newest_first = (await _get(client, f"{url}&orderAsc=false"))["results"]
    assert newest_first == whole[::-1]
    assert (await _get(client, f"{url}&orderAsc=true"))["results"] == whole
    assert (await client.get(f"{url}&type=Sometimes")).status_code == 400
    for v in ("v6", "v7"):
        plain = (await _get(client, f"/{v}/JobSessions/{failed['id']}/LogItems?limit=10000"))["results"]
        asked = f"/{v}/JobSessions/{failed['id']}/LogItems?limit=10000&type=Error&orderAsc=false"
        assert (await _get(client, asked))["results"] == plain


# -- what the GETs do not show: errors, empty answers, token refusals --------------------------------


def _error(version: str, response: httpx.Response) -> None:
    """An error answer: a ``RESTExceptionInfo`` of its version (every operation's "default")."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    validate(version, f"/{version}/ServiceInstance", response.json(), status="default")


async def test_errors_and_empty_answers_are_the_vendor_s(
    client: httpx.AsyncClient, simulator: Simulator
) -> None:
    """Errors are ``RESTExceptionInfo`` bodies of their version; a refused bearer is a 401 with an
    empty body and ``WWW-Authenticate: Bearer`` (vb365-v6-v8.md §3.5); actions but v8's start, and
    logout, answer no body; a refused grant is OAuth's ``{error, error_description}`` (vbo-api.md
    §5 allows it on the token endpoint) and nothing more."""
    idle = _idle_enabled_jobs(simulator)
    unknown = str(uuid.UUID(int=1))
    for number, v in enumerate(VERSIONS):
        for method, url in [
            ("GET", f"/{v}/Jobs/{unknown}"),
            ("GET", f"/{v}/Nothing/Here"),
            ("GET", f"/{v}/JobSessions?limit=0"),
            ("GET", f"/{v}/JobSessions?offset=-1"),
            ("DELETE", f"/{v}/Jobs"),
            ("POST", f"/{v}/Jobs/{idle[number]}/stop"),  # not running
        ]:
            response = await client.request(method, url)
            assert response.status_code in (400, 404, 405), (url, response.status_code)
            _error(v, response)
        refused = await client.get(f"/{v}/Jobs", headers={"Authorization": "Bearer nope"})
        assert (refused.status_code, refused.content) == (401, b"")
        assert refused.headers["www-authenticate"] == "Bearer"
        for verb in ("disable", "enable"):
            answer = await client.post(f"/{v}/Jobs/{idle[number]}/{verb}")
            assert (answer.status_code, answer.content) == (204, b"")
        if v != "v8":
            started = await client.post(f"/{v}/Jobs/{idle[number]}/start", json={"full": False})
            assert (started.status_code, started.content) == (204, b"")
        grant = await client.post(f"/{v}/Token", data={**PASSWORD_FORM, "password": "wrong"})
        assert grant.status_code == 400
        assert set(grant.json()) == {"error", "error_description"}
        assert all(isinstance(value, str) for value in grant.json().values())
        token = (await client.post(f"/{v}/Token", data=PASSWORD_FORM)).json()["access_token"]
        logout = await client.post(f"/{v}/token/logout", headers={"Authorization": f"Bearer {token}"})
        if v == "v6":  # no logout before v7
            assert logout.status_code == 404
            _error(v, logout)
        else:
            assert (logout.status_code, logout.content) == ({"v7": 200, "v8": 204}[v], b"")


@pytest.mark.parametrize("version", VERSIONS)
async def test_injected_faults_answer_the_vendor_s_error_bodies(version: str) -> None:
    """A 5xx or 429 the fault injection answers is a ``RESTExceptionInfo``; the token throttle's
    429 (WebApiThrottle) has no body and a ``Retry-After``."""
    for faults, status in (({"error_rate": 1.0}, (500, 502, 503)), ({"rate_limit_rate": 1.0}, (429,))):
        config = SimulatorConfig(seed=5, epoch=EPOCH, faults=Faults(**faults))
        transport = httpx.ASGITransport(app=create_app(simulator=Simulator(config, clock=lambda: 0.0)))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            response = await client.get(f"/{version}/Jobs")
        assert response.status_code in status
        _error(version, response)
        if response.status_code == 429:
            assert response.headers["retry-after"].isdigit()
    config = SimulatorConfig(seed=5, epoch=EPOCH, faults=Faults(token_throttle=True))
    transport = httpx.ASGITransport(app=create_app(simulator=Simulator(config, clock=lambda: 0.0)))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        assert (await client.post(f"/{version}/Token", data=PASSWORD_FORM)).status_code == 200
        throttled = await client.post(f"/{version}/Token", data=PASSWORD_FORM)
    assert (throttled.status_code, throttled.content) == (429, b"")
    assert throttled.headers["retry-after"] == "1"


async def test_a_path_ending_in_a_slash_is_answered_as_without_it(
    client: httpx.AsyncClient, simulator: Simulator
) -> None:
    """ASP.NET routing ignores one trailing slash (the reference says nothing of it): ``GET
    /v8/Jobs/`` is answered as ``GET /v8/Jobs``, not with a redirect; so is v1's, and a page's
    links name the path without the slash."""
    for url in ("/v8/Jobs/", "/v6/Organizations/", f"/v7/Jobs/{simulator.job_ids()[0]}/"):
        response = await client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        assert response.json() == await _get(client, url[:-1])
    page = await _get(client, "/v8/Jobs/?limit=1")
    assert page["_links"]["next"]["href"].startswith("/v8/Jobs?")
    v1_token = (await client.post("/v1/Token", data=PASSWORD_FORM)).json()["access_token"]
    v1 = await client.get("/v1/Jobs/", headers={"Authorization": f"Bearer {v1_token}"})
    assert v1.status_code == 200
    assert len(v1.json()) == len(simulator.job_ids())


_DIRECTORY = {"users": "userId", "groups": "groupId", "sites": "siteId", "teams": "teamId"}
"""An organization's directory links -> the path parameter of one item's operation."""


async def test_an_organization_s_directory_links_are_served_and_validate(
    client: httpx.AsyncClient, simulator: Simulator
) -> None:
    """``users``, ``groups``, ``sites`` and ``teams`` name ``/Organizations/{id}/Users`` etc.,
    pages of ``RESTUser``, ``RESTGroup``, ``RESTSite``, ``RESTTeam`` (paged as the other lists
    are), each item valid and its ``self`` link served (``/Users/{userId}``...) and valid."""
    for v in VERSIONS:
        for org_id in simulator.organization_ids():
            links = (await _get(client, f"/{v}/Organizations/{org_id}"))["_links"]
            for relation, parameter in _DIRECTORY.items():
                collection = relation.capitalize()
                template = f"/{v}/Organizations/{{organizationId}}/{collection}"
                url: str | None = links[relation]["href"]
                assert url == f"/{v}/Organizations/{org_id}/{collection}"
                whole = await _get(client, f"{url}?limit=10000")
                validate(v, template, whole)
                listed: list[dict[str, Any]] = []
                url += "?limit=2"
                while url is not None:
                    page = await _get(client, url)
                    validate(v, template, page)
                    listed += page["results"]
                    url = page["_links"].get("next", {}).get("href")
                assert len(listed) >= 2
                assert listed == whole["results"]
                for item in listed:
                    own = item["_links"]["self"]["href"]
                    assert own == f"/{v}/Organizations/{org_id}/{collection}/{item['id']}"
                    answer = await _get(client, own)
                    validate(v, f"{template}/{{{parameter}}}", answer)
                    assert answer == item
    missing = await client.get(f"/v8/Organizations/{simulator.organization_ids()[0]}/Users/{uuid.uuid4()}")
    assert missing.status_code == 404
    validate("v8", "/v8/Organizations/{organizationId}/Users/{userId}", missing.json(), status="default")


async def test_an_organization_s_rbac_roles_link_is_served_and_validates(
    client: httpx.AsyncClient, simulator: Simulator
) -> None:
    """``rbacRoles`` names ``/Organizations/{id}/RbacRoles``, an array of ``RESTRbacRole``
    (vb365-v6-v8.md §3): the simulator configures no roles, so it is an empty array, not a 404."""
    for v in VERSIONS:
        for org_id in simulator.organization_ids():
            href = (await _get(client, f"/{v}/Organizations/{org_id}"))["_links"]["rbacRoles"]["href"]
            assert href == f"/{v}/Organizations/{org_id}/RbacRoles"
            roles = await _get(client, href)
            validate(v, f"/{v}/Organizations/{{organizationId}}/RbacRoles", roles)
            assert roles == []
        unknown = await client.get(f"/{v}/Organizations/{uuid.uuid4()}/RbacRoles")
        assert unknown.status_code == 404


async def test_a_job_s_copy_job_link_is_served_and_validates() -> None:
    """A job's ``copyJob`` link names ``/CopyJobs/{id}``, a ``RESTCopyJob`` (also at
    ``/Jobs/{id}/CopyJob``); a job without a copy job has no such link and its ``CopyJob`` is 404."""
    simulator = Simulator(SimulatorConfig(seed=5, organizations=12, epoch=EPOCH), clock=lambda: 0.0)
    transport = httpx.ASGITransport(app=create_app(simulator=simulator))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        token = (await client.post("/v8/Token", data=PASSWORD_FORM)).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        await _check_copy_jobs(client, simulator)


async def _check_copy_jobs(client: httpx.AsyncClient, simulator: Simulator) -> None:
    for v in VERSIONS:
        copied = 0
        for job_id in simulator.job_ids():
            job = await _get(client, f"/{v}/Jobs/{job_id}")
            link = job["_links"].get("copyJob")
            by_job = await client.get(f"/{v}/Jobs/{job_id}/CopyJob")
            if link is None:
                assert by_job.status_code == 404
                validate(v, f"/{v}/Jobs/{{jobId}}/CopyJob", by_job.json(), status="default")
                continue
            copied += 1
            copy = await _get(client, link["href"])
            validate(v, f"/{v}/CopyJobs/{{id}}", copy)
            validate(v, f"/{v}/Jobs/{{jobId}}/CopyJob", by_job.json())
            assert by_job.json() == copy
            assert copy["backupJobId"] == job_id
            assert copy["repositoryId"] != job["repositoryId"]
            assert link["href"] == copy["_links"]["self"]["href"] == f"/{v}/CopyJobs/{copy['id']}"
        assert copied
    assert (await client.get(f"/v8/CopyJobs/{uuid.uuid4()}")).status_code == 404
