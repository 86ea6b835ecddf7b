"""What each install needs: ``import vbo_async`` on a core install imports none of the extras'
packages, and commands say which extra to install when one is missing (exit code 2).

A core install is imitated in a child process by an import hook that makes the extras' packages
impossible to import, exactly as when they are not installed, and records who tried.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .test_cli import HANG_GUARD, child_environment

CLI = ("click", "rich", "pygments")
SIMULATOR = ("starlette", "uvicorn", "trustme", "cryptography")

NOT_INSTALLED = """
import importlib.abc, json, sys
BLOCKED = set({blocked!r})
TRIED = []
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] not in BLOCKED:
            return None
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith("<frozen"):
            frame = frame.f_back
        TRIED.append([name, frame.f_globals.get("__name__") if frame is not None else None])
        raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NotInstalled())
"""


def python(code: str, *, blocked: tuple[str, ...] = (), cwd: Path) -> subprocess.CompletedProcess[str]:
    prologue = NOT_INSTALLED.format(blocked=list(blocked)) if blocked else ""
    return subprocess.run(
        [sys.executable, "-c", prologue + code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child_environment(),
        timeout=HANG_GUARD,
        check=False,
    )


REPORT = """
import vbo_async
loaded = sorted({{m.partition(".")[0] for m in sys.modules}} & set({watched!r}))
print(json.dumps({{"loaded": loaded, "tried": globals().get("TRIED", [])}}))
"""


def test_a_core_install_imports_none_of_the_extras(tmp_path: Path) -> None:
    """With click, rich, pygments, starlette, uvicorn, trustme and cryptography not installed,
    ``import vbo_async`` works, and no vbo_async module even tries to import one of them (httpx
    itself tries click, rich and pygments for its own command line, and does without)."""
    watched = [*CLI, *SIMULATOR]
    done = python("import json, sys\n" + REPORT.format(watched=watched), blocked=tuple(watched), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["loaded"] == []
    assert [importer for _, importer in report["tried"] if (importer or "").startswith("vbo_async")] == []


def test_the_installed_extras_are_not_imported_by_the_library(tmp_path: Path) -> None:
    """With every extra installed (this environment), the simulator's packages stay unimported.
    (click, rich and pygments are imported by httpx itself whenever they are installed.)"""
    done = python("import json, sys\n" + REPORT.format(watched=list(SIMULATOR)), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["loaded"] == []


def test_the_command_line_imports_no_simulator_until_a_command_needs_it(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from vbo_async.cli import main\n"
        "for argv in (['--help'], ['jobs', '--help'], ['poll', '--help'], ['organizations', '--help']):\n"
        "    assert main(argv) == 0\n"
        "loaded = {m.partition('.')[0] for m in sys.modules}\n"
        f"print(json.dumps(sorted(loaded & set({list(SIMULATOR)!r}))))\n"
    )
    done = python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


@pytest.mark.parametrize(
    ("missing", "command"),
    [
        ("starlette", ["demo"]),
        ("trustme", ["demo"]),
        ("starlette", ["simulate", "--port", "0"]),
        ("uvicorn", ["simulate", "--port", "0"]),
        ("trustme", ["simulate", "--help"]),
    ],
)
def test_simulator_commands_name_the_extra_to_install(
    tmp_path: Path, missing: str, command: list[str]
) -> None:
    code = f"import sys\nfrom vbo_async.cli import main\nsys.exit(main({command!r}))\n"
    done = python(code, blocked=(missing,), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"vbo-async: error: 'vbo-async {command[0]}' needs the 'simulator' extra "
        f"({missing} is not installed): pip install 'vbo-async[simulator]'\n"
    )


def test_the_demo_needs_no_uvicorn(tmp_path: Path) -> None:
    code = "import sys\nfrom vbo_async.cli import main\nsys.exit(main(['demo', '--organizations', '1']))\n"
    done = python(code, blocked=("uvicorn",), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "jobs on 1 tenant" in done.stdout


def test_other_commands_work_without_the_simulator(tmp_path: Path) -> None:
    code = "import sys\nfrom vbo_async.cli import main\nsys.exit(main(['organizations', '--help']))\n"
    done = python(code, blocked=SIMULATOR, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--server" in done.stdout


@pytest.mark.parametrize("missing", ["click", "rich"])
def test_the_command_line_without_the_cli_extra_names_it(tmp_path: Path, missing: str) -> None:
    code = "import sys\nfrom vbo_async.cli import main\nsys.exit(main(['jobs', '--help']))\n"
    done = python(code, blocked=(missing,), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        f"vbo-async: error: the command line needs the 'cli' extra ({missing} is not installed): "
        "pip install 'vbo-async[cli]'\n"
    )


def test_the_demo_extra_is_the_cli_and_the_simulator() -> None:
    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    extras = project["project"]["optional-dependencies"]
    assert sorted(name.split(">")[0] for name in extras["cli"]) == ["click", "rich"]
    assert sorted(name.split(">")[0] for name in extras["simulator"]) == ["starlette", "trustme", "uvicorn"]
    assert extras["demo"] == ["vbo-async[cli,simulator]"]
    assert "vbo-async[demo]" in extras["test"]


@pytest.mark.parametrize("missing", ["click", "rich"])
def test_check_without_the_cli_extra_is_unknown_on_stdout(tmp_path: Path, missing: str) -> None:
    """``check`` is a monitoring plugin: a missing extra is its UNKNOWN line on stdout and exit 3,
    not exit 2, which a monitoring system reads as CRITICAL."""
    code = "import sys\nfrom vbo_async.cli import main\nsys.exit(main(['check', '--targets', 't.toml']))\n"
    done = python(code, blocked=(missing,), cwd=tmp_path)
    assert done.returncode == 3
    assert done.stdout == (
        f"VB365 UNKNOWN - the command line needs the 'cli' extra ({missing} is not installed): "
        "pip install 'vbo-async[cli]'\n"
    )


def test_check_on_a_broken_install_is_unknown_on_stdout(tmp_path: Path) -> None:
    """A package the library needs that cannot be imported (a broken install) ends ``check`` as
    an internal error does: one UNKNOWN line and exit 3, not exit 1 (WARNING) and a traceback
    alone."""
    code = (
        "import sys, _vbo_async_cli\nsys.argv = ['vbo-async', 'check', '--targets', 't.toml']\n"
        "sys.exit(_vbo_async_cli.main())\n"
    )
    done = python(code, blocked=("attrs",), cwd=tmp_path)
    assert done.returncode == 3
    assert done.stdout == "VB365 UNKNOWN - internal error: ModuleNotFoundError: No module named 'attrs'\n"
    assert "Traceback" in done.stderr  # where, for whoever installs it, not in the status line


@pytest.mark.parametrize("missing", ["starlette", "trustme"])
def test_the_simulator_package_without_its_extra_names_it(tmp_path: Path, missing: str) -> None:
    """``import vbo_async.simulator`` on an install without the ``simulator`` extra (a user's own
    tests using it in process) said only "No module named 'starlette'", a package never asked for."""
    code = (
        "try:\n"
        "    import vbo_async.simulator\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(type(exc).__name__, exc.name, exc, sep='|')\n"
    )
    done = python(code, blocked=(missing,), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"ModuleNotFoundError|{missing}|vbo_async.simulator needs the 'simulator' extra "
        f"({missing} is not installed): pip install 'vbo-async[simulator]'\n"
    )
