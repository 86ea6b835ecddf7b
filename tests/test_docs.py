"""The documentation's Python: every code block of the README and docs, and of the public docstrings,
type-checks with mypy --strict, and the examples of the README and docs/embedding.md run against the
simulator on 127.0.0.1, on every API version."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vbo_async import NotSupportedError
from vbo_async.simulator import Simulator, SimulatorConfig, create_app

from .conftest import serve

ROOT = Path(__file__).parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, str]]:
    """(a name, the source) of every ```python block of the documents."""
    found = []
    for document in DOCUMENTS:
        for number, match in enumerate(BLOCK.finditer(document.read_text(encoding="utf-8")), 1):
            found.append((f"{document.stem.lower().replace('-', '_')}_{number}", match.group(1)))
    return found


DOCSTRING_PRELUDE = """\
from datetime import UTC, datetime, timedelta

from vbo_async import *  # noqa: F403

# The names the docstrings' examples take as given.
secret: str
user: str
pw: str
org_id: str
vbo: VBOClient
job: Job
targets: list[PollTarget]
result: PollResult


async def example() -> object:  # a block may end in a handler's return
"""


def docstring_blocks() -> list[tuple[str, str]]:
    """(a name, a module mypy can check) for every ```python block in the docstrings of
    `vbo_async`, its exports and their public methods: the block as the body of an async function,
    after the names it takes as given."""
    import inspect
    import textwrap

    import vbo_async

    owners: list[tuple[str, object]] = [("vbo_async", vbo_async)]
    for name in vbo_async.__all__:
        export = getattr(vbo_async, name)
        owners.append((name, export))
        if inspect.isclass(export) and export.__module__.startswith("vbo_async"):
            owners += [
                (f"{name}.{attribute}", member)
                for attribute, member in vars(export).items()
                if not attribute.startswith("_") and callable(member)
            ]
    found = []
    for owner, value in owners:
        doc = inspect.getdoc(value) if inspect.ismodule(value) or callable(value) else None
        for number, match in enumerate(BLOCK.finditer(doc or ""), 1):
            body = textwrap.indent(match.group(1), "    ")
            module = f"{DOCSTRING_PRELUDE}{body}    return None\n"
            found.append((f"docstring_{owner.replace('.', '_').lower()}_{number}", module))
    return found


def test_the_documents_have_code_blocks() -> None:
    names = [name for name, _ in blocks()]
    assert any(name.startswith("readme_") for name in names)
    assert any(name.startswith("embedding_") for name in names)
    docstrings = [name for name, _ in docstring_blocks()]
    assert "docstring_vbo_async_1" in docstrings
    assert "docstring_vboclient_1" in docstrings
    assert "docstring_poll_jobs_1" in docstrings


def test_every_code_block_type_checks(tmp_path: Path) -> None:
    files = []
    for name, source in [*blocks(), *docstring_blocks()]:
        path = tmp_path / f"{name}.py"
        path.write_text(source, encoding="utf-8")
        files.append(str(path))
    files += [str(path) for path in EXAMPLES]
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / ".mypy"),
            *files,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"mypy --strict on the documentation's code:\n{completed.stdout}{completed.stderr}")


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_examples_compile(path: Path) -> None:
    compile(path.read_text(encoding="utf-8"), str(path), "exec")


# --- the README's examples, run -------------------------------------------------------------------

VERSIONS = ("v1", "v6", "v7", "v8")
EPOCH = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
"""The simulator's "now": the same data, and the same job to start, on every run."""


def readme_block(heading: str) -> str:
    """The first ```python block after the README's ``heading`` line."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    match = BLOCK.search(text, start)
    assert match is not None
    return match.group(1)


def adapt(source: str, replacements: dict[str, str]) -> str:
    """``source`` with each placeholder replaced; a placeholder the README no longer has fails."""
    for old, new in replacements.items():
        assert source.count(old) == 1, f"the README's example no longer contains {old!r}"
        source = source.replace(old, new)
    return source


def run_block(source: str, name: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"readme_{name}"}
    exec(compile(source, f"README.md ({name})", "exec"), namespace)
    return namespace


def simulator_app(version: str) -> Any:
    return create_app(SimulatorConfig(seed=1, organizations=3, api_versions=(version,), epoch=EPOCH))


def items(wire: Any) -> list[dict[str, Any]]:
    """The items of a bare array or of a v8 page object."""
    found = wire["results"] if isinstance(wire, dict) else wire
    assert isinstance(found, list)
    return found


def jobs_of(simulator: Simulator, version: str) -> list[dict[str, Any]]:
    """Every job the simulator holds, as ``GET /{version}/Jobs`` lists them."""
    return items(simulator.jobs_wire(version=version, limit=10_000))


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_client_example_runs(
    version: str, tls_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    source = readme_block("## Using the client")
    app = simulator_app(version)
    simulator: Simulator = app.state.simulator
    async with serve(app, certfile=tls_files[0]) as port:
        source = adapt(
            source,
            {
                '"https://vb365.example.com:4443"': repr(f"https://127.0.0.1:{port}"),
                '"svc-monitor@example.com"': '"admin"',
                'os.environ["VB365_PASSWORD"]': '"admin"',
                '"/etc/ssl/certs/vb365-ca.pem"': repr(str(tls_files[1])),
                'asyncio.run(main("b2d9414d-c417-4a94-be3b-b38a3c2e8a7b"))': "",
            },
        )
        main = run_block(source, "client")["main"]
        for organization_id in simulator.organization_ids():
            if version == "v1":  # the README says service_instance() is v6+
                with pytest.raises(NotSupportedError):
                    await main(organization_id)
            else:
                await main(organization_id)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines.count(version) == len(simulator.organization_ids())  # print(vbo.api_version)
    for name in {job["name"] for job in jobs_of(simulator, version)}:
        assert any(line.startswith(f"{name} ") for line in lines), name
    if version != "v1":
        assert lines[-1] == simulator.service_instance_wire(version=version)["version"]
    # The seed holds a job whose latest session failed: the example starts it, once.
    assert list(simulator.stats.job_actions.values()) == [1]


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_polling_example_runs(
    version: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = readme_block("## Polling many tenants")
    app = simulator_app(version)
    simulator: Simulator = app.state.simulator
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with serve(app) as port:
        servers = re.search(r"^SERVERS = \{.*?^\}", source, re.S | re.M)
        assert servers is not None
        source = adapt(source, {servers.group(0): f"SERVERS = {{{f'http://127.0.0.1:{port}'!r}: 'admin'}}"})
        assert await run_block(source, "polling")["main"]() == 0
    captured = capsys.readouterr()
    reported = captured.out.splitlines()
    assert len(reported) == len(jobs_of(simulator, version))  # one line per job
    assert {line.split()[0] for line in reported} == {
        o["name"] for o in items(simulator.organizations_wire(version=version))
    }
    assert "FAILED" not in captured.err
    # Only a repository of a v8 proxy pool has no proxy: the example shows it as such, not as an error.
    assert "cannot read its" not in captured.err
    assert any(line.endswith(" via a proxy pool") for line in reported) == (version == "v8")


async def test_the_simulator_example_runs() -> None:
    namespace = run_block(readme_block("## The simulator"), "simulator")
    await namespace["test_every_job_survives_faults"]()


# --- docs/embedding.md's examples, run -------------------------------------------------------------


def embedding_blocks() -> list[str]:
    text = (ROOT / "docs" / "embedding.md").read_text(encoding="utf-8")
    return [match.group(1) for match in BLOCK.finditer(text)]


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_embedding_examples_run(version: str, tmp_path: Path) -> None:
    import httpx

    backend, saved, typed = embedding_blocks()
    app = simulator_app(version)
    simulator: Simulator = app.state.simulator
    async with serve(app) as port:
        source = adapt(
            backend,
            {
                '"https://vb365-east.example.net:4443"': repr(f"http://127.0.0.1:{port}"),
                'username="svc", password="..."': 'username="admin", password="admin"',
            },
        )
        web = run_block(source, "embedding")["app"]
        repository_of = run_block(typed, "embedding_typed")["repository_of"]
        organization_id = simulator.organization_ids()[0]
        async with web.router.lifespan_context(web):
            transport = httpx.ASGITransport(app=web)
            async with httpx.AsyncClient(transport=transport, base_url="http://backend") as http:
                found = await http.get(f"/servers/east/organizations/{organization_id}/jobs")
                assert found.status_code == 200
                assert found.json()
                served = {job["id"] for job in jobs_of(simulator, version)}
                assert {job["id"] for job in found.json()} <= served
                assert all(job["organization_id"] == organization_id for job in found.json())
                assert (await http.get("/servers/west/organizations/x/jobs")).status_code == 404
                unknown = await http.get("/servers/east/organizations/no-such-tenant/jobs")
                assert unknown.status_code == 404
                assert "no-such-tenant" in unknown.json()["error"]
                assert (await http.get("/servers/east/organizations/a%5Cb/jobs")).status_code == 400
            vbo = web.state.clients["east"]
            jobs = await vbo.organization_jobs(organization_id)
            assert [job.id for job in jobs] == [job["id"] for job in found.json()]
            job = jobs[0]
            repository = await repository_of(vbo, job)
            assert repository.id == job.repository_id
        # The saved session's example: the second run resumes what the first one saved.
        kept = tmp_path / "vb365.session"
        count = run_block(
            adapt(saved, {'Path("/var/lib/monitor/vb365.session")': f"Path({str(kept)!r})"}),
            "embedding_saved",
        )["organization_count"]
        url = f"http://127.0.0.1:{port}"
        grants = sum(simulator.stats.token_requests.values())
        assert await count(url, "admin", "admin") == await count(url, "admin", "admin") == 3
        assert sum(simulator.stats.token_requests.values()) == grants + 1
        assert kept.stat().st_mode & 0o777 == 0o600


def test_the_retry_window_the_documents_name_is_the_one_health_uses() -> None:
    """The README, docs/monitoring.md and check's --help say how long a failure the server will
    retry stays a WARNING: the window `assess` uses (`RETRY_WITHIN`), in the hours they name."""
    from click.testing import CliRunner

    from vbo_async._cli import _app
    from vbo_async._health import RETRY_WITHIN

    hours = RETRY_WITHIN / dt.timedelta(hours=1)
    assert hours == int(hours)
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    guide = " ".join((ROOT / "docs" / "monitoring.md").read_text(encoding="utf-8").split())
    shown = CliRunner().invoke(_app.cli, ["check", "--help"], terminal_width=100)
    assert shown.exit_code == 0, shown.output
    check_help = " ".join(shown.output.split())
    assert f"the failure ended within the job's retry wait and {int(hours)} hours more" in readme
    assert f"will retry (within its retry wait and {int(hours)} h of it)" in readme
    assert f"for the job's retry wait and {int(hours)} hours more after the failed run ended" in guide
    assert f"will be retried (within the job's retry wait and {int(hours)} h of the failure" in check_help
