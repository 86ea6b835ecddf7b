"""The client's wire knowledge, checked against the vendor's OpenAPI facts for v6, v7 and v8.

The facts (``vb365-openapi-facts.json``, the copy in tests/data; test_simulator_schemas checks it
equals the shared reference) list every path with its methods, query parameters, request bodies
and status codes, and every schema with its fields, types and enums. These tests read the
dialect tables (and the simulator's route table) as data and hold them against the facts:

- every route a dialect sends exists in its version with that method, and every query
  parameter it names is declared there in that spelling; limits stay within 10,000;
- every wire name a dialect maps exists in the version's schema with a compatible type, but
  for the fields the version does not have (listed below, as the API's history reads); every
  field issue 10 lists is mapped on each version whose schema has it;
- every value of every enum the schemas list decodes into a known member of the open enum, and
  an answer holding every field of a schema decodes with each mapped field filled, in the fast
  pass (no fallback);
- HAL relations are the ones live servers send, and the dead v7/v8 ``jobsessions`` link is
  rebuilt onto a route that exists;
- job actions, token grants and logout send what the operations declare and accept what they
  answer;
- the simulator routes exactly the operations the facts list for its versions, with the same
  filters and ``extendedView`` defaults.

Where the facts and the notes on live servers (``vb365-v6-v8.md``) disagree, the live servers
win; such cases are named where they are allowed below.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import typing
import uuid
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from vbo_async import DecodeError, VBOClient
from vbo_async import _models as m
from vbo_async._dialects import DIALECTS, Dialect, LinkFromId, LinkThrough, Route, camel
from vbo_async._enums import OpenEnum
from vbo_async._tokens import password_form, refresh_form
from vbo_async.simulator import Simulator, SimulatorConfig, create_app
from vbo_async.simulator._routes_vn import version_routes
from vbo_async.simulator._versions import VERSIONS as SIMULATED

from .conftest import offline_client
from .test_simulator_schemas import validate

V6_PLUS = ("v6", "v7", "v8")
MAX_LIMIT = 10_000
"""The largest ``limit`` a v6+ server accepts (OAS8 parameter text; vb365-v6-v8.md §5)."""

# --- the facts ---------------------------------------------------------------------------------------


@cache
def facts() -> dict[str, Any]:
    path = Path(__file__).resolve().parent / "data" / "vb365-openapi-facts.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def paths(version: str) -> dict[str, Any]:
    found: dict[str, Any] = facts()["versions"][version]["paths"]
    return found


def resolve(version: str, schema: Any) -> dict[str, Any]:
    """``schema`` with ``$ref`` followed and ``allOf`` merged (the facts' composed schemas)."""
    schemas = facts()["versions"][version]["schemas"]
    while isinstance(schema, dict) and "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    if isinstance(schema, dict) and "allOf" in schema:
        merged: dict[str, Any] = {"properties": {}}
        for part in schema["allOf"]:
            resolved = resolve(version, part)
            merged["properties"].update(resolved.get("properties", {}))
        return merged
    assert isinstance(schema, dict), schema
    return schema


def operation(version: str, path: str, method: str) -> tuple[str, dict[str, Any]]:
    """(the facts' path template, its operation) matching a path: segments compared
    case-insensitively (live servers route so), a placeholder matching any segment; of several
    matches, the one with the most literal segments."""
    wanted = path.strip("/").split("/")
    found: list[tuple[int, str]] = []
    for template in paths(version):
        segments = template.strip("/").split("/")
        if len(segments) == len(wanted) and all(
            a.startswith("{") or a.lower() == b.lower() for a, b in zip(segments, wanted, strict=True)
        ):
            found.append((sum(not a.startswith("{") for a in segments), template))
    assert found, f"{version}: no operation at {path}"
    template = max(found)[1]
    methods = paths(version)[template]
    assert method in methods, f"{version}: {template} has no {method.upper()}"
    return template, methods[method]


def query_parameters(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in op["parameters"] if p["in"] == "query"}


def response_schema(version: str, op: dict[str, Any]) -> dict[str, Any] | None:
    ok = [code for code in op["responses"] if code.startswith("2")]
    assert len(ok) == 1, op["responses"]
    body = op["responses"][ok[0]]
    return None if body is None else resolve(version, body)


# --- routes and query parameters ---------------------------------------------------------------------

POSTS = {"token", "job_start", "job_stop", "job_enable", "job_disable", "job_action"}
SINGLE = {
    "organization", "job", "session", "backup_repository", "proxy", "service_instance", "license",
    "object_storage",
}  # fmt: skip


def routes(dialect: Dialect) -> Iterator[tuple[str, Route, str]]:
    """(operation, route, HTTP method) of everything the dialect sends."""
    for name, route in dialect.paths.items():
        yield name, route, "post" if name in POSTS else "get"
    if dialect.logout is not None:
        yield "logout", dialect.logout, "post"
    for derivation in dialect.derived:
        if isinstance(derivation, LinkFromId):
            yield f"{derivation.model.__name__}.{derivation.relation}", derivation.route, "get"


@pytest.mark.parametrize("version", V6_PLUS)
def test_every_route_exists_with_its_method_and_declared_query(version: str) -> None:
    dialect = DIALECTS[version]
    checked = 0
    for name, route, method in routes(dialect):
        _, op = operation(version, f"/{version}/{route.path}", method)
        declared = query_parameters(op)
        for key, _value in route.query:
            assert key in declared, f"{version} {name}: ?{key}= is not a parameter ({sorted(declared)})"
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("version", V6_PLUS)
def test_lists_ask_within_the_documented_limit(version: str) -> None:
    """Pages are asked as large as allowed and no larger; wherever an answer is a page object the
    operation declares ``limit`` (v6/v7 bare arrays do not, and live servers ignore it there,
    vb365-v6-v8.md §5: the client's ``limit`` on them is harmless)."""
    dialect = DIALECTS[version]
    assert dialect.page_limit == MAX_LIMIT
    assert all(0 < pages <= MAX_LIMIT for pages in dialect.health_pages)
    for name, route, method in routes(dialect):
        if method != "get" or name in SINGLE:
            continue
        _, op = operation(version, f"/{version}/{route.path}", method)
        answer = response_schema(version, op)
        assert answer is not None
        if answer.get("type") != "array":
            assert {"limit", "offset"} <= set(query_parameters(op)), f"{version} {name}"
            assert {"results", "limit", "offset"} <= set(answer["properties"]), f"{version} {name}"


@pytest.mark.parametrize("version", V6_PLUS)
def test_session_filters_are_the_declared_ones(version: str) -> None:
    _, op = operation(version, f"/{version}/JobSessions", "get")
    declared = set(query_parameters(op)) - {"limit", "offset"}
    assert DIALECTS[version].session_filters == declared
    assert SIMULATED[version].session_filters == declared
    since = DIALECTS[version].path("sessions_since", since="2026-07-01T12:00:00Z")
    parameter = query_parameters(op)["endTimeLowerBound"]["schema"]
    assert parameter == {"format": "date-time", "type": "string"}
    assert since.endswith("?endTimeLowerBound=2026-07-01T12%3A00%3A00Z")


@pytest.mark.parametrize("version", V6_PLUS)
def test_organization_jobs_and_job_sessions_per_version(version: str) -> None:
    """v8 removed ``/Organizations/{id}/Jobs`` (a filter of ``/Jobs`` instead); v7 removed
    ``/Jobs/{id}/JobSessions`` (a filter of ``/JobSessions`` instead)."""
    dialect = DIALECTS[version]
    has_org_jobs = any(
        t.lower() == f"/{version}/organizations/{{organizationid}}/jobs" for t in paths(version)
    )
    has_job_sessions = any(t.lower() == f"/{version}/jobs/{{jobid}}/jobsessions" for t in paths(version))
    assert (dialect.route("organization_jobs").path != "Jobs") == has_org_jobs
    assert (dialect.route("job_sessions").path != "JobSessions") == has_job_sessions
    assert dialect.organization_jobs_filter == (not has_org_jobs)


# --- job actions, tokens, logout ----------------------------------------------------------------------


@pytest.mark.parametrize("version", V6_PLUS)
@pytest.mark.parametrize("action", ["start", "stop", "enable", "disable"])
@pytest.mark.parametrize("full", [False, True])
def test_job_actions_send_the_declared_body_and_accept_the_declared_answer(
    version: str, action: Any, full: bool
) -> None:
    if full and action != "start":
        return
    dialect = DIALECTS[version]
    path, body = dialect.action("5f0c8a2e-1b7d-4c3a-9e61-2d4b8f7a9c10", action, full=full)
    _, op = operation(version, path.split("?")[0], "post")
    declared = op["requestBody"]
    if declared is None:
        assert body is None, f"{version} {action} declares no body"
    else:
        schema = resolve(version, declared["application/json"])
        assert isinstance(body, dict)
        assert set(body) <= set(schema["properties"])
        assert all(isinstance(body[k], bool) for k in body if schema["properties"][k]["type"] == "boolean")
    ok = [code for code in op["responses"] if code.startswith("2")]
    assert ok
    assert all(code in ("200", "204") for code in ok)
    answers_session = action == "start" and "200" in ok and op["responses"]["200"] is not None
    if action == "start":
        assert dialect.start_returns_session == answers_session
        if answers_session:
            assert op["responses"]["200"]["$ref"].endswith("/RESTJobSession")


@pytest.mark.parametrize("version", V6_PLUS)
def test_token_grants_send_declared_fields_and_the_antiforgery_flag_where_it_exists(version: str) -> None:
    dialect = DIALECTS[version]
    _, op = operation(version, f"/{version}/{dialect.route('token').path}", "post")
    form = resolve(version, op["requestBody"]["application/x-www-form-urlencoded"])
    fields = form["properties"]
    for grant in (password_form("u", "p", dialect.token_form), refresh_form("r", dialect.token_form)):
        assert set(grant) <= set(fields), f"{version}: {set(grant) - set(fields)}"
        assert grant["grant_type"] in fields["grant_type"]["enum"]
        # v7+: on the password *and* the refresh grant (refresh fails on real servers without it)
        assert (grant.get("disable_antiforgery_token") == "true") == ("disable_antiforgery_token" in fields)
    assert op["anonymous"] is True


@pytest.mark.parametrize("version", V6_PLUS)
def test_logout_exactly_where_declared(version: str) -> None:
    dialect = DIALECTS[version]
    declared = [t for t in paths(version) if t.lower() == f"/{version}/token/logout"]
    assert (dialect.logout is not None) == bool(declared)
    if dialect.logout is not None:
        _, op = operation(version, f"/{version}/{dialect.logout.path}", "post")
        ok = [code for code in op["responses"] if code.startswith("2")]
        assert ok in (["200"], ["204"])  # v7 200, v8 204: the client accepts both
        assert SIMULATED[version].logout_status == int(ok[0])
    else:
        assert SIMULATED[version].logout_status is None


# --- wire names and types -----------------------------------------------------------------------------

ROOTS: dict[type, tuple[str, str]] = {
    m.Job: ("RESTJob", "/Jobs/{jobId}"),
    m.JobSession: ("RESTJobSession", "/JobSessions/{jobSessionsId}"),
    m.BackupRepository: ("RESTBackupRepository", "/BackupRepositories/{repositoryId}"),
    m.Proxy: ("RESTProxy", "/Proxies/{proxyId}"),
    m.Organization: ("RestOrganizationComposed", "/Organizations/{organizationId}"),
    m.ServiceInstance: ("RESTServiceInstance", "/ServiceInstance"),
    m.License: ("RESTLicense", "/License"),
    m.SelectedItem: ("RESTJobItemComposed", "/Jobs/{jobId}/SelectedItems"),
}
"""Each top-level model, the schema it decodes and the operation answering it (or a list of it)."""
SHARED = {m.SelectedItemObject}
"""Models that stand for several schemas (a selected item's user, group, site or team): their
fields are each in some of them, so they are not checked field by field."""
NESTED: dict[tuple[type, str], type] = {
    (m.Job, "schedulePolicy"): m.SchedulePolicy,
    (m.SchedulePolicy, "backupWindowSettings"): m.BackupWindow,
    (m.SchedulePolicy, "periodicallyWindowSettings"): m.BackupWindow,
    (m.JobSession, "statistics"): m.JobSessionStatistics,
    (m.BackupRepository, "objectStorage"): m.ObjectStorage,
}

NOT_ON_V6: dict[type, set[str]] = {
    # v1 fields (v1's allMailboxes, proxyId, isRun, selected/excludedMailboxes) and later ones
    m.Job: {
        "all_mailboxes", "proxy_id", "is_run", "selected_mailboxes", "excluded_mailboxes",
        "last_backup", "e_tag", "organization_id",
    },
    m.SchedulePolicy: {"periodically_window_enabled"},
    # jobId: v8 (read under v8's name on every version, see the v6 dialect); the rest v7+/v8
    m.JobSession: {
        "job_id", "repository_id", "main_session_id", "job_will_be_retried", "job_type",
        "job_session_config_type", "proxy_id", "proxy_pool_id", "e_tag",
    },
    m.JobSessionStatistics: {"processing_rate", "read_rate", "write_rate", "transferred_data"},
    m.BackupRepository: {
        "proxy_pool_id", "organization_id", "is_outdated", "is_indexed", "is_migration_locked",
        "is_out_of_order", "out_of_order_reason", "object_storage",
    },
    m.Proxy: {
        "fqdn", "operating_system", "maintenance_mode_state", "cpu_usage_percent",
        "memory_usage_percent", "version", "proxy_pool_id", "roles", "service_account",
    },
    m.Organization: {"username", "description", "msid", "backed_up_organization_id"},
}  # fmt: skip
"""Model fields v6's schemas lack (the v1 ones, and what v7 and v8 added)."""
NOT_ON_V7: dict[type, set[str]] = {
    m.Job: {
        "all_mailboxes", "proxy_id", "is_run", "selected_mailboxes", "excluded_mailboxes", "e_tag",
        "organization_id",
    },
    m.SchedulePolicy: set(),
    m.JobSession: {"job_id", "job_session_config_type", "proxy_id", "proxy_pool_id", "e_tag"},
    m.JobSessionStatistics: NOT_ON_V6[m.JobSessionStatistics],
    m.BackupRepository: NOT_ON_V6[m.BackupRepository],
    m.Proxy: NOT_ON_V6[m.Proxy] - {"fqdn"},
    m.Organization: {"username", "msid", "backed_up_organization_id"},
}  # fmt: skip
"""v7 added ``lastBackup``, session retries and types, the proxy's ``fqdn``, the organization's
``description``."""
NOT_ON_V8: dict[type, set[str]] = {
    m.Job: {"all_mailboxes", "proxy_id", "is_run", "selected_mailboxes", "excluded_mailboxes"},
    m.SchedulePolicy: set(),
    m.JobSession: set(),
    m.JobSessionStatistics: NOT_ON_V6[m.JobSessionStatistics],
    m.BackupRepository: {"object_storage_id", "object_storage_cache_path"},
    m.ObjectStorage: {"name", "description"},  # v6/v7's resource of its own names it
    m.Proxy: {"threads_number"},
    m.Organization: {"username"},
}
"""v8 added ``organizationId``/``eTag`` to jobs, ``jobId``/``jobSessionConfigType``/``eTag`` and
the proxy or pool to sessions, the pool, state and ``objectStorage`` object of repositories (for
v6's ``objectStorageId``/``objectStorageCachePath``), the load, pool, roles and account of
proxies, the tenant's ``msid``, and dropped ``threadsNumber``."""
ABSENT = {"v6": NOT_ON_V6, "v7": NOT_ON_V7, "v8": NOT_ON_V8}

ISSUE_FIELDS: dict[type, set[str]] = {
    m.Job: {
        "backup_type", "organization_id", "repository_id", "last_backup", "e_tag", "last_status",
        "last_run", "next_run", "is_enabled", "schedule_policy",
    },
    m.SchedulePolicy: {
        "schedule_enabled", "backup_window_enabled", "periodically_window_enabled", "periodically_window",
        "periodically_offset_minutes", "backup_window",
    },
    m.JobSession: {
        "job_id", "repository_id", "details", "retry_count", "main_session_id", "job_will_be_retried",
        "job_type", "job_session_config_type", "status", "creation_time", "end_time", "statistics",
    },
    m.JobSessionStatistics: {
        "processing_rate_bytes_ps", "processing_rate_items_ps", "read_rate_bytes_ps",
        "write_rate_bytes_ps", "transferred_data_bytes",
    },
    m.BackupRepository: {
        "capacity", "free_space", "is_out_of_sync", "is_outdated", "is_long_term", "organization_id",
        "proxy_pool_id", "retention_type",
    },
    m.Proxy: {
        "fqdn", "type", "operating_system", "maintenance_mode_state", "cpu_usage_percent",
        "memory_usage_percent", "version", "status",
    },
    m.Organization: {
        "office_name", "description", "is_exchange_online", "is_sharepoint_online", "is_teams_online",
        "is_teams_chats_online",
    },
    m.ServiceInstance: {"installation_id", "version"},
}  # fmt: skip
"""The fields issue 10 (and the monitoring the reference describes) names, per model."""


def _optional_inner(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if len(args) == 1 and type(None) in typing.get_args(annotation) else annotation


def _compatible(annotation: Any, prop: dict[str, Any], version: str) -> bool:
    """Whether a model field of type ``annotation`` can hold what the schema ``prop`` of
    ``version`` allows."""
    inner = _optional_inner(annotation)
    kind, fmt = prop.get("type"), prop.get("format")
    if isinstance(inner, type) and issubclass(inner, OpenEnum):
        return kind == "string" and "enum" in prop
    if inner is dt.datetime:
        return kind == "string" and fmt == "date-time"
    if inner is dt.time:  # "HH:MM:SS" (dailyTime)
        return kind == "string" and fmt is None
    if inner is str:
        return kind == "string" and fmt != "date-time"
    if inner is bool:
        return kind == "boolean"
    if inner is int:
        return kind == "integer"
    if inner is float:
        return kind in ("number", "integer")
    if typing.get_origin(inner) is not None and kind == "array":  # Sequence[bool], tuple[str, ...]
        item = resolve(version, prop["items"])  # v8 proxies' role: a list of RESTProxyRole
        return _compatible(typing.get_args(inner)[0], item, version)
    return False


def mapped_models(version: str) -> Iterator[tuple[type, dict[str, Any]]]:
    """(model, its resolved schema) for each top-level model and the ones nested in them."""
    for cls, (name, _path) in ROOTS.items():
        schema = resolve(version, facts()["versions"][version]["schemas"][name])
        yield cls, schema
        stack = [(cls, schema)]
        while stack:
            outer, outer_schema = stack.pop()
            for (parent, wire), nested in NESTED.items():
                if parent is outer and wire in outer_schema["properties"]:
                    inner_schema = resolve(version, outer_schema["properties"][wire])
                    yield nested, inner_schema
                    stack.append((nested, inner_schema))


@pytest.mark.parametrize("version", V6_PLUS)
def test_each_model_reads_the_schema_of_the_operation_answering_it(version: str) -> None:
    for cls, (name, path) in ROOTS.items():
        _, op = operation(version, f"/{version}{path}", "get")
        answer = op["responses"]["200"]
        if "$ref" in answer and answer["$ref"].rsplit("/", 1)[-1].startswith("PageOf"):
            answer = resolve(version, answer)["properties"]["results"]
        answer = answer.get("items", answer)
        assert answer == {"$ref": f"#/components/schemas/{name}"}, (version, cls)


@pytest.mark.parametrize("version", V6_PLUS)
def test_wire_names_exist_with_compatible_types(version: str) -> None:
    dialect = DIALECTS[version]
    seen: set[type] = set()
    for cls, schema in mapped_models(version):
        seen.add(cls)
        properties = schema["properties"]
        hints = typing.get_type_hints(cls)
        absent = ABSENT[version].get(cls, set())
        for field, spellings in dialect.wire_names(cls).items():
            if not spellings or field == "links":
                continue
            present = [s for s in spellings if s in properties]
            if field in absent:
                assert not present, f"{version} {cls.__name__}.{field} is on the wire as {present}"
                continue
            assert present, f"{version} {cls.__name__}.{field}: {spellings} not in the schema"
            assert present[0] == spellings[0], f"{version} {cls.__name__}.{field}: written as {spellings[0]}"
            prop = resolve(version, properties[present[0]])
            inner = _optional_inner(hints[field])
            if inner in SHARED:
                continue
            if attrs.has(inner):
                assert NESTED.get((cls, present[0])) is inner, (version, cls, field)
                continue
            assert _compatible(hints[field], prop, version), (
                f"{version} {cls.__name__}.{field}: {hints[field]} vs {prop}"
            )
        # Rows' links are {} (vbo-api.md §2); an object storage's are not read (no name is known).
        if "_links" in properties and cls not in (m.SelectedItem, m.ObjectStorage):
            assert dialect.wire_names(cls)["links"] == ("_links",)
    assert seen == (set(ROOTS) | set(NESTED.values())) - ({m.ObjectStorage} if version != "v8" else set())


@pytest.mark.parametrize("version", ["v6", "v7"])
def test_an_object_storage_reads_the_v6_v7_resource_of_its_own(version: str) -> None:
    """v6/v7 serve a repository's object storage as ``/objectstoragerepositories/{id}``
    (``VBOClient.object_storage``): the model reads every field it has there, with a compatible
    type; only what v7 or v8 added is absent."""
    _, op = operation(version, f"/{version}/objectstoragerepositories/{{repositoryId}}", "get")
    assert op["responses"]["200"] == {"$ref": "#/components/schemas/RESTObjectStorageRepositoryComposed"}
    schema = resolve(version, op["responses"]["200"])
    hints = typing.get_type_hints(m.ObjectStorage)
    absent = {"immutability_period_days"} | ({"enable_immutability"} if version == "v6" else set())
    for field, spellings in DIALECTS[version].wire_names(m.ObjectStorage).items():
        present = [name for name in spellings if name in schema["properties"]]
        assert bool(present) is (field not in absent), (version, field)
        if present:
            assert _compatible(hints[field], resolve(version, schema["properties"][present[0]]), version), (
                field
            )


@pytest.mark.parametrize("version", V6_PLUS)
def test_no_field_the_issue_lists_is_left_unmapped(version: str) -> None:
    dialect = DIALECTS[version]
    for cls, schema in mapped_models(version):
        for field in ISSUE_FIELDS.get(cls, set()):
            newest = DIALECTS["v8"].wire_names(cls)[field]
            own = dialect.wire_names(cls)[field]
            if any(name in schema["properties"] for name in (*newest, *own, camel(field))):
                assert any(name in schema["properties"] for name in own), f"{version} {cls.__name__}.{field}"
                assert field not in ABSENT[version].get(cls, set())


@pytest.mark.parametrize("version", V6_PLUS)
def test_every_enum_value_the_schemas_list_is_known(version: str) -> None:
    dialect = DIALECTS[version]
    checked = 0
    for cls, schema in mapped_models(version):
        hints = typing.get_type_hints(cls)
        for field, spellings in dialect.wire_names(cls).items():
            prop = schema["properties"].get(spellings[0]) if spellings else None
            if prop is None:
                continue
            prop = resolve(version, prop)
            enum = _optional_inner(hints[field])
            if "enum" in prop and isinstance(enum, type) and issubclass(enum, OpenEnum):
                assert {member.value for member in enum} >= set(prop["enum"]), f"{version} {field}"
                assert all(enum(value).is_known for value in prop["enum"])
                checked += 1
    assert checked >= 10


# --- decoding answers that hold every field ----------------------------------------------------------


def _sample(version: str, schema: Any, index: int, depth: int = 0) -> Any:
    """A value the schema allows; enums give their ``index``-th value (cyclically)."""
    schema = resolve(version, schema)
    if "enum" in schema:
        return schema["enum"][index % len(schema["enum"])]
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "string":
        return {"uuid": str(uuid.UUID(int=index + 1)), "date-time": "2026-06-30T22:00:04.5123379Z"}.get(
            fmt, "22:00:00"
        )
    if kind in ("integer", "number"):
        return 7
    if kind == "boolean":
        return True
    if kind == "array":
        return [_sample(version, schema["items"], index, depth + 1)] if depth < 3 else []
    if "properties" in schema and depth < 3:
        return {name: _sample(version, prop, index, depth + 1) for name, prop in schema["properties"].items()}
    return {}


def _fill(version: str, cls: type, data: dict[str, Any]) -> None:
    """Make a sample realistic where the schema says only "string": windows of 168 hours, hrefs."""
    if "_links" in data:
        data["_links"] = {"self": {"href": f"/{version}/Things/1"}}
    for window in ("backupWindowSettings", "periodicallyWindowSettings"):
        if isinstance(data.get(window), dict):
            data[window]["backupWindow"] = [True] * 168
    for value in data.values():
        if isinstance(value, dict):
            _fill(version, cls, value)


@pytest.fixture(scope="module")
def vbo() -> Iterator[VBOClient]:
    """A client used only to decode (any version, with ``api_version=``)."""
    client = offline_client()
    yield client
    asyncio.run(client.aclose())


@pytest.mark.parametrize("version", V6_PLUS)
def test_an_answer_with_every_field_and_every_enum_value_decodes_in_the_fast_pass(
    vbo: VBOClient, version: str
) -> None:
    decoder = vbo._fetcher.decoder
    before = decoder.fallbacks
    for cls, (name, _path) in ROOTS.items():
        schema = resolve(version, facts()["versions"][version]["schemas"][name])
        widest = max([len(resolve(version, p).get("enum", [])) for p in schema["properties"].values()] + [1])
        for index in range(max(widest, 10)):
            data = _sample(version, schema, index)
            _fill(version, cls, data)
            model = vbo.from_wire(data, cls, api_version=version)
            for cls_, found in _walk(model):
                absent = ABSENT[version].get(cls_, set())
                for field, spellings in DIALECTS[version].wire_names(cls_).items():
                    if spellings and field not in absent and field != "links":
                        assert getattr(found, field) is not None, f"{version} {cls_.__name__}.{field}"
    assert decoder.fallbacks == before, "the fast pass refused a value the schema allows"


NAMED = {m.Job, m.BackupRepository, m.Proxy, m.Organization}
"""Resources every request about them names by id: the schemas make it nullable (as .NET's
generator makes every string), but one without an id is refused, never a model no call can name."""


@pytest.mark.parametrize("version", V6_PLUS)
def test_every_property_the_schemas_make_nullable_decodes_null(vbo: VBOClient, version: str) -> None:
    """A ``null`` where the vendor's schema allows one (a v7+ selected item's ``id``) is read, in
    the fast pass and not as a refusal of the whole answer; the field it fills is None. (But for
    the id of a resource every request names by it: `NAMED`.)"""
    decoder = vbo._fetcher.decoder
    before = decoder.fallbacks
    nulled = 0
    for cls, (name, _path) in ROOTS.items():
        schema = resolve(version, facts()["versions"][version]["schemas"][name])
        fields = {
            spelling: field
            for field, spellings in DIALECTS[version].wire_names(cls).items()
            for spelling in spellings
        }
        for prop, declared in schema["properties"].items():
            if not (declared.get("nullable") or resolve(version, declared).get("nullable")):
                continue
            data = _sample(version, schema, 0)
            _fill(version, cls, data)
            data[prop] = None
            if prop == "id" and cls in NAMED:
                with pytest.raises(DecodeError, match=r"\$\.id"):
                    vbo.from_wire(data, cls, api_version=version)
                continue
            model = vbo.from_wire(data, cls, api_version=version)
            if prop in fields and fields[prop] != "links":
                assert getattr(model, fields[prop]) is None, f"{version} {cls.__name__}.{prop}"
            nulled += 1
    assert nulled >= 20
    assert decoder.fallbacks == before, "the fast pass refused a null the schema allows"


def _walk(model: Any) -> Iterator[tuple[type, Any]]:
    yield type(model), model
    for field in attrs.fields(type(model)):
        value = getattr(model, field.name)
        if attrs.has(type(value)) and type(value) in set(NESTED.values()):
            yield from _walk(value)


# --- links ---------------------------------------------------------------------------------------------

LIVE_RELATIONS: dict[type, set[str]] = {
    m.JobLinks: {
        "self",
        "copyJob",
        "organization",
        "backupRepository",
        "jobsessions",
        "excludedItems",
        "selectedItems",
    },
    m.JobSessionLinks: {"self", "log", "job"},
    m.BackupRepositoryLinks: {"self", "proxy"},
    m.ProxyLinks: {"self", "repositories"},
    m.OrganizationLinks: {
        "self",
        "jobs",
        "groups",
        "users",
        "sites",
        "teams",
        "usedRepositories",
        "rbacRoles",
    },
    m.UsedRepositoryLinks: {"backupRepository"},
}
"""The HAL relations v6-v8 servers send (vb365-v6-v8.md §4; the schemas type ``_links`` as a free
map, so the names are the live servers')."""
UNREAD = {m.OrganizationLinks: {"rbacRoles"}}
"""Relations sent but not modelled (issue 10 asks for none of them)."""


@pytest.mark.parametrize("version", V6_PLUS)
def test_link_relations_are_the_ones_servers_send(version: str) -> None:
    dialect = DIALECTS[version]
    derived = {(d.model, d.relation) for d in dialect.derived if isinstance(d, LinkFromId | LinkThrough)}
    for links, relations in LIVE_RELATIONS.items():
        owner = next(
            cls
            for cls in m.RESOURCES
            if attrs.fields_dict(cls).get("links") and typing.get_type_hints(cls)["links"] is links
        )
        read = {spellings[0] for spellings in dialect.wire_names(links).values() if spellings}
        assert read - relations == ({"mailboxes"} if links is m.OrganizationLinks else set()), (
            version,
            links,
        )
        # v1's mailboxes relation is not on v6+ servers: reading it costs nothing, finds nothing
        assert relations - read - UNREAD.get(links, set()) == (
            {"jobsessions"} if links is m.JobLinks and version != "v6" else set()
        ), (version, links)
        for relation, spellings in dialect.wire_names(links).items():
            if not spellings and links is m.JobLinks and relation != "selected_mailboxes":
                assert (owner, relation) in derived, (
                    f"{version}: JobLinks.{relation} neither read nor derived"
                )


@pytest.mark.parametrize("version", V6_PLUS)
def test_dead_and_derived_links_lead_to_declared_operations(version: str) -> None:
    dialect = DIALECTS[version]
    rebuilt = {d.relation: d for d in dialect.derived if isinstance(d, LinkFromId)}
    through = {d.relation: d for d in dialect.derived if isinstance(d, LinkThrough)}
    has_job_sessions = any(t.lower() == f"/{version}/jobs/{{jobid}}/jobsessions" for t in paths(version))
    # The server's jobsessions link names /Jobs/{id}/jobsessions: dead wherever that path is gone.
    assert ("jobsessions" in rebuilt) == (not has_job_sessions)
    if "jobsessions" in rebuilt:
        route = rebuilt["jobsessions"].route
        _, op = operation(version, f"/{version}/{route.path}", "get")
        assert dict(route.query) == {"jobId": "{id}"}
        assert "jobId" in query_parameters(op)
    assert through["proxy"].via == "repository"
    assert through["proxy"].then == "proxy"
    assert dialect.wire_names(m.JobLinks)["repository"] == ("backupRepository",)


# --- the simulator's routes ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", V6_PLUS)
def test_the_simulator_routes_what_the_facts_list(version: str) -> None:
    spec = SIMULATED[version]
    served: set[tuple[str, str]] = set()
    for route in version_routes(spec):
        assert route.methods is not None
        for method in route.methods - {"HEAD"}:
            template, _ = operation(version, route.path, method.lower())
            served.add((template.lower(), method.lower()))
    for name, route, method in routes(DIALECTS[version]):
        template, _ = operation(version, f"/{version}/{route.path}", method)
        assert (template.lower(), method) in served, f"{version}: the simulator does not serve {name}"


@pytest.mark.parametrize("version", V6_PLUS)
def test_the_simulator_filters_and_views_are_the_declared_ones(version: str) -> None:
    spec = SIMULATED[version]
    _, jobs = operation(version, f"/{version}/Jobs", "get")
    _, repositories = operation(version, f"/{version}/BackupRepositories", "get")
    _, organizations = operation(version, f"/{version}/Organizations", "get")
    _, proxies = operation(version, f"/{version}/Proxies", "get")
    paging = {"limit", "offset"}
    assert spec.job_filters == set(query_parameters(jobs)) - paging
    assert spec.repository_filters == set(query_parameters(repositories)) - paging
    assert spec.organization_filters == set(query_parameters(organizations)) - paging - {"extendedView"}
    org_view = query_parameters(organizations)["extendedView"]["schema"]["default"]
    assert spec.organization_extended_default is org_view
    proxy_view = query_parameters(proxies).get("extendedView")
    assert spec.proxy_extended_default == (None if proxy_view is None else proxy_view["schema"]["default"])
    assert spec.paged_collections == (resolve(version, jobs["responses"]["200"]).get("type") != "array")
    _, log_items = operation(version, f"/{version}/JobSessions/{{sessionId}}/LogItems", "get")
    assert spec.log_filters == set(query_parameters(log_items)) - paging
    for kind in ("Users", "Groups", "Sites", "Teams"):
        _, listing = operation(version, f"/{version}/Organizations/{{organizationId}}/{kind}", "get")
        declared = {(kind.lower(), name) for name in set(query_parameters(listing)) - paging}
        assert {pair for pair in spec.directory_filters if pair[0] == kind.lower()} == declared


@pytest.mark.parametrize("version", V6_PLUS)
async def test_the_simulator_s_token_answers_are_the_declared_ones(version: str) -> None:
    """Both grants answer ``OAuthTokenResponse``. The schemas type ``.issued``/``.expires`` as
    ISO 8601; live v6 servers (OWIN) write RFC 1123 dates (vb365-v6-v8.md §3.2, the live notes
    win), and the simulator does so up to v7, the last OWIN version: those two are checked as
    RFC 1123 and the rest of the answer against the schema."""
    simulator = Simulator(
        SimulatorConfig(seed=5, epoch=dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC)), clock=lambda: 0.0
    )
    transport = httpx.ASGITransport(app=create_app(simulator=simulator))
    form = password_form("admin", "admin", DIALECTS[version].token_form)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        granted = await client.post(f"/{version}/Token", data=form)
        assert granted.status_code == 200
        refresh = refresh_form(granted.json()["refresh_token"], DIALECTS[version].token_form)
        renewed = await client.post(f"/{version}/Token", data=refresh)
        assert renewed.status_code == 200
    for answer in (granted.json(), renewed.json()):
        if version in ("v6", "v7"):
            for key in (".issued", ".expires"):
                assert parsedate_to_datetime(answer[key]).tzinfo is not None
                answer[key] = "2026-07-01T12:00:00Z"
        validate(version, f"/{version}/token", answer, method="post")


# --- to_wire ------------------------------------------------------------------------------------------


def _as_list(version: str, path: str, item: Any) -> Any:
    """One item as the answer of a list operation: a page object where it answers one."""
    _, op = operation(version, path, "get")
    listed = resolve(version, op["responses"]["200"])
    if listed.get("type") == "array":
        return [item]
    return {"offset": 0, "limit": 1, "results": [item], "_links": {}}


@pytest.mark.parametrize("version", V6_PLUS)
async def test_to_wire_writes_the_vendor_s_fields_and_reads_back(version: str) -> None:
    """Every model read from a server of a version, written back by ``to_wire`` in that version,
    is what the vendor's schema allows there (no field of another version: a v6/v7 session's job
    is its ``job`` link, v8's ``jobId`` is not theirs) and decodes to the same model."""
    epoch = dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC)
    simulator = Simulator(SimulatorConfig(seed=5, organizations=3, epoch=epoch), clock=lambda: 0.0)
    async with VBOClient(
        "https://testserver",
        username="admin",
        password="admin",
        api_version=version,
        transport=httpx.ASGITransport(app=create_app(simulator=simulator)),
    ) as vbo:
        jobs = await vbo.jobs()
        organization = (await vbo.organizations())[0]
        recent = await vbo.recent_sessions(epoch - dt.timedelta(days=30))
        single: dict[str, list[Any]] = {
            "/Organizations/{organizationId}": [organization],
            "/Jobs/{jobId}": jobs,
            "/JobSessions/{jobSessionsId}": [
                *[s for job in jobs for s in await vbo.job_sessions(job)],
                *[s for found in recent.values() for s in found],
            ],
            "/BackupRepositories/{repositoryId}": await vbo.backup_repositories(),
            "/Proxies/{proxyId}": await vbo.proxies(),
            "/License": [await vbo.license()],
            "/ServiceInstance": [await vbo.service_instance()],
        }
        listed: dict[str, list[Any]] = {
            "/Organizations/{organizationId}/usedRepositories": await vbo.organization_used_repositories(
                organization
            ),
            "/Jobs/{jobId}/SelectedItems": [
                item for job in jobs if job.links.selected_items for item in await job.links.selected_items
            ],
        }
    assert all(single.values())
    assert all(listed.values())
    for path, models in [*single.items(), *listed.items()]:
        for model in models:
            wire = vbo.to_wire(model)
            if path in listed:
                validate(version, f"/{version}{path}", _as_list(version, f"/{version}{path}", wire))
            else:
                validate(version, f"/{version}{path}", wire)
            assert vbo.from_wire(wire, type(model)) == model
