"""What would let a test of this suite fail by chance, ruled out for the whole suite at once.

The machines that run it are shared (two cores, noisy): a test must not depend on how long
anything takes, nor on the environment of the machine it runs on.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, settings

from .conftest import PROXY_VARIABLES

TESTS = Path(__file__).parent


def _test_functions() -> Iterator[tuple[str, Any]]:
    """Every test function of the suite (its test modules imported), with its qualified name."""
    for path in sorted(TESTS.glob("test_*.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        for name, value in vars(module).items():
            if name.startswith("test_") and inspect.isfunction(value):
                yield f"{path.stem}.{name}", value
            elif name.startswith("Test") and inspect.isclass(value):
                for method_name, method in vars(value).items():
                    if method_name.startswith("test_") and inspect.isfunction(method):
                        yield f"{path.stem}.{name}.{method_name}", method


def test_no_property_test_has_a_deadline_or_fails_for_slow_generation() -> None:
    """Hypothesis' default deadline (200 ms an example) fails a test whose example took longer once
    and not when run again ("Unreliable test timings"), and its ``too_slow`` health check fails
    one whose examples were slow to draw: on a loaded machine both happen by chance. The suite's
    profile (conftest) switches them off for every ``@given`` test, those with settings of their
    own included."""
    assert settings.default.deadline is None
    assert HealthCheck.too_slow in settings.default.suppress_health_check
    found = []
    for name, function in _test_functions():
        chosen = getattr(function, "_hypothesis_internal_use_settings", None)
        if chosen is None:
            continue
        found.append(name)
        assert chosen.deadline is None, name
        assert HealthCheck.too_slow in chosen.suppress_health_check, name
    assert len(found) > 40  # the property tests were all found


def test_the_machine_s_proxy_variables_are_not_seen_by_the_tests() -> None:
    """A CI runner may set ``HTTP_PROXY``: the tests' own httpx clients (probes of the servers
    they start on 127.0.0.1) would send their requests to it. The run drops the variables."""
    assert [name for name in PROXY_VARIABLES if name in os.environ] == []
    assert httpx.AsyncClient()._mounts == {}  # no proxy mounted for any URL
