"""The baseline of issue 12: vbo-async at commit 2ff99dd, installed in a virtual environment of its own.

`baseline_python` extracts the commit's tree with ``git archive`` and installs it with its
``cli`` extra (and so its own dependencies: stamina, sniffio, httpcore as its transport) into a
venv under ``bench/.cache/`` (or ``$VBO_BENCH_CACHE``), once: later runs reuse it. The interpreter
it returns imports the old package, never this checkout's; the benchmarks check that in the child.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

__all__ = ["BASELINE", "BaselineUnavailable", "baseline_commit", "baseline_python"]

BASELINE = "2ff99dd"
"""The commit issue 12 measured its starting point at."""
ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("VBO_BENCH_CACHE") or ROOT / "bench" / ".cache")


class BaselineUnavailable(RuntimeError):
    """The baseline cannot be built here (no git history with the commit, or pip failed)."""


def baseline_commit() -> str:
    """The full hash of `BASELINE` (`BaselineUnavailable` when this checkout's history lacks it)."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{BASELINE}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        raise BaselineUnavailable(f"commit {BASELINE} is not in this checkout's history (a shallow clone?)")
    return found.stdout.strip()


def baseline_python() -> Path:
    """The interpreter of the baseline's venv, built first if the cache does not hold it."""
    commit = baseline_commit()
    folder = CACHE / f"vbo-async-{commit[:12]}"
    python = folder / "venv" / "bin" / "python"
    ready = folder / "ready"
    if ready.is_file() and python.is_file():
        return python
    shutil.rmtree(folder, ignore_errors=True)
    tree = folder / "tree"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    print(f"(building the {BASELINE} baseline in {folder}: once, then cached)", file=sys.stderr, flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(folder / "venv")],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{tree}[cli]"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise BaselineUnavailable(
                f"building the {BASELINE} baseline failed ({' '.join(step[:4])} ...):\n{done.stderr[-2000:]}"
            )
    ready.write_text(commit + "\n", encoding="utf-8")
    return python
