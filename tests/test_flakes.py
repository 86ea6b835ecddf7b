"""What would let a test of this suite fail by chance, ruled out for the whole suite at once.

The machines that run it are shared (two cores, noisy): a test must not depend on how long
anything takes, nor on the environment of the machine it runs on.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
from hypothesis import HealthCheck, settings

from .conftest import PROXY_VARIABLES

TESTS = Path(__file__).parent


def _settings_calls() -> Iterator[tuple[str, ast.Call]]:
    """Every ``settings(...)`` call of the suite's test files, with where it is."""
    for path in sorted(TESTS.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        if "settings(" not in source:
            continue
        tree = ast.parse(source, str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "settings":
                yield f"{path.name}:{node.lineno}", node


def test_no_property_test_has_a_deadline_or_fails_for_slow_generation() -> None:
    """Hypothesis' default deadline (200 ms an example) fails a test whose example took longer once
    and not when run again ("Unreliable test timings"), and its ``too_slow`` health check fails
    one whose examples were slow to draw: on a loaded machine both happen by chance. The suite's
    profile (conftest) switches them off; every ``settings(...)`` of a test file starts from it,
    and none may set a deadline again or a list of checks to suppress without ``too_slow``."""
    assert settings.default.deadline is None
    assert HealthCheck.too_slow in settings.default.suppress_health_check
    found = 0
    for where, call in _settings_calls():
        found += 1
        for keyword in call.keywords:
            if keyword.arg == "deadline":
                assert isinstance(keyword.value, ast.Constant), where
                assert keyword.value.value is None, where
            if keyword.arg == "suppress_health_check":
                assert "HealthCheck.too_slow" in ast.unparse(keyword.value), where
    assert found > 10  # the settings of the property tests were all read


def test_the_machine_s_proxy_variables_are_not_seen_by_the_tests() -> None:
    """A CI runner may set ``HTTP_PROXY``: the tests' own httpx clients (probes of the servers
    they start on 127.0.0.1) would send their requests to it. The run drops the variables."""
    assert [name for name in PROXY_VARIABLES if name in os.environ] == []
    assert httpx.AsyncClient()._mounts == {}  # no proxy mounted for any URL
