"""``check --token-cache DIR``: one sign-in per server shared by every run of ``check``.

VB365 counts sign-ins (5 a minute on its token endpoint by default): a check per tenant, run
every few minutes for each of 50 tenants of one server, signed in 50 times a round and was
throttled. With a cache directory each server's session (`SavedSession`) is kept in a file of
its own between runs: a run resumes it (no grant while its access token is valid), renews it
when due (the refresh grant), and signs in with the password only when there is none or the
server refused it. Clients of a cached server do not log out at close: the session stays valid
for the next run until it expires on the server.

Runs at the same time take turns on a server's file (an exclusive ``flock``, waited for without
blocking the event loop, within ``--timeout``): the first signs in or renews, the others read
what it wrote. The file holds tokens, so it is a secret: created mode 0600 in a directory only
its owner may write to; a file or directory another user could read or change is refused, as
ssh refuses such keys, and a file that is no saved session (damaged, from a later version) is
replaced at the next sign-in. Its name is a hash of the server's URL and user, never either.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from .._client import VBOClient
from .._exceptions import ConfigError
from .._files import not_a_file
from .._sessions import SavedSession
from ._exit import CLIError

__all__ = ["LOCK_POLL", "MAX_CACHE_BYTES", "TokenCache"]

log = logging.getLogger("vbo_async.cli")

MAX_CACHE_BYTES = 64 * 1024
"""The most bytes of a cache file read: a saved session holds two tokens of at most 16 KiB."""

LOCK_POLL = 0.02
"""Seconds between two tries for a server's file while another run holds it."""


def _flags(*names: str) -> int:
    flags = 0
    for name in names:
        flags |= getattr(os, name, 0)
    return flags


class TokenCache:
    """The cache directory of ``--token-cache``: one file per server and user."""

    def __init__(self, directory: Path, *, valid_for: float = 0.0) -> None:
        try:
            import fcntl  # noqa: F401  (POSIX only)
        except ImportError:
            raise CLIError("--token-cache needs file locks (fcntl), which this system lacks") from None
        self.directory = directory
        self.valid_for = valid_for
        """Seconds a run lasts at most: a session due for renewal within them is renewed first."""
        self.written: dict[str, str] = {}
        """Per file name, the session text this run last read or wrote there."""
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
        problem = _ownership_problem(status, writable_only=True)
        if problem is not None:
            raise CLIError(f"--token-cache {directory}: {problem}")

    def file_for(self, client: VBOClient) -> Path:
        """The file of ``client``'s server and user: named by a hash of both."""
        key = f"{client.base_url}\n{client.username}".encode("utf-8", "surrogatepass")
        return self.directory / f"{hashlib.sha256(key).hexdigest()[:32]}.session"

    async def sign_in(self, client: VBOClient) -> None:
        """Sign ``client`` in through its server's file: resume the session found there (if it
        serves), renew it if it is due within `valid_for` (the run's time limit: no
        renewal midway, where another run could send the same refresh token), or sign in, and
        write the session back when it changed; other runs wait meanwhile. A file that cannot
        be used is a `ConfigError` (this server's failure); one that holds no session is said
        at warning level and replaced."""
        path = self.file_for(client)
        async with _locked(path) as descriptor:
            text = _read(descriptor, path)
            if text:
                self.written[path.name] = text
                try:
                    resumed = client.resume(SavedSession.from_json(text))
                except ConfigError as exc:
                    log.warning("%s: ignored, a new session replaces it: %s", path, exc)
                else:
                    said = "session resumed" if resumed else "session unusable, signing in"
                    log.debug("%s: %s", path, said)
            await client.sign_in(valid_for=self.valid_for)
            self._write(client, path, descriptor)

    async def save(self, client: VBOClient) -> None:
        """Write ``client``'s session to its file if it changed since this run read or wrote it
        (renewed after the server refused it): the next run resumes the new one."""
        path = self.file_for(client)
        session = client.saved_session()
        if session is None or self.written.get(path.name) == session.to_json():
            return
        async with _locked(path) as descriptor:
            self._write(client, path, descriptor)

    def _write(self, client: VBOClient, path: Path, descriptor: int) -> None:
        session = client.saved_session()
        if session is None:
            return
        text = session.to_json()
        if self.written.get(path.name) == text:
            return
        data = text.encode("utf-8")
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, data, 0)
        except OSError as exc:
            # The run goes on signed in; the next one signs in again.
            log.warning("%s: cannot save the session: %s", path, exc.strerror or exc)
            return
        self.written[path.name] = text


@asynccontextmanager
async def _locked(path: Path) -> AsyncIterator[int]:
    """The file at ``path`` opened (created mode 0600) and locked exclusively, waiting for
    other runs without blocking the event loop (cancelled by ``--timeout``)."""
    import fcntl

    descriptor = _opened(path)
    try:
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(LOCK_POLL)
            except OSError as exc:
                raise ConfigError(f"token cache {path}: cannot lock it: {exc.strerror or exc}") from None
        yield descriptor
    finally:
        os.close(descriptor)  # unlocks


def _opened(path: Path) -> int:
    """``path`` opened for reading and writing, created mode 0600 if missing; a link, a file
    that is no regular file, or one another user owns or may read is a `ConfigError`."""
    flags = os.O_RDWR | os.O_CREAT | _flags("O_NOFOLLOW", "O_CLOEXEC", "O_NONBLOCK", "O_NOCTTY", "O_BINARY")
    try:
        descriptor = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            problem = "a symbolic link, which is not followed"
        else:
            problem = f"cannot open it: {exc.strerror or exc.__class__.__name__}"
        raise ConfigError(f"token cache {path}: {problem}") from None
    try:
        status = os.fstat(descriptor)
        kind = not_a_file(status.st_mode)
        refusal = f"a {kind}, not a file" if kind is not None else _ownership_problem(status)
        if refusal is not None:
            raise ConfigError(f"token cache {path}: {refusal}")
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _read(descriptor: int, path: Path) -> str:
    """What the locked file holds ('' when empty, or when it is too large or not UTF-8 to be a
    session: said at warning level, and replaced)."""
    try:
        raw = os.pread(descriptor, MAX_CACHE_BYTES + 1, 0)
    except OSError as exc:
        raise ConfigError(f"token cache {path}: cannot read it: {exc.strerror or exc}") from None
    if len(raw) > MAX_CACHE_BYTES:
        kib = MAX_CACHE_BYTES >> 10
        log.warning("%s: larger than %s KiB, which no saved session is: replaced", path, kib)
        return ""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("%s: not UTF-8 text, which no saved session is: replaced", path)
        return ""


def _ownership_problem(status: os.stat_result, *, writable_only: bool = False) -> str | None:
    """Why a file (or, ``writable_only``, a directory) with ``status`` may not hold tokens:
    another user owns it, or others may write to it (or read it: a file)."""
    if hasattr(os, "geteuid") and status.st_uid != os.geteuid():
        return f"owned by another user (uid {status.st_uid}); it must be this user's (uid {os.geteuid()})"
    mode = stat.S_IMODE(status.st_mode)
    shared = mode & (0o022 if writable_only else 0o077)
    if shared:
        what = "write to" if writable_only else "read or write"
        fix = "chmod go-w" if writable_only else "chmod 600"
        return f"mode {mode:04o} lets other users {what} it: {fix} it, or remove it"
    return None
