"""The typing contract users see: user-style code of ``tests/typed_usage/`` type-checks with
``assert_type`` on every public call, under mypy --strict (one run over all of it) and, where it
is installed, pyright (strict; with the documentation's examples too).

The snippets are checked, never run. ``misuse_usage.py`` holds mistakes each checker must report:
its ignore comments fail the check when an annotation is too wide to catch one.
"""

from __future__ import annotations

import enum
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .test_docs import EXAMPLES, blocks, docstring_blocks

ROOT = Path(__file__).parents[1]
SNIPPETS = sorted((ROOT / "tests" / "typed_usage").glob("*.py"))


def test_the_snippets_cover_the_public_names() -> None:
    """Every name of ``vbo_async.__all__`` and ``vbo_async.simulator.__all__`` is used by a snippet."""
    import vbo_async
    import vbo_async.simulator

    text = "\n".join(path.read_text(encoding="utf-8") for path in SNIPPETS)
    public = {name: getattr(vbo_async, name) for name in vbo_async.__all__}
    public |= {name: getattr(vbo_async.simulator, name) for name in vbo_async.simulator.__all__}
    # The enums are typed alike (open string enums): the snippets show one, JobStatus.
    missing = [
        name
        for name, value in public.items()
        if not re.search(rf"\b{name}\b", text)
        and not (isinstance(value, type) and issubclass(value, enum.Enum))
    ]
    assert not missing, f"no typing snippet uses {missing}"


def test_the_public_api_types_as_documented_under_mypy(tmp_path: Path) -> None:
    # In a child process: mypy.api.run would raise this process's recursion limit for good (and
    # a later test that relies on RecursionError would pass or fail by test order).
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-version",
            "3.11",
            "--no-error-summary",
            "--show-error-codes",
            "--cache-dir",
            str(tmp_path / ".mypy"),
            *map(str, SNIPPETS),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(ROOT)},  # this checkout's vbo_async, not an installed one
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, (
        f"mypy --strict on tests/typed_usage:\n{completed.stdout}{completed.stderr}"
    )


def _pyright() -> list[str] | None:
    """The command that runs pyright offline: node on the script the ``pyright`` package bundles
    (its own launcher may ask PyPI for a newer version); None when either is missing."""
    spec = importlib.util.find_spec("pyright")
    node = shutil.which("node")
    if spec is None or spec.origin is None or node is None:
        return None
    script = Path(spec.origin).parent / "dist" / "index.js"
    return [node, str(script)] if script.is_file() else None


def test_the_public_api_types_as_documented_under_pyright(tmp_path: Path) -> None:
    command = _pyright()
    if command is None:
        pytest.skip("pyright is not installed (the test extra has it) or node is missing")
    for path in [*SNIPPETS, *EXAMPLES]:
        shutil.copy(path, tmp_path / path.name)
    for name, source in [*blocks(), *docstring_blocks()]:
        (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    config = {
        "extraPaths": [str(ROOT)],
        "pythonVersion": "3.11",
        # Strict, as a user's project may be: the documentation's examples may leave an import or
        # a variable unused (an example shows what a call gives); the snippets are strict in all.
        "typeCheckingMode": "strict",
        "reportUnusedImport": "none",
        "reportUnusedVariable": "none",
        # misuse_usage.py: only pyright's own ignore comments count, and each must be needed.
        "enableTypeIgnoreComments": False,
        "reportUnnecessaryTypeIgnoreComment": "error",
    }
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config), encoding="utf-8")
    completed = subprocess.run(
        [*command, "--pythonpath", sys.executable, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, f"pyright:\n{completed.stdout}{completed.stderr}"
    assert "0 errors" in completed.stdout


def test_every_public_name_has_a_declared_type_under_pyright_verifytypes(tmp_path: Path) -> None:
    """``pyright --verifytypes``: every symbol of the public interface has a declared type (an
    attribute inferred from an assignment may be inferred differently by another checker), so the
    type completeness score is 100%; types of other packages (httpx, Starlette) aside."""
    command = _pyright()
    if command is None:
        pytest.skip("pyright is not installed (the test extra has it) or node is missing")
    completed = subprocess.run(
        [*command, "--pythonpath", sys.executable, "--verifytypes", "vbo_async", "--ignoreexternal"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])},
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, f"pyright --verifytypes:\n{completed.stdout}{completed.stderr}"
    assert "Type completeness score: 100%" in completed.stdout
