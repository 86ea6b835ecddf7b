"""``check --token-cache DIR``: runs share each server's session instead of signing in each time.

Against the simulator over real sockets: the grants and logouts it counts, runs one after the
other and at the same time (in processes of their own), a session renewed or revoked between
runs, and cache files and directories that must not be used (others may read or write them, a
link, a damaged file).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vbo_async.simulator import Simulator, SimulatorConfig

from .test_check import CONFIG, EPOCH, Served, check, first_line, served, targets_of
from .test_cli import run_in_thread


@pytest.fixture
async def east(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    async with served("east", Simulator(SimulatorConfig(seed=43, epoch=EPOCH, **CONFIG))) as server:
        yield server


def grants(server: Served) -> list[str]:
    return [entry.grant_type for entry in server.simulator.stats.token_log]


def cached(cache: Path) -> Path:
    (path,) = cache.iterdir()
    return path


async def test_runs_share_one_sign_in_and_give_the_same_verdict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    targets = targets_of(tmp_path, east)
    plain = await check(capsys, targets)
    assert grants(east) == ["password"]
    assert east.simulator.stats.logouts["v8"] == 1
    cache = tmp_path / "cache"
    first = await check(capsys, targets, "--token-cache", str(cache))
    second = await check(capsys, targets, "--token-cache", str(cache))
    third = await check(capsys, targets, "--token-cache", str(cache))
    assert grants(east) == ["password", "password"]  # one sign-in for the three runs
    assert east.simulator.stats.logouts["v8"] == 1  # the cached session is never logged out
    assert first == second == third
    assert first.code == plain.code
    assert first.out == plain.out
    assert cache.stat().st_mode & 0o777 == 0o700
    path = cached(cache)
    assert path.stat().st_mode & 0o777 == 0o600
    assert east.url not in path.name
    assert "admin" not in path.name
    assert json.loads(path.read_text())["api_version"] == "v8"


async def test_the_environment_names_the_cache_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    monkeypatch.setenv("VBO_ASYNC_TOKEN_CACHE", str(tmp_path / "cache"))
    targets = targets_of(tmp_path, east)
    await check(capsys, targets)
    await check(capsys, targets)
    assert grants(east) == ["password"]
    assert cached(tmp_path / "cache").is_file()


async def test_runs_at_the_same_time_sign_in_once(tmp_path: Path, east: Served) -> None:
    targets = targets_of(tmp_path, east)
    runs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "vbo_async",
            "check",
            "--targets",
            str(targets),
            "--token-cache",
            str(tmp_path / "cache"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "VBO_PASSWORD": "admin"},
        )
        for _ in range(5)
    ]
    outputs = [await run.communicate() for run in runs]
    assert [run.returncode for run in runs] == [2] * 5, outputs
    assert len({out for out, _ in outputs}) == 1
    assert all(err == b"" for _, err in outputs)
    assert grants(east) == ["password"]


async def test_a_session_due_for_renewal_is_refreshed_and_saved(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    targets, cache = targets_of(tmp_path, east), tmp_path / "cache"
    await check(capsys, targets, "--token-cache", str(cache))
    path = cached(cache)
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "renew_after": "2000-01-01T00:00:00+00:00"}))
    await check(capsys, targets, "--token-cache", str(cache))
    renewed = json.loads(path.read_text())
    assert grants(east) == ["password", "refresh_token"]
    assert renewed["access_token"] != saved["access_token"]
    assert renewed["renew_after"] > "2001"
    await check(capsys, targets, "--token-cache", str(cache))
    assert grants(east) == ["password", "refresh_token"]


async def test_a_session_the_server_ended_is_replaced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    targets, cache = targets_of(tmp_path, east), tmp_path / "cache"
    await check(capsys, targets, "--token-cache", str(cache))
    saved = json.loads(cached(cache).read_text())
    east.simulator.tokens.log_out(saved["access_token"])  # as a logout elsewhere would
    again = await check(capsys, targets, "--token-cache", str(cache))
    assert again.code == 2
    # The access token was refused (401), its refresh token too: signed in with the password.
    assert grants(east) == ["password", "refresh_token", "password"]
    replaced = json.loads(cached(cache).read_text())
    assert replaced["access_token"] != saved["access_token"]
    await check(capsys, targets, "--token-cache", str(cache))
    assert grants(east) == ["password", "refresh_token", "password"]


async def test_a_damaged_cache_file_is_said_and_replaced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    targets, cache = targets_of(tmp_path, east), tmp_path / "cache"
    await check(capsys, targets, "--token-cache", str(cache))
    path = cached(cache)
    path.write_text('{"format": "vbo-async session 1", "access_token": 5}')
    result = await run_in_thread(capsys, "check", "--targets", str(targets), "--token-cache", str(cache))
    assert result.code == 2
    assert f"{path}: ignored, a new session replaces it: not a saved vbo-async session: " in result.err
    assert json.loads(path.read_text())["format"] == "vbo-async session 1"
    assert grants(east) == ["password", "password"]


async def test_a_cache_file_others_may_read_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    targets, cache = targets_of(tmp_path, east), tmp_path / "cache"
    await check(capsys, targets, "--token-cache", str(cache))
    path = cached(cache)
    path.chmod(0o644)
    result = await check(capsys, targets, "--token-cache", str(cache))
    assert result.code == 3
    assert f"token cache {path}: mode 0644 lets other users read or write it: chmod 600 it" in result.out
    assert (
        first_line(result.out)["text"]
        == "no jobs found on 0 tenants; 1 server could not be read: east (could not be read)"
    )
    assert grants(east) == ["password"]  # nothing was sent for that server


async def test_a_link_in_place_of_a_cache_file_is_not_followed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    targets, cache = targets_of(tmp_path, east), tmp_path / "cache"
    await check(capsys, targets, "--token-cache", str(cache))
    path = cached(cache)
    elsewhere = tmp_path / "elsewhere"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    result = await check(capsys, targets, "--token-cache", str(cache))
    assert result.code == 3
    assert f"token cache {path}: a symbolic link, which is not followed" in result.out


@pytest.mark.parametrize(
    ("mode", "said"), [(0o777, "mode 0777 lets other users write to it: chmod go-w it, or remove it")]
)
async def test_a_cache_directory_others_may_write_to_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served, mode: int, said: str
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(mode)
    result = await check(capsys, targets_of(tmp_path, east), "--token-cache", str(cache))
    assert result.code == 3
    assert result.out.startswith(f"VB365 UNKNOWN - --token-cache {cache}: {said}")
    assert grants(east) == []


async def test_a_cache_that_is_a_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    cache = tmp_path / "cache"
    cache.write_text("")
    result = await check(capsys, targets_of(tmp_path, east), "--token-cache", str(cache))
    assert result.code == 3
    assert "--token-cache" in result.out
    assert str(cache) in result.out
    assert grants(east) == []


async def test_a_session_due_within_the_time_limit_is_renewed_at_the_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    """A run renews a session due before its -t is over while it holds the file, rather than
    midway, where another run holding the same refresh token would send it too."""
    targets, cache = targets_of(tmp_path, east), tmp_path / "cache"
    await check(capsys, targets, "--token-cache", str(cache))
    path = cached(cache)
    saved = json.loads(path.read_text())
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).isoformat()
    path.write_text(json.dumps({**saved, "renew_after": soon}))
    await check(capsys, targets, "--token-cache", str(cache), "-t", "20s")
    assert grants(east) == ["password"]  # due in 30 s, the run ends within 20 s
    await check(capsys, targets, "--token-cache", str(cache), "-t", "40s")
    assert grants(east) == ["password", "refresh_token"]
    assert json.loads(path.read_text())["access_token"] != saved["access_token"]
