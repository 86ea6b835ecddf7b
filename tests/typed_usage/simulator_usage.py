# pyright: strict
"""A test suite's view of the simulator: what each public name gives, per checker."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import assert_type

import httpx
from starlette.applications import Starlette

from vbo_async import Job, VBOClient
from vbo_async.simulator import (
    Faults,
    SimulatedError,
    Simulator,
    SimulatorConfig,
    SimulatorStats,
    TokenRequest,
    create_app,
    make_tls_material,
)


async def simulated(tmp_path: Path) -> None:
    config = SimulatorConfig(
        seed=7,
        organizations=3,
        api_versions=["v7", "v8"],
        epoch=dt.datetime(2026, 7, 1, tzinfo=dt.UTC),
        faults=Faults(error_rate=0.1, retry_after=1, revoke_every=None),
    )
    assert_type(config.api_versions, tuple[str, ...])
    simulator = Simulator(config)
    app = create_app(simulator=simulator)
    assert_type(app, Starlette)
    assert_type(create_app(SimulatorConfig(api_versions=("v1",))), Starlette)
    assert_type(simulator.config, SimulatorConfig)
    assert_type(simulator.stats, SimulatorStats)
    assert_type(simulator.stats.requests, int)
    assert_type(simulator.stats.token_log, list[TokenRequest])
    assert_type(simulator.organization_ids(), list[str])
    assert_type(simulator.job_ids(), list[str])
    assert_type(simulator.job_action(simulator.job_ids()[0], "start"), str | None)
    assert_type(simulator.revoke_tokens(), int)
    assert_type(make_tls_material(tmp_path, hosts=["vbo.test"]), tuple[Path, Path, Path])
    try:
        simulator.job_wire("no such job")
    except SimulatedError as exc:
        assert_type(exc.status_code, int)
    async with VBOClient(
        "https://vbo.test:4443", username="admin", password="admin", transport=httpx.ASGITransport(app=app)
    ) as vbo:
        assert_type(await vbo.jobs(), list[Job])
