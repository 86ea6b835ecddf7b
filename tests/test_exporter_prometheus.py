"""``vbo-async serve`` scraped by a real Prometheus, and the example alert rules checked by promtool.

Everything runs as it would in production, as separate processes over loopback: two simulators
(``vbo-async simulate``) served as a v8 and a v1 server, a third server that is down, one
``vbo-async serve`` for the three, and Debian's ``prometheus`` scraping it every second and
loading ``docs/monitoring-rules.yml``. The values are read back through Prometheus' query API.

Without the ``prometheus``/``promtool`` binaries these tests are skipped, except under CI (the
``CI`` environment variable, set by ``.ci/run``, which installs them): there they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vbo_async import VBOClient
from vbo_async._cli._metrics import ERROR_KINDS, JOB_STATUSES
from vbo_async.simulator import Simulator, SimulatorConfig

from .conftest import closed_port, free_port
from .test_cli import HANG_GUARD, child_environment

ROOT = Path(__file__).parents[1]
RULES = ROOT / "docs" / "monitoring-rules.yml"
ALERTS = RULES.read_text(encoding="utf-8").count("\n      - alert: ")
"""How many alerts the rules file defines (each loaded and checked below)."""
SEEDS = {"east": 41, "legacy": 42}
VERSIONS = {"east": "v8", "legacy": "v1"}
ORGANIZATIONS = 4


def binary(name: str) -> str:
    """The path of ``name``; a skip when it is missing, a failure when it is missing under CI."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run this test (.ci/run installs it)")
        pytest.skip(reason)
    return path


@contextlib.contextmanager
def process(
    argv: list[str], *, ready: str | None = None, **options: Any
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run ``argv``; with ``ready``, wait for a stdout line starting so and yield it too. The
    process is terminated (then killed) however the block ends."""
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)
    try:
        line = ""
        if ready is not None:
            assert child.stdout is not None
            while not line.startswith(ready):
                line = child.stdout.readline()
                if not line:
                    _, err = child.communicate(timeout=HANG_GUARD)
                    pytest.fail(f"{argv[:4]} exited ({child.returncode}) before it was ready: {err}")
        yield child, line
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=HANG_GUARD)
            except subprocess.TimeoutExpired:
                child.kill()
        child.communicate(timeout=HANG_GUARD)


def simulate(name: str) -> contextlib.AbstractContextManager[tuple[subprocess.Popen[str], str]]:
    """The simulator of server ``name``, serving only its API version."""
    argv = [sys.executable, "-m", "vbo_async", "simulate", "--host", "127.0.0.1", "--port", "0"]
    argv += ["--seed", str(SEEDS[name]), "--organizations", str(ORGANIZATIONS)]
    argv += ["--api-versions", VERSIONS[name]]
    return process(argv, ready="Serving", env=child_environment())


def base_url(serving_line: str) -> str:
    """``http://127.0.0.1:PORT`` from the simulator's "Serving ... at http://127.0.0.1:PORT ..." line."""
    return serving_line.split(" at ", 1)[1].split()[0].removesuffix("/v1")


def targets_file(folder: Path, east: str, legacy: str) -> Path:
    # No /vN: the exporter finds each server's version (v8, v1) itself.
    tables = {"east": east, "legacy": legacy, "down": f"http://127.0.0.1:{closed_port()}"}
    text = "".join(
        f'[[servers]]\nname = "{name}"\nurl = "{url}"\nusername = "admin"\npassword_env = "VBO_PASSWORD"\n\n'
        for name, url in tables.items()
    )
    path = folder / "targets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def prometheus_config(folder: Path, exporter: str) -> Path:
    path = folder / "prometheus.yml"
    path.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        f"scrape_configs:\n  - job_name: vb365\n    static_configs:\n      - targets: ['{exporter}']\n",
        encoding="utf-8",
    )
    return path


class Prometheus:
    """Prometheus' HTTP API at ``base``."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def query(self, expression: str) -> list[dict[str, Any]]:
        answer = self.http.get("/api/v1/query", params={"query": expression})
        answer.raise_for_status()
        data = answer.json()
        assert data["status"] == "success", data
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def by(self, expression: str, label: str) -> dict[str, float]:
        return {row["metric"][label]: float(row["value"][1]) for row in self.query(expression)}

    def wait(self, expression: str, check: Any, *, within: float = HANG_GUARD) -> list[dict[str, Any]]:
        deadline = time.monotonic() + within
        while True:
            with contextlib.suppress(httpx.HTTPError):
                result = self.query(expression)
                if check(result):
                    return result
            if time.monotonic() > deadline:
                pytest.fail(f"Prometheus never answered {expression!r} as expected")
            time.sleep(0.25)


def expected_jobs(seed: int) -> int:
    return len(Simulator(SimulatorConfig(seed=seed, organizations=ORGANIZATIONS)).job_ids())


async def library_health(base: str, job_id: str) -> int:
    async with VBOClient(base, username="admin", password="admin", api_version="v8") as vbo:
        return (await vbo.job_health(await vbo.job(job_id))).state.value


def test_prometheus_scrapes_the_exporter(tmp_path: Path) -> None:
    prometheus = binary("prometheus")
    with simulate("east") as (_, east_line), simulate("legacy") as (_, legacy_line):
        east, legacy = base_url(east_line), base_url(legacy_line)
        targets = targets_file(tmp_path, east, legacy)
        serve_argv = [sys.executable, "-m", "vbo_async", "serve", "--targets", str(targets)]
        serve_argv += ["--listen", "127.0.0.1:0", "--interval", "2", "--timeout", "30"]
        environment = child_environment(VBO_PASSWORD="admin")
        with process(serve_argv, ready="Serving the metrics", env=environment) as (exporter, line):
            address = line.split("http://", 1)[1].split("/metrics", 1)[0]
            port = free_port()
            argv = [
                prometheus,
                f"--config.file={prometheus_config(tmp_path, address)}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ]
            local = f"http://127.0.0.1:{port}"
            with process(argv), httpx.Client(base_url=local, timeout=HANG_GUARD) as http:
                api = Prometheus(http)
                jobs = {name: expected_jobs(seed) for name, seed in SEEDS.items()}
                api.wait("veeam_vb365_up", lambda rows: len(rows) == 3)
                counted = api.wait(
                    "count by (server) (veeam_vb365_job_enabled)", lambda rows: len(rows) == len(jobs)
                )
                check_values(api, counted, jobs, east)
                api.wait("count(ALERTS{alertname='VB365ServerDown'})", lambda rows: len(rows) == 1)
                rules = api.http.get("/api/v1/rules").json()["data"]["groups"][0]["rules"]
                assert len(rules) == ALERTS == 13
                assert {rule["health"] for rule in rules} <= {"ok", "unknown"}, rules
            exporter.send_signal(signal.SIGTERM)
            assert exporter.wait(timeout=HANG_GUARD) == 0
            assert exporter.stderr is not None
            assert "Traceback" not in exporter.stderr.read()


def check_values(api: Prometheus, counted: list[dict[str, Any]], jobs: dict[str, int], east: str) -> None:
    assert {row["metric"]["server"]: int(row["value"][1]) for row in counted} == jobs
    assert api.by("veeam_vb365_up", "server") == {"east": 1, "legacy": 1, "down": 0}
    spoken = {
        row["metric"]["server"]: row["metric"]["api_version"] for row in api.query("veeam_vb365_server_info")
    }
    assert spoken == VERSIONS
    # The state set: eight states per job, exactly one of them 1.
    sums = api.query("sum by (server, job_id) (veeam_vb365_job_last_status)")
    assert len(sums) == sum(jobs.values())
    assert {float(row["value"][1]) for row in sums} == {1.0}
    states = api.query("count by (server, job_id) (veeam_vb365_job_last_status)")
    assert {int(row["value"][1]) for row in states} == {len(JOB_STATUSES)}
    # A job's health is what the library says of it.
    first = api.query('veeam_vb365_job_health{server="east"}')[0]
    job_id = first["metric"]["job_id"]
    assert float(first["value"][1]) == asyncio.run(library_health(east, job_id))
    # Nothing of the tenants of the server that is down; its errors are counted.
    assert api.query('{server="down", organization_id!=""}') == []
    exported = api.query('count({server="down", __name__=~"veeam_vb365_.+"})')  # not ALERTS{server=...}
    # up, 2 gauges and the counter's kinds
    assert exported[0]["value"][1] == str(3 + len(ERROR_KINDS)) == "13"
    assert float(api.query('sum(veeam_vb365_sweep_errors_total{server="down"})')[0]["value"][1]) >= 1
    # v8 reports a license and storage per tenant, v1 neither.
    assert api.by("veeam_vb365_license_total", "server").keys() == {"east"}
    assert api.by("count by (server) (veeam_vb365_organization_used_bytes)", "server").keys() == {"east"}


# --- the rules file -----------------------------------------------------------------------------------


def test_promtool_accepts_the_rules_file() -> None:
    promtool = binary("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {ALERTS} rules found" in checked.stdout


REPOSITORY = 'server="east",repository_id="{id}",repository_name="R {id}"'
JOB = 'server="east",organization="c",organization_id="o",job_id="{id}",job_name="{name}"'
JOB_LABELS = "severity: critical, server: east, organization: c, organization_id: o"
RULE_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'veeam_vb365_repository_free_bytes{{{r1}}}'
        values: '50x60'
      - series: 'veeam_vb365_repository_capacity_bytes{{{r1}}}'
        values: '1000x60'
      - series: 'veeam_vb365_repository_free_bytes{{{r2}}}'
        values: '500x60'
      - series: 'veeam_vb365_repository_capacity_bytes{{{r2}}}'
        values: '1000x60'
      - series: 'veeam_vb365_repository_out_of_order{{{r1}}}'
        values: '0x60'
      - series: 'veeam_vb365_repository_out_of_order{{{r2}}}'
        values: '1x60'
      - series: 'veeam_vb365_proxy_up{{server="east",proxy_id="p1",proxy_name="up.local"}}'
        values: '1x60'
      - series: 'veeam_vb365_proxy_up{{server="east",proxy_id="p2",proxy_name="down.local"}}'
        values: '0x60'
      - series: 'veeam_vb365_license_expiration_timestamp_seconds{{server="east"}}'
        values: '1728000x120'
      - series: 'veeam_vb365_up{{server="down"}}'
        values: '0x60'
      - series: 'up{{job="vb365",instance="exporter:9810"}}'
        values: '0x60'
      - series: 'veeam_vb365_job_health{{{j}}}'
        values: '2x60'
      - series: 'vbo_async_exporter_last_sweep_timestamp_seconds{{job="vb365",instance="fast:9810"}}'
        values: '0x60'
      - series: 'vbo_async_exporter_stale_after_seconds{{job="vb365",instance="fast:9810"}}'
        values: '180x60'
      - series: 'vbo_async_exporter_last_sweep_timestamp_seconds{{job="vb365",instance="patient:9810"}}'
        values: '0x60'
      - series: 'vbo_async_exporter_stale_after_seconds{{job="vb365",instance="patient:9810"}}'
        values: '3600x60'
      - series: 'process_start_time_seconds{{job="vb365",instance="patient:9810"}}'
        values: '0x60'
      - series: 'vbo_async_exporter_stale_after_seconds{{job="vb365",instance="never:9810"}}'
        values: '180x60'
      - series: 'process_start_time_seconds{{job="vb365",instance="never:9810"}}'
        values: '0x60'
      - series: 'process_start_time_seconds{{job="other",instance="app:8000"}}'
        values: '0x60'
    alert_rule_test:
      - eval_time: 20m
        alertname: VB365ExporterStale
        exp_alerts:
          - exp_labels: {{severity: warning, job: vb365, instance: "fast:9810"}}
            exp_annotations:
              summary: The vbo-async exporter fast:9810 has not completed a sweep lately
          - exp_labels: {{severity: warning, job: vb365, instance: "never:9810"}}
            exp_annotations:
              summary: The vbo-async exporter never:9810 has not completed a sweep lately
      - eval_time: 40m
        alertname: VB365RepositoryLowSpace
        exp_alerts:
          - exp_labels: {{severity: warning, server: east, repository_id: 1, repository_name: R 1}}
            exp_annotations:
              summary: Repository R 1 on east is under 10% free
              description: 5% free.
      - eval_time: 10m
        alertname: VB365RepositoryOutOfOrder
      - eval_time: 20m
        alertname: VB365RepositoryOutOfOrder
        exp_alerts:
          - exp_labels: {{severity: critical, server: east, repository_id: 2, repository_name: R 2}}
            exp_annotations:
              summary: Repository R 2 on east is out of order
      - eval_time: 10m
        alertname: VB365ProxyOffline
      - eval_time: 20m
        alertname: VB365ProxyOffline
        exp_alerts:
          - exp_labels: {{severity: critical, server: east, proxy_id: p2, proxy_name: down.local}}
            exp_annotations:
              summary: Proxy down.local on east is offline
      - eval_time: 90m
        alertname: VB365LicenseExpiresSoon
        exp_alerts:
          - exp_labels: {{severity: warning, server: east}}
            exp_annotations:
              summary: The license of east expires in 19d 22h 30m 0s
      - eval_time: 20m
        alertname: VB365ServerDown
        exp_alerts:
          - exp_labels: {{severity: critical, server: down}}
            exp_annotations:
              summary: The exporter cannot read VBO server down
      - eval_time: 20m
        alertname: VB365ExporterDown
        exp_alerts:
          - exp_labels: {{severity: critical, job: vb365, instance: "exporter:9810"}}
            exp_annotations:
              summary: The vbo-async exporter exporter:9810 cannot be scraped
      - eval_time: 20m
        alertname: VB365JobCritical
        exp_alerts:
          - exp_labels: {{{job_labels}, job_id: j, job_name: J}}
            exp_annotations:
              summary: J (c on east) is CRITICAL
  - interval: 1m
    input_series:
      - series: 'veeam_vb365_job_last_success_timestamp_seconds{{{old}}}'
        values: '0x1700'
      - series: 'veeam_vb365_job_enabled{{{old}}}'
        values: '1x1700'
      - series: 'veeam_vb365_job_last_success_timestamp_seconds{{{off}}}'
        values: '0x1700'
      - series: 'veeam_vb365_job_enabled{{{off}}}'
        values: '0x1700'
      # A job whose isEnabled the server sent as null (v6+ allow it) has no job_enabled series:
      # health takes it as enabled, and so does the alert.
      - series: 'veeam_vb365_job_last_success_timestamp_seconds{{{unsure}}}'
        values: '0x1700'
    alert_rule_test:
      - eval_time: 26h10m
        alertname: VB365JobNotSuccessful
        exp_alerts: []
      - eval_time: 28h
        alertname: VB365JobNotSuccessful
        exp_alerts:
          - exp_labels: {{{job_labels}, job_id: old, job_name: Old}}
            exp_annotations:
              summary: Old (c on east) has not succeeded for 26 h
              description: Last success 1d 4h 0m 0s ago.
          - exp_labels: {{{job_labels}, job_id: unsure, job_name: Unsure}}
            exp_annotations:
              summary: Unsure (c on east) has not succeeded for 26 h
              description: Last success 1d 4h 0m 0s ago.
  # A server whose sweeps fail one in two: its job series are dropped at each failure (stale),
  # which ended a bare selector's alert at every gap and restarted its `for:`.
  - interval: 1m
    input_series:
      - series: 'veeam_vb365_up{{server="flaky"}}'
        values: '{flapping_up}'
      - series: 'veeam_vb365_job_health{{{flaky_job}}}'
        values: '{flapping_health}'
      - series: 'veeam_vb365_up{{server="steady"}}'
        values: '1x90'
      - series: 'veeam_vb365_organization_up{{server="east",organization="c",organization_id="o"}}'
        values: '0x90'
      - series: 'veeam_vb365_job_health{{{unknown_job}}}'
        values: '3x90'
      - series: 'vbo_async_exporter_config_last_reload_successful{{job="vb365",instance="exporter:9810"}}'
        values: '1x10 0x80'
    alert_rule_test:
      - eval_time: 80m
        alertname: VB365ServerDown
        exp_alerts:
          - exp_labels: {{severity: critical, server: flaky}}
            exp_annotations:
              summary: The exporter cannot read VBO server flaky
      - eval_time: 80m
        alertname: VB365JobCritical
        exp_alerts:
          - exp_labels: {{{flaky_labels}, job_id: f, job_name: F}}
            exp_annotations:
              summary: F (c on flaky) is CRITICAL
      - eval_time: 20m
        alertname: VB365JobUnknown
      - eval_time: 40m
        alertname: VB365JobUnknown
        exp_alerts:
          - exp_labels: {{{warning_labels}, job_id: u, job_name: U}}
            exp_annotations:
              summary: The health of U (c on east) is unknown
      - eval_time: 20m
        alertname: VB365TenantUnreadable
        exp_alerts:
          - exp_labels: {{severity: warning, server: east, organization: c, organization_id: o}}
            exp_annotations:
              summary: The jobs of c on east cannot be read
      - eval_time: 12m
        alertname: VB365ExporterReloadFailed
      - eval_time: 20m
        alertname: VB365ExporterReloadFailed
        exp_alerts:
          - exp_labels: {{severity: warning, job: vb365, instance: "exporter:9810"}}
            exp_annotations:
              summary: The vbo-async exporter exporter:9810 refused its last configuration reload
  # A server whose sweeps fail one in three: its repository, proxy and license series are dropped
  # at each failure too. Bare selectors restarted those alerts' `for:` at every gap: none fired.
  - interval: 1m
    input_series:
      - series: 'veeam_vb365_repository_free_bytes{{{r3}}}'
        values: '{flapping_free}'
      - series: 'veeam_vb365_repository_capacity_bytes{{{r3}}}'
        values: '{flapping_capacity}'
      - series: 'veeam_vb365_repository_out_of_order{{{r3}}}'
        values: '{flapping_one}'
      - series: 'veeam_vb365_proxy_up{{server="flaky",proxy_id="p3",proxy_name="p3.local"}}'
        values: '{flapping_zero}'
      - series: 'veeam_vb365_license_expiration_timestamp_seconds{{server="flaky"}}'
        values: '{flapping_license}'
    alert_rule_test:
      - eval_time: 150m
        alertname: VB365RepositoryLowSpace
        exp_alerts:
          - exp_labels: {{severity: warning, server: flaky, repository_id: 3, repository_name: R 3}}
            exp_annotations:
              summary: Repository R 3 on flaky is under 10% free
              description: 5% free.
      - eval_time: 150m
        alertname: VB365RepositoryOutOfOrder
        exp_alerts:
          - exp_labels: {{severity: critical, server: flaky, repository_id: 3, repository_name: R 3}}
            exp_annotations:
              summary: Repository R 3 on flaky is out of order
      - eval_time: 150m
        alertname: VB365ProxyOffline
        exp_alerts:
          - exp_labels: {{severity: critical, server: flaky, proxy_id: p3, proxy_name: p3.local}}
            exp_annotations:
              summary: Proxy p3.local on flaky is offline
      - eval_time: 150m
        alertname: VB365LicenseExpiresSoon
        exp_alerts:
          - exp_labels: {{severity: warning, server: flaky}}
            exp_annotations:
              summary: The license of flaky expires in 19d 21h 30m 0s
  # A server that stops answering at 60 min (sweeps each minute): its job alert was resolved at
  # 70 min, and VB365ServerDown fires at 72 min; nothing fired in between. It is still firing when
  # VB365ServerDown starts.
  - interval: 1m
    input_series:
      - series: 'veeam_vb365_up{{server="gone"}}'
        values: '1x59 0x60'
      - series: 'veeam_vb365_job_health{{{gone_job}}}'
        values: '2x59'
    alert_rule_test:
      - eval_time: 71m
        alertname: VB365JobCritical
        exp_alerts:
          - exp_labels: {{{gone_labels}, job_id: g, job_name: G}}
            exp_annotations:
              summary: G (c on gone) is CRITICAL
      - eval_time: 71m
        alertname: VB365ServerDown
      - eval_time: 73m
        alertname: VB365ServerDown
        exp_alerts:
          - exp_labels: {{severity: critical, server: gone}}
            exp_annotations:
              summary: The exporter cannot read VBO server gone
      - eval_time: 73m
        alertname: VB365JobCritical
        exp_alerts:
          - exp_labels: {{{gone_labels}, job_id: g, job_name: G}}
            exp_annotations:
              summary: G (c on gone) is CRITICAL
  # Part of a server unreadable: a proxy the exporter cannot decode counts an error each sweep
  # (its series absent, VB365ProxyOffline cannot fire for it). A server whose errors stopped after
  # a few sweeps, or a tenant's (kind organization: VB365TenantUnreadable's), fires nothing.
  - interval: 1m
    input_series:
      - series: 'veeam_vb365_sweep_errors_total{{server="east",kind="proxies"}}'
        values: '0+1x90'
      - series: 'veeam_vb365_sweep_errors_total{{server="east",kind="repositories"}}'
        values: '0x90'
      - series: 'veeam_vb365_sweep_errors_total{{server="west",kind="repositories"}}'
        values: '0+1x5 5x85'
      - series: 'veeam_vb365_sweep_errors_total{{server="west",kind="organization"}}'
        values: '0+1x90'
    alert_rule_test:
      - eval_time: 20m
        alertname: VB365ServerPartlyUnreadable
      - eval_time: 45m
        alertname: VB365ServerPartlyUnreadable
        exp_alerts:
          - exp_labels: {{severity: warning, server: east}}
            exp_annotations:
              summary: Part of VBO server east cannot be read (repositories, proxies or license)
"""


def _every_third_stale(value: int, minutes: int = 200) -> str:
    """A series' values when its server's sweep fails one in three (a failed sweep drops it)."""
    return " ".join("stale" if minute % 3 == 2 else str(value) for minute in range(minutes))


def test_the_rules_fire_as_documented(tmp_path: Path) -> None:
    """promtool's rule unit tests: each alert fires on the series it is about, with its text."""
    promtool = binary("promtool")
    tests = tmp_path / "rules-test.yml"
    text = RULE_TESTS.format(
        rules=RULES,
        r1=REPOSITORY.format(id=1),
        r2=REPOSITORY.format(id=2),
        j=JOB.format(id="j", name="J"),
        old=JOB.format(id="old", name="Old"),
        off=JOB.format(id="off", name="Off"),
        unsure=JOB.format(id="unsure", name="Unsure"),
        job_labels=JOB_LABELS,
        flapping_up=" ".join("0" if minute % 2 else "1" for minute in range(90)),
        flapping_health=" ".join("stale" if minute % 2 else "2" for minute in range(90)),
        flaky_job=JOB.format(id="f", name="F").replace('server="east"', 'server="flaky"'),
        unknown_job=JOB.format(id="u", name="U"),
        flaky_labels=JOB_LABELS.replace("server: east", "server: flaky"),
        warning_labels=JOB_LABELS.replace("severity: critical", "severity: warning"),
        r3=REPOSITORY.format(id=3).replace('server="east"', 'server="flaky"'),
        flapping_free=_every_third_stale(50),
        flapping_capacity=_every_third_stale(1000),
        flapping_one=_every_third_stale(1),
        flapping_zero=_every_third_stale(0),
        flapping_license=_every_third_stale(1728000),
        gone_job=JOB.format(id="g", name="G").replace('server="east"', 'server="gone"'),
        gone_labels=JOB_LABELS.replace("server: east", "server: gone"),
    )
    tests.write_text(text, encoding="utf-8")
    checked = subprocess.run(
        [promtool, "test", "rules", str(tests)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


SKEW_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'veeam_vb365_job_last_success_timestamp_seconds{{{slow}}}'
        values: '0x1800'
      - series: 'veeam_vb365_job_enabled{{{slow}}}'
        values: '1x1800'
      - series: 'veeam_vb365_server_clock_offset_seconds{{server="slow"}}'
        values: '-7200x1800'
      - series: 'veeam_vb365_job_last_success_timestamp_seconds{{{fast}}}'
        values: '0x1800'
      - series: 'veeam_vb365_job_enabled{{{fast}}}'
        values: '1x1800'
      - series: 'veeam_vb365_server_clock_offset_seconds{{server="fast"}}'
        values: '7200x1800'
      - series: 'veeam_vb365_job_last_success_timestamp_seconds{{{proxy}}}'
        values: '0x1800'
      - series: 'veeam_vb365_job_enabled{{{proxy}}}'
        values: '1x1800'
      - series: 'veeam_vb365_server_clock_offset_seconds{{server="proxy"}}'
        values: '-259200x1800'
      - series: 'veeam_vb365_job_last_success_timestamp_seconds{{{dateless}}}'
        values: '0x1800'
      - series: 'veeam_vb365_job_enabled{{{dateless}}}'
        values: '1x1800'
    alert_rule_test:
      - eval_time: 25h
        alertname: VB365JobNotSuccessful
        exp_alerts:
          - exp_labels: {{severity: critical, {fast_labels}}}
            exp_annotations:
              summary: F (c on fast) has not succeeded for 26 h
              description: Last success 1d 3h 0m 0s ago.
      - eval_time: 27h
        alertname: VB365JobNotSuccessful
        exp_alerts:
          - exp_labels: {{severity: critical, {fast_labels}}}
            exp_annotations:
              summary: F (c on fast) has not succeeded for 26 h
              description: Last success 1d 5h 0m 0s ago.
          - exp_labels: {{severity: critical, {proxy_labels}}}
            exp_annotations:
              summary: P (c on proxy) has not succeeded for 26 h
              description: Last success 1d 3h 0m 0s ago.
          - exp_labels: {{severity: critical, {dateless_labels}}}
            exp_annotations:
              summary: D (c on dateless) has not succeeded for 26 h
              description: Last success 1d 3h 0m 0s ago.
      - eval_time: 28h30m
        alertname: VB365JobNotSuccessful
        exp_alerts:
          - exp_labels: {{severity: critical, {slow_labels}}}
            exp_annotations:
              summary: S (c on slow) has not succeeded for 26 h
              description: Last success 1d 2h 30m 0s ago.
          - exp_labels: {{severity: critical, {fast_labels}}}
            exp_annotations:
              summary: F (c on fast) has not succeeded for 26 h
              description: Last success 1d 6h 30m 0s ago.
          - exp_labels: {{severity: critical, {proxy_labels}}}
            exp_annotations:
              summary: P (c on proxy) has not succeeded for 26 h
              description: Last success 1d 4h 30m 0s ago.
          - exp_labels: {{severity: critical, {dateless_labels}}}
            exp_annotations:
              summary: D (c on dateless) has not succeeded for 26 h
              description: Last success 1d 4h 30m 0s ago.
"""


def test_the_last_success_alert_measures_on_the_servers_clock(tmp_path: Path) -> None:
    """`VB365JobNotSuccessful` takes the server's clock offset out of the age, as health does: a
    job of a server 2 hours slow, last successful 27 hours ago by Prometheus' clock, succeeded 25
    hours ago by its server's (no alert yet: it fires at 28 h 15 min, 26 h on the server's clock
    and 15 minutes pending), one 2 hours fast fires 2 hours early. A server without an offset (no
    ``Date``) or one more than a day off (a proxy's ``Date``, which health ignores too) is judged
    on Prometheus' clock: it is never left out of the alert."""
    promtool = binary("promtool")
    names = ("slow", "fast", "proxy", "dateless")
    tenant = 'organization="c",organization_id="o",job_id="j"'
    labels = {name: f'server="{name}",{tenant},job_name="{name[0].upper()}"' for name in names}
    said = "organization: c, organization_id: o, job_id: j"
    expected = {f"{name}_labels": f"server: {name}, {said}, job_name: {name[0].upper()}" for name in names}
    tests = tmp_path / "skew-test.yml"
    tests.write_text(SKEW_TESTS.format(rules=RULES, **labels, **expected), encoding="utf-8")
    checked = subprocess.run(
        [promtool, "test", "rules", str(tests)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


GUIDE = ROOT / "docs" / "monitoring.md"
_CONTINUES = ("or", "and", "unless", ")", "+", "-", "*", "/", "%", "^", "on", "by")


def guide_queries() -> list[str]:
    """The PromQL expressions of docs/monitoring.md's ``promql`` blocks: a comment ends one, and
    so does an unindented line at bracket depth 0 that does not carry on with an operator."""
    text = GUIDE.read_text(encoding="utf-8")
    queries: list[str] = []
    for block in text.split("```promql\n")[1:]:
        lines: list[str] = []
        depth = 0
        for line in block.split("```", 1)[0].splitlines():
            starts = (
                line.startswith("#")
                or not line.strip()
                or (depth == 0 and not line[0].isspace() and not line.startswith(_CONTINUES))
            )
            if starts and lines:
                queries.append("\n".join(lines))
                lines = []
            if line.startswith("#") or not line.strip():
                continue
            lines.append(line)
            depth += line.count("(") - line.count(")")
        if lines:
            queries.append("\n".join(lines))
    return queries


def test_the_guides_queries_are_promql(tmp_path: Path) -> None:
    """Every query docs/monitoring.md shows is one Prometheus parses (as recording rules:
    `promtool check rules` parses each expression)."""
    promtool = binary("promtool")
    queries = guide_queries()
    assert len(queries) >= 6
    rules = tmp_path / "guide-rules.yml"
    body = "".join(
        f"      - record: guide:query_{number}\n        expr: |\n"
        + "".join(f"          {line}\n" for line in query.splitlines())
        for number, query in enumerate(queries)
    )
    rules.write_text(f"groups:\n  - name: guide\n    rules:\n{body}", encoding="utf-8")
    checked = subprocess.run(
        [promtool, "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(queries)} rules found" in checked.stdout


def test_the_guides_age_on_the_servers_clock_is_the_alerts(tmp_path: Path) -> None:
    """The guide's "hours since each job last succeeded, on its server's clock": 25 for a job
    of a server 2 hours slow 27 hours after its success by Prometheus' clock, 27 for one without
    an offset (kept in the result, not left out), and 27 for one a proxy's Date puts 3 days off."""
    promtool = binary("promtool")
    (query,) = [query for query in guide_queries() if "server_clock_offset" in query]
    series = "".join(
        f'      - series: \'veeam_vb365_job_last_success_timestamp_seconds{{server="{name}",job_id="j"}}\'\n'
        "        values: '0x1700'\n"
        + (
            f"      - series: 'veeam_vb365_server_clock_offset_seconds{{server=\"{name}\"}}'\n"
            f"        values: '{offset}x1700'\n"
            if offset is not None
            else ""
        )
        for name, offset in (("slow", -7200), ("dateless", None), ("proxy", -259200))
    )
    expression = "".join(f"          {line}\n" for line in query.splitlines())
    tests = tmp_path / "guide-test.yml"
    tests.write_text(
        "evaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n"
        + series
        + "    promql_expr_test:\n      - eval_time: 27h\n        expr: |\n"
        + expression
        + "        exp_samples:\n"
        + "".join(
            f'          - labels: \'{{server="{name}",job_id="j"}}\'\n            value: {hours}\n'
            for name, hours in (("slow", 25), ("dateless", 27), ("proxy", 27))
        ),
        encoding="utf-8",
    )
    checked = subprocess.run(
        [promtool, "test", "rules", str(tests)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
