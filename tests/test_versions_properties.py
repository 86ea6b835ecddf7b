"""Property tests of v6, v7 and v8 decoding: every field holds what the version's wire says.

``tests/test_properties.py`` checks v1 answers against an oracle that shares no code with the
decoder. This module extends that oracle to the later versions' spellings, written out here from
the reference notes (``vb365-v6-v8.md``) rather than read from the dialects: the renamed fields
(``capacityBytes``, ``backupWindowSettings``, ``backupRepository``...), the ids read from a link
where the wire has none (a v6/v7 job's organization, a session's job), and the links the client
builds itself (a v6+ job's ``proxy`` through its repository, v7+ ``jobsessions``, v8
``jobs`` of an organization, v6+ ``repositories`` of a proxy). The reference answers of every
version (``tests/versions_data.py``) are mutated as in the v1 tests — values replaced with
hostile ones, keys dropped or added, numbers and booleans turned into strings — and decoding must
either raise `DecodeError` or give exactly what the wire says.

Examples per test: ``VBO_PROPERTY_EXAMPLES`` (default 150); derandomized unless
``VBO_PROPERTY_RANDOM=1``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import attrs
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbo_async import (
    BackupRepository,
    BackupWindow,
    Job,
    JobLinks,
    JobSession,
    JobSessionLinks,
    JobSessionStatistics,
    Link,
    ObjectStorage,
    Organization,
    OrganizationLinks,
    Proxy,
    ProxyLinks,
    SchedulePolicy,
    VBOClient,
)
from vbo_async._links import ThroughLink

from . import versions_data as data
from .test_properties import MISSING, PROPERTY, _camel, _fail, _unwrap, check_value, decode_or_none, mutated

VERSIONS = ("v6", "v7", "v8")
Spellings = dict[tuple[type[Any], str], tuple[str, ...]]

_V6: Spellings = {
    (Proxy, "enable_network_throttling"): ("enableNetworkThrottling",),
    (JobSessionStatistics, "processing_rate_bytes_ps"): ("processingRateBytesPS",),
    (JobSessionStatistics, "processing_rate_items_ps"): ("processingRateItemsPS",),
    (JobSessionStatistics, "read_rate_bytes_ps"): ("readRateBytesPS",),
    (JobSessionStatistics, "write_rate_bytes_ps"): ("writeRateBytesPS",),
    (Organization, "is_sharepoint_online"): ("isSharePointOnline",),
    (Proxy, "roles"): ("role",),  # v8's list of roles
    (ObjectStorage, "size_limit_gb"): ("sizeLimitGB",),
    (SchedulePolicy, "backup_window"): ("backupWindowSettings",),
    (SchedulePolicy, "periodically_window"): ("periodicallyWindowSettings",),
    (BackupWindow, "backup_intervals_array"): ("backupWindow",),
    (BackupRepository, "capacity"): ("capacityBytes",),
    (BackupRepository, "free_space"): ("freeSpaceBytes",),
    (JobLinks, "repository"): ("backupRepository",),
    (JobLinks, "proxy"): (),  # built through the repository
    (JobLinks, "selected_mailboxes"): (),  # v1 only
    (ProxyLinks, "repositories"): (),  # built from the id
    (Job, "organization_id"): (),  # from the organization link
    (JobSession, "job_id"): ("jobId",),  # v8's name, read on v6/v7 too; else from the job link
}
"""Where v6 differs from ``camelCase(attribute)``; v7 and v8 below, as differences from it."""
SPELLINGS: dict[str, Spellings] = {"v6": _V6, "v7": {**_V6, (JobLinks, "jobsessions"): ()}}
SPELLINGS["v8"] = {
    **SPELLINGS["v7"],
    (Job, "organization_id"): ("organizationId",),
    (OrganizationLinks, "jobs"): (),  # built from the id
}
FROM_LINKS: dict[tuple[type[Any], str], tuple[type[Any], str]] = {
    # (model, field) -> (its links class, the link whose last path segment fills it when the
    # wire has no value)
    (Job, "organization_id"): (JobLinks, "organization"),
    (Job, "repository_id"): (JobLinks, "repository"),
    (JobSession, "job_id"): (JobSessionLinks, "job"),
}
BUILT = {
    # links class -> relation -> (version -> the href built from the resource's id, or None)
    OrganizationLinks: {"jobs": {"v8": "/v8/Jobs?organizationId={}"}},
    ProxyLinks: {"repositories": {v: f"/{v}/BackupRepositories?proxyId={{}}" for v in VERSIONS}},
    JobLinks: {"jobsessions": {v: f"/{v}/JobSessions?jobId={{}}" for v in ("v7", "v8")}},
}


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, VBOClient]]:
    """A client per version, used only to decode (its transport refuses every request)."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request expected, got {request.method} {request.url}")

    made = {
        version: VBOClient(
            "https://vbo.test:4443",
            username="u",
            password="p",
            transport=httpx.MockTransport(refuse),
            api_version=version,
        )
        for version in VERSIONS
    }
    yield made
    for client in made.values():
        asyncio.run(client.aclose())


def _keys(version: str, cls: type[Any], name: str) -> tuple[str, ...]:
    return SPELLINGS[version].get((cls, name), (_camel(name),))


def _sent(wire: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in wire:
            return wire[key]
    return MISSING


def _segment(href: Any) -> str | None:
    if not isinstance(href, str):
        return None
    try:
        path = urlsplit(href).path
    except ValueError:
        return None
    return unquote(path.rstrip("/").rpartition("/")[2]) or None


def _href(entry: Any) -> Any:
    return entry.get("href") if isinstance(entry, dict) else entry


def check_model(version: str, model: Any, wire: Any, cls: type[Any], path: str = "$") -> None:
    """Assert that every field of ``model`` holds what the ``version`` answer ``wire`` says."""
    if not isinstance(wire, dict):
        _fail(path, wire, model, f"accepted a non-object as {cls.__name__}")
    if type(model) is not cls:
        _fail(path, wire, model, f"expected a {cls.__name__}")
    for field in attrs.fields(cls):
        value = getattr(model, field.name)
        sent = _sent(wire, _keys(version, cls, field.name))
        where = f"{path}.{field.name}"
        if (cls, field.name) in FROM_LINKS and (sent is MISSING or sent is None):
            links_cls, relation = FROM_LINKS[(cls, field.name)]
            links = wire.get("_links")
            entry = _sent(links, _keys(version, links_cls, relation)) if isinstance(links, dict) else None
            if value != _segment(_href(entry)):
                _fail(where, entry, value, "should be the last path segment of the link's href")
            continue
        check_field(version, model, value, sent, field, where)


def check_field(version: str, model: Any, value: Any, sent: Any, field: Any, where: str) -> None:
    inner, _ = _unwrap(field.type)
    if isinstance(inner, type) and attrs.has(inner) and inner.__name__.endswith("Links"):
        check_links(version, model, value, {} if sent is MISSING or sent is None else sent, inner, where)
    elif isinstance(inner, type) and attrs.has(inner) and sent is not MISSING and sent is not None:
        check_model(version, value, sent, inner, where)
    else:
        check_value(value, sent, field.type, where, field.default)


def check_links(version: str, model: Any, links: Any, wire: Any, cls: type[Any], path: str) -> None:
    if not isinstance(wire, dict):
        _fail(path, wire, links, "accepted a non-object as _links")
    if type(links) is not cls:
        _fail(path, wire, links, f"expected {cls.__name__}")
    for field in attrs.fields(cls):
        link = getattr(links, field.name)
        where = f"{path}.{field.name}"
        built = BUILT.get(cls, {}).get(field.name, {}).get(version)
        if built is not None:
            expected = built.format(quote(model.id, safe="")) if model.id else None
            if (link is None) != (expected is None) or (link is not None and link.href != expected):
                _fail(where, model.id, link, f"should be built from the id as {expected!r}")
            continue
        if cls is JobLinks and field.name == "proxy":  # through the job's repository
            repository = links.repository
            if (link is None) != (repository is None):
                _fail(where, repository, link, "a proxy link goes through the repository link, if any")
            if link is not None and (type(link) is not ThroughLink or link.via is not repository):
                _fail(where, repository, link, "should be a ThroughLink via the repository link")
            continue
        keys = _keys(version, cls, field.name)
        href = _href(_sent(wire, keys)) if keys else None
        if not isinstance(href, str):
            if link is not None:
                _fail(where, wire, link, "an absent or malformed link must be None")
            continue
        if not isinstance(link, Link) or link.href != href:
            _fail(where, href, link, "wrong link")


def _seeds(version: str) -> list[tuple[type[Any], dict[str, Any]]]:
    return [
        (Job, data.job_wire(version)),
        (Job, {**data.job_wire(version), "schedulePolicy": data.windowed_policy(version)}),
        (JobSession, data.session_wire(version)),
        (Organization, data.organization_wire(version)),
        (BackupRepository, data.repository_wire(version)),
        (Proxy, data.proxy_wire(version)),
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_reference_answers_decode_as_the_oracle_reads_them(
    clients: dict[str, VBOClient], version: str
) -> None:
    for cls, wire in _seeds(version):
        check_model(version, clients[version].from_wire(wire, cls), wire, cls)


def test_the_oracle_catches_a_field_read_under_another_version_s_name(clients: dict[str, VBOClient]) -> None:
    """v1 spells a repository's capacity ``capacity``: read as a v6 answer it is not there."""
    wire = {**data.repository_wire("v6"), "capacity": 5}
    repository = attrs.evolve(clients["v6"].from_wire(wire, BackupRepository), capacity=5)
    with pytest.raises(AssertionError, match="capacity"):
        check_model("v6", repository, wire, BackupRepository)


@PROPERTY
@given(version=st.sampled_from(VERSIONS), choice=st.data())
def test_mutated_answers_of_every_version_decode_as_the_wire_says_or_not_at_all(
    clients: dict[str, VBOClient], version: str, choice: st.DataObject
) -> None:
    cls, original = choice.draw(st.sampled_from(_seeds(version)), label="resource")
    wire = choice.draw(mutated(original), label="wire")
    model = decode_or_none(lambda: clients[version].from_wire(wire, cls))
    if model is not None:
        check_model(version, model, wire, cls)
