"""Which packages each optional extra brings, to name the extra when one of them is missing."""

from __future__ import annotations

__all__ = ["SIMULATOR_PACKAGES", "missing_package"]

SIMULATOR_PACKAGES = frozenset({"starlette", "uvicorn", "trustme", "cryptography", "anyio", "h11"})
"""Top-level packages of the ``simulator`` extra (and theirs) whose absence means "install it"."""


def missing_package(error: ImportError, packages: frozenset[str]) -> str | None:
    """The top-level package of ``packages`` whose absence ``error`` reports, else None (an
    import error of something else: raised as it is)."""
    missing = (error.name or "").partition(".")[0]
    return missing if missing in packages else None
