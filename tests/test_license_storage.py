"""The server's `License` and per-tenant storage (`UsedRepository`) on v6, v7 and v8, and the
single-resource getters for repositories and proxies.

Field names are checked against the vendor's OpenAPI facts (tests/data), payloads are decoded
both from hand-written answers and from the simulator, v1 refuses with `NotSupportedError`
before any request, and models survive ``to_wire``/``from_wire`` in every version.
"""

from __future__ import annotations

import datetime as dt
import json
import typing
from collections.abc import AsyncIterator, Callable
from functools import cache
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from vbo_async import (
    BackupRepository,
    CollectionLink,
    ConfigError,
    License,
    LicenseStatus,
    LicenseType,
    Link,
    NotFoundError,
    NotSupportedError,
    Organization,
    OrganizationLinks,
    Proxy,
    UsedRepository,
    UsedRepositoryLinks,
    VBOClient,
)
from vbo_async._dialects import DIALECTS
from vbo_async._enums import OpenEnum
from vbo_async._models import RESOURCES
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

EPOCH = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
V6_PLUS = ("v6", "v7", "v8")
PASSWORD = "pw-License-S3cret!"
ORG = "a3e1c7d2-6b4f-4e8a-b1c9-0f2d3e4a5b6c"
REPO = "7d9e2f41-0a3b-4c5d-8e6f-9a0b1c2d3e4f"
REPO_2 = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e40"
SCHEMAS = {License: "RESTLicense", UsedRepository: "RESTOrganizationStorageSpaceUsage"}


@cache
def facts() -> dict[str, Any]:
    path = Path(__file__).resolve().parent / "data" / "vb365-openapi-facts.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def schema(version: str, cls: type[Any]) -> dict[str, Any]:
    found: dict[str, Any] = facts()["versions"][version]["schemas"][SCHEMAS[cls]]
    return found


# --- the wire names, checked against the vendor's schemas ----------------------------------------------


def _python_type(prop: dict[str, Any]) -> Any:
    if prop.get("format") == "date-time":
        return dt.datetime
    return {"string": str, "integer": int, "boolean": bool, "number": float, "object": None}[prop["type"]]


@pytest.mark.parametrize("cls", [License, UsedRepository])
@pytest.mark.parametrize("version", V6_PLUS)
def test_wire_names_and_types_are_the_vendors(version: str, cls: type[Any]) -> None:
    properties = schema(version, cls)["properties"]
    names = DIALECTS[version].wire_names(cls)
    # A field read and written under a later version's name (`Dialect.off_wire`) is not this one's.
    off_wire = DIALECTS[version].off_wire.get(cls, frozenset())
    on_wire = {
        spellings[0]: field for field, spellings in names.items() if spellings and field not in off_wire
    }
    assert set(on_wire) == set(properties), f"{version} {cls.__name__}"
    hints = typing.get_type_hints(cls)
    for key, field in on_wire.items():
        prop = properties[key]
        annotation = hints[field]
        if key == "_links":
            assert annotation is UsedRepositoryLinks
            continue
        (inner,) = [t for t in typing.get_args(annotation) if t is not type(None)]
        if "enum" in prop:
            assert issubclass(inner, OpenEnum), key
            assert {member.value for member in inner} == set(prop["enum"]), key
        else:
            assert inner is _python_type(prop), key
        assert type(None) in typing.get_args(annotation), f"{key} must be optional"


def test_the_license_fields_each_version_lacks() -> None:
    wire = {version: set(schema(version, License)["properties"]) for version in V6_PLUS}
    assert wire["v6"] - wire["v7"] == {"expirationDate", "supportExpirationDate", "contactPerson"}
    assert wire["v7"] - wire["v6"] == {"licenseExpires", "gracePeriodExpires", "package"}
    assert wire["v7"] == wire["v8"]
    assert DIALECTS["v6"].wire_names(License)["license_expires"] == ("expirationDate",)
    assert DIALECTS["v7"].wire_names(License)["license_expires"] == ("licenseExpires",)
    assert DIALECTS["v7"].wire_names(License)["support_expires"] == ()


def test_the_models_are_registered_and_linked() -> None:
    assert License in RESOURCES
    assert UsedRepository in RESOURCES
    hints = typing.get_type_hints(OrganizationLinks)
    assert hints["used_repositories"] == CollectionLink[UsedRepository] | None
    assert typing.get_type_hints(UsedRepositoryLinks)["backup_repository"] == Link[BackupRepository] | None
    for cls in (License, UsedRepository, UsedRepositoryLinks):
        instance = cls()
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(instance, attrs.fields(cls)[0].name, None)


# --- hand-written answers ----------------------------------------------------------------------------

LICENSE_V6 = {
    "licenseID": "6c1b2a3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "email": "licensing@contoso.example",
    "status": "Valid",
    "expirationDate": "2027-03-31T00:00:00Z",
    "type": "Rental",
    "licensedTo": "Contoso Managed Services",
    "contactPerson": "Ada Lovelace",
    "totalNumber": 2500,
    "usedNumber": 1812,
    "newNumber": 14,
    "supportID": "04712345",
    "supportExpirationDate": "2027-03-31T00:00:00Z",
}
LICENSE_V7 = {
    "licenseID": "6c1b2a3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "email": "licensing@contoso.example",
    "status": "Expired",
    "licenseExpires": "2026-06-30T00:00:00Z",
    "gracePeriodExpires": "2026-07-30T00:00:00Z",
    "type": "Subscription",
    "package": "Backup",
    "licensedTo": "Contoso Managed Services",
    "totalNumber": 1000,
    "usedNumber": 1001,
    "newNumber": 0,
    "supportID": "04712345",
}


def used_v6(version: str, repository: str, used: int) -> dict[str, Any]:
    return {
        "usedSpaceBytes": used,
        "localCacheUsedSpaceBytes": None,
        "objectStorageUsedSpaceBytes": 52_428_800,
        "isAvailable": True,
        "details": "",
        "_links": {"backupRepository": {"href": f"/{version}/BackupRepositories/{repository}"}},
    }


def used_v8(repository: str, used: int) -> dict[str, Any]:
    return {"repositoryId": repository, **used_v6("v8", repository, used), "protectedObjectsCount": 42}


Route = Callable[[httpx.Request], Any]


def serving(version: str, routes: dict[str, Any], seen: list[httpx.Request]) -> httpx.MockTransport:
    """A vN server: a token for anyone, ``routes`` (path with query -> JSON or callable), else 404."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.raw_path.decode()
        if path.lower() == f"/{version}/token":
            return httpx.Response(
                200,
                json={
                    "access_token": "at",
                    "refresh_token": "rt",
                    "expires_in": 3600,
                    "token_type": "bearer",
                },
            )
        if request.headers.get("authorization") != "Bearer at":
            return httpx.Response(401)
        answer = routes.get(path)
        if answer is None:
            return httpx.Response(404, json={"message": f"no route {path}"})
        return httpx.Response(200, json=answer(request) if callable(answer) else answer)

    return httpx.MockTransport(handle)


def client(version: str, transport: httpx.AsyncBaseTransport) -> VBOClient:
    return VBOClient(
        "https://vbo.test:4443", username="admin", password=PASSWORD, api_version=version, transport=transport
    )


async def test_v6_license() -> None:
    seen: list[httpx.Request] = []
    async with client("v6", serving("v6", {"/v6/License": LICENSE_V6}, seen)) as vbo:
        found = await vbo.license()
    assert found == License(
        license_id="6c1b2a3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        status=LicenseStatus.VALID,
        type=LicenseType.RENTAL,
        package=None,
        license_expires=dt.datetime(2027, 3, 31, tzinfo=dt.UTC),
        grace_period_expires=None,
        support_expires=dt.datetime(2027, 3, 31, tzinfo=dt.UTC),
        licensed_to="Contoso Managed Services",
        email="licensing@contoso.example",
        contact_person="Ada Lovelace",
        support_id="04712345",
        total_number=2500,
        used_number=1812,
        new_number=14,
    )
    assert [r.url.path for r in seen] == ["/v6/Token", "/v6/License"]


@pytest.mark.parametrize("version", ["v7", "v8"])
async def test_v7_and_v8_license(version: str) -> None:
    seen: list[httpx.Request] = []
    async with client(version, serving(version, {f"/{version}/License": LICENSE_V7}, seen)) as vbo:
        found = await vbo.license()
    assert found.status is LicenseStatus.EXPIRED
    assert found.type is LicenseType.SUBSCRIPTION
    assert found.package == "Backup"
    assert found.license_expires == dt.datetime(2026, 6, 30, tzinfo=dt.UTC)
    assert found.grace_period_expires == dt.datetime(2026, 7, 30, tzinfo=dt.UTC)
    assert (found.support_expires, found.contact_person) == (None, None)
    assert (found.total_number, found.used_number, found.new_number) == (1000, 1001, 0)
    assert (found.license_id, found.support_id) == (LICENSE_V7["licenseID"], "04712345")


async def test_a_v6_license_read_as_v7_has_no_expiry() -> None:
    """Each version reads its own names: v7 does not guess at v6's ``expirationDate``."""
    async with client("v7", serving("v7", {}, [])) as vbo:
        assert vbo.from_wire(LICENSE_V6, License).license_expires is None
        assert vbo.from_wire(LICENSE_V6, License, api_version="v6").license_expires is not None


async def test_unknown_license_values_and_nulls() -> None:
    odd = {**LICENSE_V7, "status": "Suspended", "type": "Perpetual", "licenseExpires": None, "package": None}
    async with client("v8", serving("v8", {"/v8/License": odd}, [])) as vbo:
        found = await vbo.license()
    assert found.status == "Suspended"
    assert not found.status.is_known
    assert found.type == "Perpetual"
    assert (found.license_expires, found.package) == (None, None)
    assert vbo.from_wire({}, License, api_version="v8") == License()


@pytest.mark.parametrize("version", ["v6", "v7"])
async def test_used_repositories_before_v8_take_the_id_from_the_link(version: str) -> None:
    path = f"/{version}/Organizations/{ORG}/usedRepositories"
    page_2 = f"{path}?offset=1&limit=1"

    def first(request: httpx.Request) -> Any:
        return {
            "offset": 0,
            "limit": 1,
            "results": [used_v6(version, REPO, 10_737_418_240)],
            "_links": {"self": {"href": path}, "next": {"href": page_2}},
        }

    second = {"offset": 1, "limit": 1, "results": [used_v6(version, REPO_2, 1)], "_links": {}}
    seen: list[httpx.Request] = []
    routes = {f"{path}?limit=10000": first, page_2: second}
    async with client(version, serving(version, routes, seen)) as vbo:
        rows = await vbo.organization_used_repositories(ORG)
        assert [row.repository_id for row in rows] == [REPO, REPO_2]
        row = rows[0]
        assert row.used_space_bytes == 10_737_418_240
        assert row.local_cache_used_space_bytes is None
        assert row.object_storage_used_space_bytes == 52_428_800
        assert (row.is_available, row.details, row.protected_objects_count) == (True, "", None)
        assert row.links.backup_repository is not None
        assert row.links.backup_repository.url == f"https://vbo.test:4443/{version}/BackupRepositories/{REPO}"
        assert [r.url.raw_path.decode() for r in seen[1:]] == [f"{path}?limit=10000", page_2]


async def test_v8_used_repositories_read_repository_id_and_protected_objects() -> None:
    path = f"/v8/Organizations/{ORG}/usedRepositories"
    body = {"offset": 0, "limit": 10000, "results": [used_v8(REPO, 5)], "_links": {"self": {"href": path}}}
    repo = {"id": REPO, "name": "Primary", "capacityBytes": 100, "freeSpaceBytes": 60, "_links": {}}
    routes = {f"{path}?limit=10000": body, f"/v8/BackupRepositories/{REPO}": repo}
    async with client("v8", serving("v8", routes, [])) as vbo:
        organization = Organization(id=ORG)
        (row,) = await vbo.organization_used_repositories(organization)
        assert (row.repository_id, row.protected_objects_count, row.used_space_bytes) == (REPO, 42, 5)
        assert row.links.backup_repository is not None
        repository = await row.links.backup_repository
    assert isinstance(repository, BackupRepository)
    assert (repository.name, repository.capacity, repository.free_space) == ("Primary", 100, 60)


async def test_a_v8_row_without_repository_id_falls_back_to_the_link() -> None:
    wire = used_v8(REPO, 5)
    del wire["repositoryId"]
    async with client("v8", serving("v8", {}, [])) as vbo:
        assert vbo.from_wire(wire, UsedRepository).repository_id == REPO
        with_both = {**used_v8(REPO, 5), "repositoryId": REPO_2}
        assert vbo.from_wire(with_both, UsedRepository).repository_id == REPO_2  # the wire wins


# --- v1 has neither -------------------------------------------------------------------------------


async def test_v1_refuses_license_and_used_repositories_without_a_request() -> None:
    seen: list[httpx.Request] = []
    async with client("v1", serving("v1", {}, seen)) as vbo:
        with pytest.raises(NotSupportedError, match="v1") as caught:
            await vbo.license()
        assert (caught.value.version, caught.value.operation) == ("v1", "license")
        with pytest.raises(NotSupportedError, match="v1 has no organization used repositories") as caught:
            await vbo.organization_used_repositories(ORG)
        assert caught.value.operation == "organization_used_repositories"
        assert vbo.requests_sent == 0
    assert seen == []


async def test_bad_organization_arguments_are_refused_before_any_request() -> None:
    seen: list[httpx.Request] = []
    async with client("v8", serving("v8", {}, seen)) as vbo:
        for bad in ("", "a/b", 5, None):
            with pytest.raises(ConfigError):
                await vbo.organization_used_repositories(bad)  # type: ignore[arg-type]
        for method in (vbo.backup_repository, vbo.proxy):
            with pytest.raises(ConfigError):
                await method("../Jobs")
    assert seen == []


# --- against the simulator -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    return Simulator(SimulatorConfig(seed=5, organizations=4, epoch=EPOCH, password=PASSWORD))


@pytest.fixture(params=V6_PLUS)
async def vbo(request: pytest.FixtureRequest, simulator: Simulator) -> AsyncIterator[VBOClient]:
    transport = httpx.ASGITransport(app=create_app(simulator=simulator))
    async with client(str(request.param), transport) as found:
        yield found


async def test_the_simulators_license(vbo: VBOClient, simulator: Simulator) -> None:
    version = vbo.api_version
    assert version is not None
    found = await vbo.license()
    wire = simulator.license_wire(version=version)
    assert found == vbo.from_wire(wire, License)
    assert found.status is LicenseStatus.VALID
    assert found.license_expires is not None
    assert found.license_expires > EPOCH
    assert found.used_number is not None
    assert found.total_number is not None
    assert 0 < found.used_number <= found.total_number
    assert (found.support_expires is not None) == (version == "v6")
    assert (found.grace_period_expires is not None) == (version != "v6")
    again = vbo.to_wire(found)
    assert set(again) == {key for key, value in wire.items() if value is not None}
    assert vbo.from_wire(again, License) == found


async def test_the_simulators_used_repositories(vbo: VBOClient, simulator: Simulator) -> None:
    version = vbo.api_version
    assert version is not None
    repositories = {r.id: r for r in await vbo.backup_repositories()}
    for organization in await vbo.organizations():
        rows = await vbo.organization_used_repositories(organization)
        assert rows
        assert organization.links.used_repositories is not None
        assert await organization.links.used_repositories == rows
        wire = simulator.used_repositories_wire(organization.id, version=version, limit=10_000)["results"]
        assert len(rows) == len(wire)
        for row, raw in zip(rows, wire, strict=True):
            assert row.repository_id is not None
            assert row.repository_id in repositories
            assert raw["_links"]["backupRepository"]["href"].endswith(row.repository_id)
            assert row.used_space_bytes == raw["usedSpaceBytes"]
            assert (row.protected_objects_count is not None) == (version == "v8")
            assert row.links.backup_repository is not None
            assert await row.links.backup_repository == repositories[row.repository_id]
            assert vbo.from_wire(vbo.to_wire(row), UsedRepository) == row


async def test_backup_repository_and_proxy_by_id(vbo: VBOClient, simulator: Simulator) -> None:
    for repository in await vbo.backup_repositories():
        assert await vbo.backup_repository(repository.id) == repository
    for proxy in await vbo.proxies():
        found = await vbo.proxy(proxy.id)
        assert isinstance(found, Proxy)
        assert (found.id, found.host_name) == (proxy.id, proxy.host_name)
    with pytest.raises(NotFoundError):
        await vbo.backup_repository("0b6f9a2e-0000-4000-8000-000000000000")
    with pytest.raises(NotFoundError):
        await vbo.proxy("0b6f9a2e-0000-4000-8000-000000000000")


async def test_v1_repository_and_proxy_by_id(simulator: Simulator) -> None:
    transport = httpx.ASGITransport(app=create_app(simulator=simulator))
    async with client("v1", transport) as vbo:
        repository = (await vbo.backup_repositories())[0]
        assert await vbo.backup_repository(repository.id) == repository
        proxy = (await vbo.proxies())[0]
        assert (await vbo.proxy(proxy.id)).id == proxy.id


# --- round trips --------------------------------------------------------------------------------------

FULL_LICENSE = License(
    license_id="6c1b2a3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    status=LicenseStatus.VALID,
    type=LicenseType.AWS_PRIVATE_OFFER,
    package="Backup",
    license_expires=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
    grace_period_expires=dt.datetime(2027, 2, 1, tzinfo=dt.UTC),
    support_expires=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
    licensed_to="Fabrikam",
    email="l@fabrikam.example",
    contact_person="Grace Hopper",
    support_id="1",
    total_number=10,
    used_number=9,
    new_number=1,
)


@pytest.mark.parametrize("version", V6_PLUS)
async def test_license_round_trips_keeping_what_the_version_has(version: str) -> None:
    async with client(version, serving(version, {}, [])) as vbo:
        wire = vbo.to_wire(FULL_LICENSE)
        assert set(wire) == set(schema(version, License)["properties"])
        back = vbo.from_wire(json.loads(json.dumps(wire)), License)
    lost = {"v6": {"package": None, "grace_period_expires": None}}.get(
        version, {"support_expires": None, "contact_person": None}
    )
    assert back == attrs.evolve(FULL_LICENSE, **lost)
    assert wire["licenseID"] == FULL_LICENSE.license_id
    assert wire["type"] == "AwsPrivateOffer"


@pytest.mark.parametrize("version", V6_PLUS)
async def test_used_repository_round_trips(version: str) -> None:
    async with client(version, serving(version, {}, [])) as vbo:
        raw = used_v8(REPO, 7) if version == "v8" else used_v6(version, REPO, 7)
        row = vbo.from_wire(raw, UsedRepository)
        wire = vbo.to_wire(row)
        assert set(wire) <= set(schema(version, UsedRepository)["properties"])
        assert ("repositoryId" in wire) == (version == "v8")
        assert vbo.from_wire(json.loads(json.dumps(wire)), UsedRepository) == row
        assert row.repository_id == REPO
        as_v8 = vbo.to_wire(row, api_version="v8")
        assert as_v8["repositoryId"] == REPO
