"""``check --token-cache DIR``: one sign-in per server shared by every run of ``check``.

VB365 counts sign-ins (5 a minute on its token endpoint by default): a check per tenant, run
every few minutes for each of 50 tenants of one server, signed in 50 times a round and was
throttled. With a cache directory each server's session (`SavedSession`) is kept in a file of
its own between runs: a run resumes it (no grant while its access token is valid), renews it
when due within the run's time limit (the refresh grant), and signs in with the password only
when there is none or the server refused it. Clients of a cached server do not log out at close:
the session stays valid for the next run until it expires on the server.

Runs at the same time take turns on a server's session (an exclusive ``flock`` on a lock file
beside it, waited for without blocking the event loop, within ``--timeout``): the first signs in
or renews, the others read what it wrote. A session is written to a new file renamed over the
old one, so that a run stopped mid-write (or a full disk) leaves the last session whole; a run
writes only a session that changed, and at its end only over the one it read (a run that
renewed meanwhile keeps its newer session). The files hold tokens, so they are secrets: created
mode 0600 in a directory only its owner may write to; a file or directory another user could
read or change is refused, as ssh refuses such keys, and so is a link (symbolic or hard) in a
file's place. A file that is no saved session (damaged, from a later version) is replaced at the
next sign-in. A file's name is a hash of the server's URL, user and API version asked for, never
any of them; a session of an ``"auto"`` server is not resumed once its version was found a day
ago or more (the server may have been upgraded): that run looks for the version again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import hashlib
import logging
import os
import stat
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from .._client import VBOClient
from .._exceptions import ConfigError
from .._files import not_a_file, open_flags
from .._sessions import SavedSession
from ._exit import CLIError

__all__ = ["LOCK_POLL", "MAX_CACHE_BYTES", "REDISCOVER_AFTER", "TokenCache"]

log = logging.getLogger("vbo_async.cli")

MAX_CACHE_BYTES = 64 * 1024
"""The most bytes of a session file read: a saved session holds two tokens of at most 16 KiB."""

LOCK_POLL = 0.02
"""Seconds between two tries for a server's lock while another run holds it."""

LOCK_MARGIN = 1.0
"""Seconds before the run's time limit when waiting for another run's lock is given up: that
server is then said to wait for the cache, not to have no answer (it was never asked)."""

REDISCOVER_AFTER = dt.timedelta(days=1)
"""How long the API version an ``"auto"`` server's session was found with is trusted: a server
upgraded since (VB365 7 to 8) serves a newer one, whose checks (a repository out of order) an
older one lacks, and one rolled back no longer serves it."""


class TokenCache:
    """The cache directory of ``--token-cache``: a session file and a lock file per server,
    user and API version asked for."""

    def __init__(self, directory: Path, *, valid_for: float = 0.0, deadline: float | None = None) -> None:
        try:
            import fcntl  # noqa: F401  (POSIX only)
        except ImportError:
            raise CLIError("--token-cache needs file locks (fcntl), which this system lacks") from None
        if not str(directory).strip() or str(directory) == ".":
            # click makes '' (an unset macro in a monitoring command line) the current directory
            raise CLIError("--token-cache needs a directory; got an empty value")
        self.directory = directory
        self.valid_for = valid_for
        """Seconds a run lasts at most: a session due for renewal within them is renewed first."""
        self.deadline = deadline
        """The run's time limit (`time.monotonic`), if any: a lock is not waited for past it."""
        self._keys: dict[int, str] = {}
        """Per client (by id), the name its files have (its API version may change meanwhile)."""
        self._held: dict[str, SavedSession] = {}
        """Per file name, the session this run read there or wrote."""
        self._prepare()

    def _prepare(self) -> None:
        """Create the directory (mode 0700) if it is missing; refuse one that is not a directory
        owned by this user, or that others may write to (they could replace the files)."""
        directory = self.directory
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise CLIError(f"--token-cache {directory}: cannot create it: {exc.strerror or exc}") from None
        try:
            status = os.stat(directory)
        except OSError as exc:
            raise CLIError(f"--token-cache {directory}: {exc.strerror or exc}") from None
        if not stat.S_ISDIR(status.st_mode):
            raise CLIError(f"--token-cache {directory}: not a directory")
        problem = _ownership_problem(status, directory=True)
        if problem is not None:
            raise CLIError(f"--token-cache {directory}: {problem}")

    def _key(self, client: VBOClient) -> str:
        """The name of ``client``'s files: a hash of its server, user and API version asked for
        (``"auto"`` until it is found), taken once per client."""
        key = self._keys.get(id(client))
        if key is None:
            asked = client.api_version or "auto"
            text = f"{client.base_url}\n{client.username}\n{asked}".encode("utf-8", "surrogatepass")
            key = self._keys[id(client)] = hashlib.sha256(text).hexdigest()[:32]
        return key

    async def sign_in(self, client: VBOClient) -> None:
        """Sign ``client`` in through its server's session file: resume the session found there
        (if it serves), renew it if it is due within `valid_for` (the run's time limit: no
        renewal midway, where another run could send the same refresh token), or sign in, and
        write the session when it changed; other runs wait meanwhile. A file that cannot be
        used is a `ConfigError` (this server's failure); one that holds no session is said at
        warning level and replaced."""
        auto = client.api_version is None
        key = self._key(client)
        path = self.directory / f"{key}.session"
        async with self._locked(key, then="the server was not asked"):
            found = _read(path)
            if found is not None:
                self._held[key] = found
                if auto and _version_is_old(found):
                    log.debug("%s: its API version was found a day ago or more: looking again", path)
                else:
                    try:
                        resumed = client.resume(found)
                    except ConfigError as exc:  # another server's or user's (a file copied here)
                        log.warning("%s: ignored, a new session replaces it: %s", path, exc)
                    else:
                        said = "session resumed" if resumed else "session unusable, signing in"
                        log.debug("%s: %s", path, said)
            await client.sign_in(valid_for=self.valid_for)
            self._write(client, key)

    async def save(self, client: VBOClient) -> None:
        """At the end of the run: write ``client``'s session if it changed since this run read or
        wrote it (renewed after the server refused it), unless another run wrote a session there
        meanwhile (its own, newer: it is kept)."""
        key = self._keys.get(id(client))
        session = client.saved_session()
        if key is None or session is None or session.same_tokens(self._held.get(key)):
            return
        async with self._locked(key, then="the session renewed is not saved"):
            now = _read(self.directory / f"{key}.session", quiet=True)
            if now is not None and not now.same_tokens(self._held.get(key)):
                log.debug("%s: another run saved a session since: it is kept", key)
                return
            self._write(client, key)

    def _write(self, client: VBOClient, key: str) -> None:
        """Write ``client``'s session to its file, unless it is the one held there: to a new
        file renamed over the old one (a failure leaves the old one whole, and is only said:
        the next run signs in again)."""
        session = client.saved_session()
        if session is None or session.same_tokens(self._held.get(key)):
            return
        path = self.directory / f"{key}.session"
        fresh: str | None = None
        try:
            descriptor, fresh = tempfile.mkstemp(prefix=f".{key}.", suffix=".new", dir=self.directory)
            try:
                os.write(descriptor, session.to_json().encode("utf-8"))
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(fresh, path)
        except OSError as exc:
            if fresh is not None:
                with suppress(OSError):
                    os.unlink(fresh)
            log.warning("%s: cannot save the session: %s", path, exc.strerror or exc)
            return
        self._held[key] = session

    @asynccontextmanager
    async def _locked(self, key: str, *, then: str) -> AsyncIterator[None]:
        """The lock file of ``key`` opened (created mode 0600) and locked exclusively, waiting for
        other runs without blocking the event loop, until `LOCK_MARGIN` before the run's time
        limit (a `ConfigError` then, saying what was not done: ``then``)."""
        import fcntl

        path = self.directory / f"{key}.lock"
        descriptor = _opened(path)
        began = time.monotonic()
        give_up = None if self.deadline is None else self.deadline - LOCK_MARGIN
        try:
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if give_up is not None and time.monotonic() + LOCK_POLL > give_up:
                        waited = max(1, round(time.monotonic() - began))
                        raise ConfigError(
                            f"token cache {path}: another run held it for the {waited} s this run "
                            f"could wait (a run that hangs?); {then}"
                        ) from None
                    await asyncio.sleep(LOCK_POLL)
                except OSError as exc:
                    raise ConfigError(f"token cache {path}: cannot lock it: {exc.strerror or exc}") from None
            yield
        finally:
            os.close(descriptor)  # unlocks


def _version_is_old(session: SavedSession) -> bool:
    found = session.version_found
    return found is None or dt.datetime.now(dt.UTC) - found >= REDISCOVER_AFTER


def _opened(path: Path) -> int:
    """The lock file at ``path`` opened, created mode 0600 if missing (`_refusal` applies)."""
    flags = (
        os.O_RDWR | os.O_CREAT | open_flags("O_NOFOLLOW", "O_CLOEXEC", "O_NONBLOCK", "O_NOCTTY", "O_BINARY")
    )
    return _checked(path, flags, 0o600)


def _read(path: Path, *, quiet: bool = False) -> SavedSession | None:
    """The session in the file at ``path``; None when there is none, or the file holds no
    session (said at warning level unless ``quiet``: it is replaced). A file that may not hold
    tokens (`_refusal`) or cannot be read is a `ConfigError`."""
    try:
        descriptor = _checked(
            path, os.O_RDONLY | open_flags("O_NOFOLLOW", "O_CLOEXEC", "O_NONBLOCK", "O_BINARY")
        )
    except FileNotFoundError:
        return None
    try:
        raw = os.read(descriptor, MAX_CACHE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"token cache {path}: cannot read it: {exc.strerror or exc}") from None
    finally:
        os.close(descriptor)
    if not raw:
        return None
    try:
        if len(raw) > MAX_CACHE_BYTES:
            raise ConfigError(f"larger than {MAX_CACHE_BYTES >> 10} KiB, which no saved session is")
        return SavedSession.from_json(raw)
    except ConfigError as exc:
        if not quiet:
            log.warning("%s: ignored, a new session replaces it: %s", path, exc)
        return None


def _checked(path: Path, flags: int, mode: int = 0o600) -> int:
    """``path`` opened with ``flags``; `FileNotFoundError` when it is missing (and not
    created); a `ConfigError` for one that cannot be opened, or that may not hold tokens
    (`_refusal`)."""
    try:
        descriptor = os.open(path, flags, mode)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            problem = "a symbolic link, which is not followed"
        else:
            problem = f"cannot open it: {exc.strerror or exc.__class__.__name__}"
        raise ConfigError(f"token cache {path}: {problem}") from None
    try:
        refusal = _refusal(os.fstat(descriptor))
        if refusal is not None:
            raise ConfigError(f"token cache {path}: {refusal}")
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _refusal(status: os.stat_result) -> str | None:
    """Why a file with ``status`` may not hold tokens: not a regular file, a hard link (another
    name of a file that is not the cache's), another user's, or one others may read or write."""
    kind = not_a_file(status.st_mode)
    if kind is not None:
        return f"a {kind}, not a file"
    if status.st_nlink != 1:
        return f"a file with {status.st_nlink} names (a hard link), which is not used"
    return _ownership_problem(status)


def _ownership_problem(status: os.stat_result, *, directory: bool = False) -> str | None:
    """Why a file (or a ``directory``) with ``status`` may not hold tokens: another user owns
    it, or others may write to it (or read it: a file)."""
    if hasattr(os, "geteuid") and status.st_uid != os.geteuid():
        return f"owned by another user (uid {status.st_uid}); it must be this user's (uid {os.geteuid()})"
    mode = stat.S_IMODE(status.st_mode)
    shared = mode & (0o022 if directory else 0o077)
    if shared:
        what = "write to" if directory else "read or write"
        fix = "chmod go-w" if directory else "chmod 600"
        return f"mode {mode:04o} lets other users {what} it: {fix} it, or remove it"
    return None
