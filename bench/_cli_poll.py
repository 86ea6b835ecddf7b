"""CLI poll: ``vbo-async poll`` over every tenant of a 300-tenant simulator, this checkout against 2ff99dd.

Issue 12's goal 3: the 300-tenant CLI poll at least 10× faster than at commit 2ff99dd, measured side
by side in one run with the simulator in its own process. Both versions run as real subprocesses
(``python -m``-style, through `_cli_child`) on the same targets file, which lists every tenant by
id, against the same simulator (``bench/_server.py``: 300 organizations, seed 0, 1,055 jobs, the
simulator's default repositories and proxies), in interleaved rounds, JSON output and the table
alike. 2ff99dd speaks v1 only, so the like-for-like comparison is against a v1-only simulator; this
checkout also polls a v8-only one holding the same data.

Measured per run: wall time from spawning the child to reaping it, the child's CPU (user + system,
from ``os.wait4``), what of both the command itself took once its modules were imported (the child
reports it), the requests the simulator saw (by kind) and the simulator's own CPU.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _baseline import BASELINE, BaselineUnavailable, baseline_commit, baseline_python
from _common import Table, fmt_ratio, is_this_checkout
from _server import KINDS, Server, ServerConfig, kind_of, serve

__all__ = ["run"]

CHILD = Path(__file__).resolve().parent / "_cli_child.py"
OLD = BASELINE
NEW = "this checkout"


@dataclass(frozen=True)
class Candidate:
    """One way of running ``vbo-async poll``: which version, against which server, which output."""

    version: str
    python: Path
    api_version: str
    as_json: bool

    @property
    def name(self) -> str:
        output = "--json" if self.as_json else "table"
        return f"{self.version}, {self.api_version} server, {output}"

    @property
    def baseline(self) -> str:
        """The name of the baseline run this one is compared with (2ff99dd, v1, same output)."""
        return Candidate(OLD, self.python, "v1", self.as_json).name


@dataclass
class Run:
    """One ``vbo-async poll`` run."""

    wall: float
    cpu: float
    command: float
    command_cpu: float
    requests: dict[str, int]
    server_cpu: float
    jobs: int | None

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


@dataclass
class Runner:
    """Runs the candidates against their servers and keeps every run."""

    folder: Path
    servers: dict[str, Server]
    targets: dict[str, Path]
    modules: dict[str, str] = field(default_factory=dict)
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def once(self, candidate: Candidate, *, record: bool = True, profile: Path | None = None) -> Run:
        """Run ``candidate`` once; ``record``: keep the run (not a warm-up); ``profile``: under
        cProfile, its statistics written there (the run is then not recorded)."""
        server = self.servers[candidate.api_version]
        report, out, err = (self.folder / name for name in ("report.json", "out", "err"))
        profiler = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
        record = record and profile is None
        command = [
            str(candidate.python),
            *profiler,
            str(CHILD),
            str(report),
            self.modules.get(candidate.name, ""),
            "--",
            "poll",
            "--targets",
            str(self.targets[candidate.api_version]),
            *(["--json"] if candidate.as_json else []),
        ]
        env = {**os.environ, "VBO_PASSWORD": "admin", "COLUMNS": "200"}
        env.pop("PYTHONPATH", None)
        server.reset()
        server_cpu = server.cpu()
        with out.open("wb") as stdout, err.open("wb") as stderr:
            started = time.perf_counter()
            child = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, cwd=self.folder)
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        server_cpu = server.cpu() - server_cpu
        if child.returncode != 0:
            tail = err.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"{candidate.name}: exit status {child.returncode}\n{tail}")
        facts = json.loads(report.read_text(encoding="utf-8"))
        _check_package(candidate, facts["package"])
        if not record:  # the warm-up: later runs import beforehand what the command imported
            self.modules[candidate.name] = ",".join(facts["imported"])
        requests = dict.fromkeys(KINDS, 0)
        for (method, path), count in server.by_endpoint().items():
            requests[kind_of(method, path)] += count
        jobs = None
        if candidate.as_json:
            rows = json.loads(out.read_bytes())
            failed = [row for row in rows if row.get("error")]
            if failed:
                raise RuntimeError(f"{candidate.name}: {len(failed)} failed rows, e.g. {failed[0]}")
            jobs = sum(1 for row in rows if row.get("job_id"))
        elif out.stat().st_size == 0:
            raise RuntimeError(f"{candidate.name}: printed no table")
        result = Run(
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            command=facts["command"],
            command_cpu=facts["command_cpu"],
            requests=requests,
            server_cpu=server_cpu,
            jobs=jobs,
        )
        if record:
            self.runs.setdefault(candidate.name, []).append(result)
        return result

    def median(self, name: str, measure: str) -> float:
        return statistics.median(getattr(run, measure) for run in self.runs[name])

    def ratio(self, name: str, baseline: str, measure: str) -> float:
        """Median over rounds of the baseline's value over this candidate's (how many times faster)."""
        pairs = zip(self.runs[baseline], self.runs[name], strict=True)
        return statistics.median(getattr(b, measure) / getattr(a, measure) for b, a in pairs)


PROFILE_ROWS = (
    ("start-up: imports", "imports"),
    ("waiting for the simulator (epoll)", "waiting"),
    ("sending: Sender.send (aiohttp, transport, slot, token, bounded read)", "sending"),
    ("decoding: Decoder.page / Decoder.one", "decoding"),
    ("judging health: assess", "health"),
    ("output: the JSON or the rich table", "output"),
    ("the rest: event loop, poll_jobs, links, report rows, click", "rest"),
)


def _profile_shares(path: Path) -> dict[str, float]:
    """The profiled time of one CLI run split as `PROFILE_ROWS` say (cumulative times of
    functions that do not call each other, the idle wait in epoll, and what remains)."""
    import pstats

    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values())
    parts = dict.fromkeys((key for _, key in PROFILE_ROWS), 0.0)
    for (filename, _, function), (_, _, own, cumulative, _) in stats.items():
        if filename == "<frozen importlib._bootstrap>" and function == "_find_and_load":
            parts["imports"] += cumulative
        elif function == "<method 'poll' of 'select.epoll' objects>":
            parts["waiting"] += own
        elif filename.endswith("vbo_async/_sending.py") and function == "send":
            parts["sending"] += cumulative
        elif filename.endswith("vbo_async/_decode.py") and function in ("page", "one"):
            parts["decoding"] += cumulative
        elif filename.endswith("vbo_async/_health.py") and function == "assess":
            parts["health"] += cumulative
        elif filename.endswith("vbo_async/_cli/_app.py") and function == "_show":
            parts["output"] += cumulative
    parts["rest"] = total - sum(parts.values())
    return {key: value / total for key, value in parts.items()} | {"total": total}


def _check_package(candidate: Candidate, package: str) -> None:
    """The child imported the version it was meant to: the baseline from its venv, this
    checkout's the one this process runs."""
    if is_this_checkout(package) != (candidate.version == NEW):
        raise RuntimeError(f"{candidate.name} ran the vbo_async at {package}")


def _targets_file(folder: Path, server: Server, api_version: str) -> Path:
    """A targets file naming every organization of ``server`` by id."""
    path = folder / f"targets-{api_version}.toml"
    ids = "".join(f'  "{org_id}",\n' for org_id in server.organization_ids)
    path.write_text(
        "[[servers]]\n"
        'name = "simulator"\n'
        f'url = "{server.base_url}"\n'
        'username = "admin"\n'
        'password_env = "VBO_PASSWORD"\n'
        f'api_version = "{api_version}"\n'
        f"organizations = [\n{ids}]\n",
        encoding="utf-8",
    )
    return path


def _compile_bytecode() -> None:
    """Compile this checkout's package to bytecode, as pip does for a package it installs (as it
    did for 2ff99dd's venv). The environment may set ``PYTHONDONTWRITEBYTECODE`` (``.ci/run``
    does), and an editable checkout would then compile its modules from source in every child:
    about 50 ms of start-up that no installed copy pays."""
    import compileall

    import vbo_async

    if not compileall.compile_dir(Path(vbo_async.__file__).parent, quiet=1):
        raise RuntimeError("compiling this checkout's bytecode failed")


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def run(*, smoke: bool) -> list[str]:
    """Print the CLI poll table; return the verdicts."""
    organizations = 20 if smoke else 300
    rounds = 1 if smoke else 5
    try:
        old_python: Path | None = baseline_python()
        commit = baseline_commit()
        unavailable = ""
    except BaselineUnavailable as exc:
        old_python, commit, unavailable = None, BASELINE, str(exc)
        print(f"(no {BASELINE} baseline: {exc})\n")
    new_python = Path(sys.executable)
    _compile_bytecode()
    candidates = [
        Candidate(version, python, api_version, as_json)
        for as_json in (True, False)
        for version, python, api_version in (
            (OLD, old_python, "v1"),
            (NEW, new_python, "v1"),
            (NEW, new_python, "v8"),
        )
        if python is not None
    ]
    config = {
        version: ServerConfig(
            organizations=organizations, seed=0, repositories=3, proxies=2, api_versions=(version,)
        )
        for version in ("v1", "v8")
    }
    with (
        tempfile.TemporaryDirectory(prefix="vbo-bench-cli-") as folder,
        serve(config["v1"]) as v1,
        serve(config["v8"]) as v8,
    ):
        servers = {"v1": v1, "v8": v8}
        targets = {
            version: _targets_file(Path(folder), server, version) for version, server in servers.items()
        }
        runner = Runner(Path(folder), servers, targets)
        for candidate in candidates:  # warms the simulators and finds what each command imports
            runner.once(candidate, record=False)
        for number in range(rounds):
            start = number % len(candidates)
            for candidate in candidates[start:] + candidates[:start]:
                runner.once(candidate)
        profiled = [candidate for candidate in candidates if candidate.version == NEW]
        if smoke:  # one profile keeps the profile's table from rotting
            profiled = profiled[-1:]
        shares = {}
        for candidate in profiled:
            path = Path(folder) / f"{candidate.api_version}-{candidate.as_json}.prof"
            runner.once(candidate, profile=path)
            shares[candidate.name] = _profile_shares(path)

    names = [candidate.name for candidate in candidates]
    jobs = {runner.runs[name][0].jobs for name in names if runner.runs[name][0].jobs is not None}
    if len(jobs) != 1:
        raise RuntimeError(f"the versions listed different numbers of jobs: {jobs}")
    job_count = jobs.pop()
    table = Table(
        f"`vbo-async poll --targets` over {organizations} tenants ({job_count:,} jobs) of one simulator "
        f"in its own process: {BASELINE} against this checkout, medians of {rounds} interleaved rounds",
        [
            "run",
            "wall",
            "client CPU",
            "of which the command (wall · CPU)",
            "requests",
            "token · orgs · jobs · sessions · links · logout",
            "simulator CPU",
            f"× as fast as {BASELINE} (wall · CPU)",
        ],
    )
    for candidate in candidates:
        name = candidate.name
        runs = runner.runs[name]
        first = runs[0]
        kinds = " · ".join(f"{first.requests[kind]:,}" for kind in KINDS if kind != "other")
        if first.requests["other"]:
            kinds += f" (and {first.requests['other']} other)"
        baseline = candidate.baseline
        if baseline in runner.runs:
            faster = (
                f"{fmt_ratio(runner.ratio(name, baseline, 'wall'))} · "
                f"{fmt_ratio(runner.ratio(name, baseline, 'cpu'))}"
            )
        else:
            faster = "n/a"
        table.add(
            name,
            _seconds(runner.median(name, "wall")),
            _seconds(runner.median(name, "cpu")),
            f"{_seconds(runner.median(name, 'command'))} · {_seconds(runner.median(name, 'command_cpu'))}",
            f"{first.total_requests:,}",
            kinds,
            _seconds(runner.median(name, "server_cpu")),
            faster,
        )
    command = "python bench/run.py cli" + (" --smoke" if smoke else "")
    table.notes.append(
        f"Command: `{command}`. {BASELINE} is commit {commit[:12]}, installed with its `cli` extra in a "
        "venv of its own (bench/_baseline.py); this checkout runs from the benchmark's interpreter, its "
        "bytecode compiled beforehand as pip compiles an installed package's. "
        "Wall: spawning the child to reaping it, interpreter start-up and imports included; client CPU: "
        "the child's user + system time (`os.wait4`). The command columns exclude start-up: the child "
        "imports beforehand the modules the command imported in a warm-up run. Requests are counted "
        "by the simulator; 'links' are the repositories and proxies the table shows. Each simulator "
        "serves one API version (2ff99dd speaks only v1), seed 0, the same data."
    )
    if unavailable:
        table.notes.append(f"No {BASELINE} rows: {unavailable}")
    table.print()

    where = Table(
        "Where this checkout's `vbo-async poll` spends its time: one more run of each under cProfile "
        "(shares of the profiled time, which cProfile inflates for Python-heavy code)",
        ["part", *(candidate.name for candidate in profiled)],
    )
    for label, key in PROFILE_ROWS:
        where.add(label, *(f"{shares[candidate.name][key]:.0%}" for candidate in profiled))
    where.add("profiled time", *(_seconds(shares[candidate.name]["total"]) for candidate in profiled))
    where.notes.append(
        "Cumulative times of functions that do not call one another (imports: the outermost "
        "`_find_and_load`; sending: `Sender.send`, which ends once the body is read; decoding; "
        "`assess`; the output), the event loop's idle wait in `epoll.poll` (the simulator building "
        "its answers), and the rest. Run as `python -m cProfile -o FILE bench/_cli_child.py ...`."
    )
    where.print()

    verdicts = []
    for candidate in candidates:
        if candidate.version != NEW or candidate.baseline not in runner.runs:
            continue
        ratio = runner.ratio(candidate.name, candidate.baseline, "wall")
        verdicts.append(
            f"CLI poll of {organizations} tenants, {candidate.name}: {fmt_ratio(ratio)} as fast as "
            f"{BASELINE} ({_seconds(runner.median(candidate.name, 'wall'))} against "
            f"{_seconds(runner.median(candidate.baseline, 'wall'))}); goal ≥ 10× → "
            f"{'MET' if ratio >= 10 else 'NOT MET'}"
        )
    if not verdicts:
        verdicts.append(f"CLI poll: not compared, {unavailable}")
    for line in verdicts:
        print("*", line)
    print()
    return verdicts
