"""The documentation's Python: every code block of the README and docs type-checks with mypy --strict."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_the_documents_have_code_blocks() -> None:
    names = [name for name, _ in blocks()]
    assert any(name.startswith("readme_") for name in names)
    assert any(name.startswith("embedding_") for name in names)


def test_every_code_block_type_checks(tmp_path: Path) -> None:
    files = []
    for name, source in blocks():
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
