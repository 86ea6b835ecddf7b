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
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from vbo_async.simulator import Faults, Simulator, SimulatorConfig

from .test_check import CONFIG, EPOCH, Served, check, check_process, first_line, served, targets_of
from .test_cli import judge_at, run_in_thread


@pytest.fixture
async def east(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    judge_at(monkeypatch, EPOCH)  # ages said in the output do not grow with the day
    async with served("east", Simulator(SimulatorConfig(seed=43, epoch=EPOCH, **CONFIG))) as server:
        yield server


def grants(server: Served) -> list[str]:
    return [entry.grant_type for entry in server.simulator.stats.token_log]


async def primed(capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served) -> tuple[Path, Path, Path]:
    """A targets file of ``east``, the cache directory, and its session file after a first run."""
    targets, cache = targets_of(tmp_path, east), tmp_path / "cache"
    await check(capsys, targets, "--token-cache", str(cache))
    return targets, cache, cached(cache)


def edited(path: Path, **changes: object) -> dict[str, Any]:
    """Change members of the session file at ``path``; the session as it was."""
    saved: dict[str, Any] = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, **changes}))
    return saved


def cached(cache: Path) -> Path:
    """The one session file of the cache (beside its lock file)."""
    (path,) = cache.glob("*.session")
    assert {entry.name for entry in cache.iterdir()} == {path.name, path.with_suffix(".lock").name}
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


async def test_runs_at_the_same_time_sign_in_once(tmp_path: Path) -> None:
    """Five runs started together against a server slow to answer (a second a request): the
    first signs in while the others wait for its turn to end, then resume what it wrote
    (without the lock, each of those starting within that second signed in too)."""
    slow = Simulator(SimulatorConfig(seed=43, epoch=EPOCH, faults=Faults(latency=1.0), **CONFIG))
    async with served("slow", slow) as server:
        targets, cache = targets_of(tmp_path, server), tmp_path / "cache"
        runs = await asyncio.gather(*(check_process(targets, "--token-cache", str(cache)) for _ in range(5)))
    assert [code for code, _, _ in runs] == [2] * 5, runs
    assert all(err == "" for _, _, err in runs)
    # Judged on this machine's clock (each run its own process): the perfdata, not the ages said.
    assert len({out.split("|", 1)[1].split("\n", 1)[0] for _, out, _ in runs}) == 1
    assert grants(server) == ["password"]


async def test_a_session_due_for_renewal_is_refreshed_and_saved(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    targets, cache, path = await primed(capsys, tmp_path, east)
    saved = edited(path, renew_after="2000-01-01T00:00:00+00:00")
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
    targets, cache, path = await primed(capsys, tmp_path, east)
    path.write_text('{"format": "vbo-async session 1", "access_token": 5}')
    result = await run_in_thread(capsys, "check", "--targets", str(targets), "--token-cache", str(cache))
    assert result.code == 2
    assert f"{path}: ignored, a new session replaces it: not a saved vbo-async session: " in result.err
    assert json.loads(path.read_text())["format"] == "vbo-async session 1"
    assert grants(east) == ["password", "password"]


async def test_a_cache_file_others_may_read_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    targets, cache, path = await primed(capsys, tmp_path, east)
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
    targets, cache, path = await primed(capsys, tmp_path, east)
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
    assert result.out.startswith(
        f"VB365 UNKNOWN - Invalid value for '--token-cache': Directory '{cache}' is a file"
    )
    assert grants(east) == []


async def test_a_session_due_within_the_time_limit_is_renewed_at_the_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    """A run renews a session due before its -t is over while it holds the file, rather than
    midway, where another run holding the same refresh token would send it too."""
    targets, cache, path = await primed(capsys, tmp_path, east)
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).isoformat()
    saved = edited(path, renew_after=soon)
    await check(capsys, targets, "--token-cache", str(cache), "-t", "20s")
    assert grants(east) == ["password"]  # due in 30 s, the run ends within 20 s
    await check(capsys, targets, "--token-cache", str(cache), "-t", "40s")
    assert grants(east) == ["password", "refresh_token"]
    assert json.loads(path.read_text())["access_token"] != saved["access_token"]


async def test_a_warm_run_does_not_rewrite_the_session(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    """Every run wrote the file twice (its times, recomputed, never matched the text read), and
    a run's write at its end put its older session over one another run had renewed since."""
    targets, cache, path = await primed(capsys, tmp_path, east)
    before = (path.stat().st_ino, path.stat().st_mtime_ns, path.read_text())
    for _ in range(2):
        await check(capsys, targets, "--token-cache", str(cache))
        # The inode and its time: a file renamed over it may reuse the inode number.
        assert (path.stat().st_ino, path.stat().st_mtime_ns, path.read_text()) == before


async def test_a_run_ending_keeps_the_session_another_run_renewed_meanwhile(tmp_path: Path) -> None:
    from vbo_async._cli._tokencache import TokenCache

    from .conftest import FakeVBO, client_for

    fake = FakeVBO()
    fake.route("GET", "/v1/Organizations", [])
    cache = tmp_path / "cache"
    async with client_for(fake, log_out=False) as a, client_for(fake, log_out=False) as b:
        first, second = TokenCache(cache), TokenCache(cache)
        await first.sign_in(a)  # run A signs in: session 1
        held = cached(cache).read_text()
        second.valid_for = 10**6
        await second.sign_in(b)  # run B resumes it and renews it: session 2, refresh token 1 spent
        renewed = cached(cache).read_text()
        assert json.loads(renewed)["access_token"] != json.loads(held)["access_token"]
        await a.sign_in(valid_for=10**6)  # A renews too (its refresh token refused: the password)
        assert fake.grants() == ["password", "refresh_token", "refresh_token", "password"]
        await first.save(a)  # A ends: the file holds B's session, not the one A read
    assert cached(cache).read_text() == renewed


async def test_a_session_that_cannot_be_written_leaves_the_last_one_whole(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """It was truncated, then written: a full disk left an empty file, and the next run signed in."""
    import vbo_async._cli._tokencache as tokencache

    targets, cache, path = await primed(capsys, tmp_path, east)
    edited(path, renew_after="2000-01-01T00:00:00+00:00")
    kept = path.read_text()

    def full(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tokencache.tempfile, "mkstemp", full)
    result = await run_in_thread(capsys, "check", "--targets", str(targets), "--token-cache", str(cache))
    assert result.code == 2
    assert f"{path}: cannot save the session: No space left on device" in result.err
    assert path.read_text() == kept
    assert [entry.name for entry in cache.iterdir() if entry.suffix == ".new"] == []


async def test_an_auto_server_looks_for_its_version_again_after_a_day(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    """A session resumed spoke the version found once, forever: a server upgraded since (7 to 8)
    kept being read as 7, and one rolled back was UNKNOWN on every run."""
    targets, cache, path = await primed(capsys, tmp_path, east)
    saved = json.loads(path.read_text())
    assert saved["version_found"] is not None  # the targets file asks for "auto"
    aged = (dt.datetime.fromisoformat(saved["version_found"]) - dt.timedelta(days=1)).isoformat()
    path.write_text(json.dumps({**saved, "version_found": aged}))
    await check(capsys, targets, "--token-cache", str(cache))
    assert grants(east) == ["password", "password"]  # found again, with a sign-in
    again = json.loads(path.read_text())
    assert dt.datetime.fromisoformat(again["version_found"]) > dt.datetime.fromisoformat(aged)
    await check(capsys, targets, "--token-cache", str(cache))
    assert grants(east) == ["password", "password"]


async def test_a_server_asked_for_another_version_has_a_session_of_its_own(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    cache = tmp_path / "cache"
    await check(capsys, targets_of(tmp_path, east), "--token-cache", str(cache))
    pinned = targets_of(tmp_path, east, api_version='"v7"')
    await check(capsys, pinned, "--token-cache", str(cache))
    assert grants(east) == ["password", "password"]
    versions = sorted(json.loads(path.read_text())["api_version"] for path in cache.glob("*.session"))
    assert versions == ["v7", "v8"]


def files_in(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


async def test_an_empty_cache_directory_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """click makes '' the current directory: an unset macro in a monitoring system's command
    line wrote the session file wherever the check ran."""
    targets = targets_of(tmp_path, east)
    monkeypatch.chdir(tmp_path)
    result = await check(capsys, targets, "--token-cache", "")
    assert result.code == 3
    assert result.out.startswith("VB365 UNKNOWN - --token-cache needs a directory; got an empty value")
    assert grants(east) == []
    assert files_in(tmp_path) == ["targets.toml"]


async def test_a_hard_link_in_place_of_a_session_file_is_not_used(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    targets, cache, path = await primed(capsys, tmp_path, east)
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    precious.chmod(0o600)
    path.unlink()
    os.link(precious, path)
    result = await check(capsys, targets, "--token-cache", str(cache))
    assert result.code == 3
    assert f"token cache {path}: a file with 2 names (a hard link), which is not used" in result.out
    assert precious.read_text() == "mine"


async def test_a_run_holding_the_cache_past_the_time_limit_is_said_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    """Waiting for another run's lock was said as the server giving no answer."""
    import fcntl

    targets, cache = targets_of(tmp_path, east), tmp_path / "cache"
    await check(capsys, targets, "--token-cache", str(cache))
    lock = cached(cache).with_suffix(".lock")
    with lock.open("r+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = await check(capsys, targets, "--token-cache", str(cache), "-t", "3s")
    assert result.code == 3
    assert f"UNKNOWN: east: token cache {lock}: another run held it for the " in result.out
    assert "(a run that hangs?); the server was not asked" in result.out
    assert "no answer" not in result.out
    assert grants(east) == ["password"]


async def test_a_session_of_another_server_in_the_file_is_replaced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    """A file copied from another server's: its tokens are not sent here; a new session replaces it."""
    targets, cache, path = await primed(capsys, tmp_path, east)
    edited(path, base_url="http://elsewhere.example:4443")
    result = await run_in_thread(capsys, "check", "--targets", str(targets), "--token-cache", str(cache))
    assert result.code == 2
    assert f"{path}: ignored, a new session replaces it: the session was saved for 'admin' on " in result.err
    assert grants(east) == ["password", "password"]
    assert json.loads(path.read_text())["base_url"] == east.url


async def test_poll_keeps_the_sessions_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, east: Served
) -> None:
    """``poll --token-cache``: a poll run every minute from cron signs in once, as checks do."""
    targets, cache = targets_of(tmp_path, east), tmp_path / "cache"
    first = await run_in_thread(
        capsys, "poll", "--targets", str(targets), "--json", "--token-cache", str(cache)
    )
    second = await run_in_thread(
        capsys, "poll", "--targets", str(targets), "--json", "--token-cache", str(cache)
    )
    assert first.code == second.code
    assert json.loads(first.out) == json.loads(second.out)
    assert grants(east) == ["password"]
    assert east.simulator.stats.logouts["v8"] == 0
    assert cached(cache).stat().st_mode & 0o777 == 0o600
    bad = cache / "bad"
    bad.mkdir(mode=0o777)
    bad.chmod(0o777)
    refused = await run_in_thread(capsys, "poll", "--targets", str(targets), "--token-cache", str(bad))
    assert refused.code == 2
    assert f"--token-cache {bad}: mode 0777 lets other users write to it" in refused.err


async def test_a_password_typed_at_a_prompt_moves_the_lock_waits_deadline_with_the_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, east: Served
) -> None:
    """The time limit counts from the end of a password prompt (it may take minutes); the
    token cache's lock waits, whose deadline was set at the start, end with it too, or a run
    whose password took a minute to type gave up waiting for another run's turn at once."""
    import contextlib
    import time

    from vbo_async._cli import _flows
    from vbo_async._cli._check import token_cache_for
    from vbo_async._cli._limits import TimeLimit

    def typed_a_minute_later(variable: str, prompt: str, **_: object) -> str:
        return "admin"

    monkeypatch.delenv("VBO_PASSWORD")
    monkeypatch.setattr("vbo_async._cli._secrets.read_password", typed_a_minute_later)
    limit = TimeLimit(dt.timedelta(seconds=50), time.monotonic() - 60)  # the prompt took a minute
    cache = token_cache_for(tmp_path / "cache", limit)
    assert cache is not None
    assert cache.deadline == limit.ends  # already past, at the start
    async with contextlib.AsyncExitStack() as stack:
        await _flows.open_servers(stack, targets_of(tmp_path, east), limit=limit, cache=cache)
        assert limit.ends > time.monotonic() + 49  # counted from the end of the prompt
        assert cache.deadline == limit.ends
