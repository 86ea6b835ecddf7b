"""The public surface: one sorted, complete ``__all__`` and the named contract of issue 2."""

from __future__ import annotations

import ast
import enum
import importlib
import importlib.metadata
import inspect
import json
import re
import subprocess
import sys
import typing
from pathlib import Path
from types import ModuleType

import attrs
import httpx
import pytest

import vbo_async
from vbo_async import VBOClient, VBOError

MODELS = [
    "BackupRepository",
    "BackupRepositoryLinks",
    "BackupWindow",
    "Job",
    "JobLinks",
    "JobSession",
    "JobSessionLinks",
    "JobSessionStatistics",
    "Organization",
    "OrganizationLinks",
    "Proxy",
    "ProxyLinks",
    "SchedulePolicy",
    "SelectedMailbox",
    "SelectedMailboxLinks",
]
ENUMS = ["Bottleneck", "DailyType", "JobStatus", "PeriodicallyEvery", "ProxyStatus", "ScheduleType"]
ERRORS = [
    "APIError",
    "AuthenticationError",
    "ClientStateError",
    "ConfigError",
    "DecodeError",
    "LinkError",
    "NotFoundError",
    "RateLimitedError",
    "ResponseTooLargeError",
    "ServerError",
    "TransportError",
    "VBOError",
]
OTHERS = ["CollectionLink", "DEFAULT_MAX_RESPONSE_BYTES", "Link", "RetryPolicy", "VBOClient"]
CLIENT_METHODS = [
    "organizations",
    "organization",
    "organization_jobs",
    "jobs",
    "job",
    "follow",
    "start_job",
    "stop_job",
    "enable_job",
    "disable_job",
    "aclose",
    "discover_api_version",
]


def _isort_key(name: str) -> tuple[int, str]:
    """The order of ruff's RUF022: SCREAMING_CASE, then CamelCase, then the rest."""
    if name.isupper() or re.fullmatch(r"[A-Z0-9_]+", name):
        return 0, name
    if name[:1].isupper():
        return 1, name
    return 2, name


def test_all_is_sorted() -> None:
    assert vbo_async.__all__ == sorted(vbo_async.__all__, key=_isort_key)
    assert len(vbo_async.__all__) == len(set(vbo_async.__all__))


def test_all_is_complete() -> None:
    for name in vbo_async.__all__:
        getattr(vbo_async, name)  # each imported when first asked for, then kept
    public = {
        name
        for name, value in vars(vbo_async).items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"
    }
    assert public == set(vbo_async.__all__)


def test_every_name_in_all_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from vbo_async import *", namespace)
    imported = {name for name in namespace if name != "__builtins__"}
    assert imported == set(vbo_async.__all__)
    for name in vbo_async.__all__:
        assert getattr(vbo_async, name) is namespace[name]


def _type_checking_imports() -> dict[str, str]:
    """Each name the package's ``if TYPE_CHECKING:`` block imports, and the module it names."""
    tree = ast.parse(Path(vbo_async.__file__).read_text())
    (block,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "_typing.TYPE_CHECKING")
    ]
    found = {}
    for node in ast.walk(block):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 1
            assert node.module is not None
            for alias in node.names:
                found[alias.asname or alias.name] = node.module
    return found


def test_each_public_name_is_the_object_its_type_checking_import_names() -> None:
    """The package imports its names when first asked for (so that ``python -m vbo_async`` starts
    without the library): what a type checker reads from the ``TYPE_CHECKING`` imports is what
    the package gives, name for name, and each module named is one it looks in."""
    imports = _type_checking_imports()
    assert set(imports) == set(vbo_async.__all__)
    assert set(imports.values()) == set(vbo_async._HOMES)
    for name, module in imports.items():
        assert getattr(vbo_async, name) is getattr(importlib.import_module(f"vbo_async.{module}"), name), name


def test_importing_the_package_imports_nothing_of_the_library_until_a_name_is_asked_for() -> None:
    probe = (
        "import sys\n"
        "import vbo_async\n"
        "heavy = ('httpx', 'aiohttp', 'attrs', 'cattrs', 'vbo_async._client', 'vbo_async._models')\n"
        "print([name for name in heavy if name in sys.modules])\n"
        "print(sorted(set(dir(vbo_async)) - set(vars(vbo_async))) == sorted(vbo_async.__all__))\n"
        "job = vbo_async.Job\n"
        "print(vars(vbo_async)['Job'] is job, 'vbo_async._client' in sys.modules)\n"
        "try:\n"
        "    vbo_async.NoSuchName\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines() == [
        "[]",
        "True",
        "True True",
        "module 'vbo_async' has no attribute 'NoSuchName'",
    ]


def test_the_named_contract_is_exported() -> None:
    missing = set(MODELS + ENUMS + ERRORS + OTHERS) - set(vbo_async.__all__)
    assert missing == set()


@pytest.mark.parametrize("name", CLIENT_METHODS)
def test_client_methods(name: str) -> None:
    method = getattr(VBOClient, name)
    assert inspect.iscoroutinefunction(method), name
    assert method.__doc__, name


def test_client_is_an_async_context_manager() -> None:
    assert inspect.iscoroutinefunction(VBOClient.__aenter__)
    assert inspect.iscoroutinefunction(VBOClient.__aexit__)
    assert not hasattr(VBOClient, "close")  # no sync twin API


def test_client_options_are_keyword_only() -> None:
    parameters = list(inspect.signature(VBOClient).parameters.values())
    assert parameters[0].name == "base_url"
    assert parameters[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:])
    names = {p.name for p in parameters}
    assert {"username", "password", "verify", "timeout", "max_concurrency", "transport", "retry"} <= names


@pytest.mark.parametrize("name", MODELS)
def test_models_are_frozen_attrs_classes_with_snake_case_fields(name: str) -> None:
    cls = getattr(vbo_async, name)
    assert attrs.has(cls)
    assert cls.__doc__
    for field in attrs.fields(cls):
        assert re.fullmatch(r"[a-z][a-z0-9_]*", field.name), field.name
    instance = cls(id="x") if "id" in attrs.fields_dict(cls) else cls()
    first = attrs.fields(cls)[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(instance, first, None)


@pytest.mark.parametrize("name", ENUMS)
def test_enums_are_string_enums(name: str) -> None:
    cls = getattr(vbo_async, name)
    assert issubclass(cls, enum.StrEnum)
    member = next(iter(cls))
    assert member == member.value
    assert member.is_known


@pytest.mark.parametrize("name", ERRORS)
def test_errors_derive_from_vbo_error(name: str) -> None:
    cls = getattr(vbo_async, name)
    assert issubclass(cls, VBOError)
    assert issubclass(cls, Exception)
    assert cls.__doc__


def test_version_matches_the_distribution() -> None:
    assert vbo_async.__version__ == importlib.metadata.version("vbo-async")


def test_package_is_typed() -> None:
    assert (Path(vbo_async.__file__).parent / "py.typed").is_file()


def test_the_shipped_seed_is_the_vendor_reference() -> None:
    """tests/data/seed-job.json is a copy of the shared reference; they must not drift apart."""
    shipped = Path(__file__).parent / "data" / "seed-job.json"
    reference = Path(__file__).resolve().parents[2] / "shared" / "reference" / "seed-job.json"
    if not reference.is_file():
        pytest.skip("the shared reference is not beside this checkout")
    assert json.loads(shipped.read_text()) == json.loads(reference.read_text())


def _classes_in(hint: object) -> set[type]:
    """The classes a type hint is made of (its own, its arguments', recursively)."""
    found = {hint} if isinstance(hint, type) else set()
    origin = typing.get_origin(hint)
    if isinstance(origin, type):
        found.add(origin)
    for argument in typing.get_args(hint):
        found |= _classes_in(argument)
    return found


def test_the_client_s_public_members_take_and_give_only_public_types() -> None:
    """A public method whose annotations name a private class (``dialect()`` returned the private
    ``Dialect``) makes users' code depend on what may change in any release."""
    private = []
    for name, member in inspect.getmembers(VBOClient):
        if name.startswith("_"):
            continue
        function = member.fget if isinstance(member, property) else member
        if not callable(function):
            continue
        hints = typing.get_type_hints(function, vars(sys.modules[VBOClient.__module__]))
        for cls in set().union(*map(_classes_in, hints.values())):
            if cls.__module__.startswith("vbo_async") and getattr(vbo_async, cls.__name__, None) is not cls:
                private.append(f"{name}: {cls.__module__}.{cls.__qualname__}")
    assert private == []


async def test_discover_api_version_finds_the_version_once_and_gives_it() -> None:
    from vbo_async.simulator import SimulatorConfig, create_app

    app = create_app(SimulatorConfig(seed=1, organizations=1, api_versions=("v6", "v7")))
    async with VBOClient(
        "https://vbo.test", username="admin", password="admin", transport=httpx.ASGITransport(app=app)
    ) as vbo:
        assert vbo.api_version is None
        assert await vbo.discover_api_version() == "v7"
        assert vbo.api_version == "v7"
        assert await vbo.discover_api_version() == "v7"
        assert vbo.token_requests == 2  # v8 ruled out, then v7's token: nothing more
