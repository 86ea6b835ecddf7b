"""``serve``'s servers: built from the targets file at start, and again at each SIGHUP.

A reload reads the targets file, its CA bundles and its password files again (in a worker
thread: a file on a stuck network share holds no scrape), then hands the exporter the servers
to sweep (`Exporter.reconfigure`). A server whose table, password and CA bundle are unchanged
keeps its client, and so its token (a server whose ``organizations`` alone changed too); any
other gets a new client, and the clients no longer swept are closed (logged out, taking the
turns sweeps take: `Turns`). A file that cannot be loaded changes nothing: each problem is
said on stderr, the servers of the last good file are still swept, and
``vbo_async_exporter_config_last_reload_successful`` is 0 until a reload succeeds.

A reload waits for no sweep and no logout: a server that stopped answering must not hold up the
next SIGHUP (servers added, clients closed) for its time budget. The clients no longer swept are
closed in the background, each once no sweep in progress uses it (`Exporter.released`), within
`LOGOUTS_WITHIN` seconds a batch; `Servers.aclose` stops those closes and closes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NoReturn

import attrs

from .._exceptions import ClientStateError
from ._descriptors import turns
from ._exit import CLIError, write_banner
from ._report import plural
from ._secrets import Passwords
from ._targets import ServerTarget, read_targets, tls_contexts
from ._turns import Turns, close_in_turns

if TYPE_CHECKING:
    from .._client import VBOClient
    from ._exporter import Exporter
    from ._sweeps import ServerSpec

__all__ = ["LOGOUTS_WITHIN", "Loaded", "Servers", "load"]

log = logging.getLogger("vbo_async.cli")

LOGOUTS_WITHIN = 10.0
"""Seconds ``serve``'s clients have, all together, to log out when it stops (each logout has its
own few seconds too): clients taking turns behind servers that do not answer must not hold the
exit past a service manager's stop timeout. A client whose logout has not ended by then is
closed without it (its token expires on the server's own schedule)."""

Loaded = list[tuple[ServerTarget, ssl.SSLContext | Literal[False], str]]
"""Each server of a targets file with its TLS context (False: ``insecure``) and its password."""


def load(path: Path, passwords: Passwords) -> Loaded:
    """Read the targets file at ``path``, its CA bundles and its passwords (`Passwords`); every
    problem is a `CLIError`."""
    targets = read_targets(path)
    verify = tls_contexts(path, targets)
    return list(zip(targets.servers, verify, passwords.read(path, targets), strict=True))


@attrs.frozen
class _Source:
    """What a server's client is built from: a reload that gives the same keeps the client."""

    target: ServerTarget
    password: str = attrs.field(repr=False)
    bundle: tuple[int, int, int, int] | None
    """The CA bundle's device, inode, size and modification time: a bundle renewed in place
    (same path) is loaded again."""

    def same_client(self, other: _Source) -> bool:
        """Whether a client built from ``other`` would be this one's: all the same but the
        organizations swept, which are the spec's, not the client's."""
        return attrs.evolve(self, target=attrs.evolve(self.target, organizations="all")) == attrs.evolve(
            other, target=attrs.evolve(other.target, organizations="all")
        )

    def __reduce__(self) -> NoReturn:
        # It holds the password: nothing may put it into a pickle (or a deep copy).
        raise ClientStateError("a server's source cannot be pickled: it holds the password")


def _stamp(path: str | None) -> tuple[int, int, int, int] | None:
    if path is None:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


class Servers:
    """The servers ``serve`` sweeps and their open clients, closed by `aclose`.

    ``within`` is a sweep's time budget, given to every client (see `Connection.client`).
    `turns` are the turns the servers' sweeps take (the exporter's, resized at each reload);
    logging the clients out takes them too."""

    def __init__(self, path: Path, passwords: Passwords, *, within: float) -> None:
        self.turns = Turns()
        self.path = path
        self.passwords = passwords
        self.within = within
        self._live: dict[str, tuple[_Source, ServerSpec]] = {}
        self._clients: dict[int, VBOClient] = {}
        """Every client opened and not yet closed, by id."""
        self._closing: set[asyncio.Task[None]] = set()
        """The background closes of clients no longer swept (`_retire`)."""
        self._one_close = asyncio.Lock()
        """Held by the background close choosing and closing clients: none is closed twice."""

    def build(self, loaded: Loaded) -> list[ServerSpec]:
        """The specs of the servers ``loaded``: the one in use for a server whose source is the
        same, one with the client in use for a server whose organizations alone changed, a new
        client's otherwise. A client that cannot be made is a `CLIError`; the new
        clients made before it are closed by `aclose`, and none of them is in use."""
        from ._sweeps import ServerSpec

        specs: list[ServerSpec] = []
        live: dict[str, tuple[_Source, ServerSpec]] = {}
        for target, tls, password in loaded:
            source = _Source(target, password, _stamp(target.ca_bundle))
            kept = self._live.get(target.label)
            if kept is not None and kept[0] == source:
                spec = kept[1]
            elif kept is not None and kept[0].same_client(source):
                spec = ServerSpec(
                    name=target.label, client=kept[1].client, organizations=target.organizations
                )
            else:
                client = target.connection().client(
                    password, verify=tls, max_concurrency=target.max_concurrency, within=self.within
                )
                self._clients[id(client)] = client
                spec = ServerSpec(name=target.label, client=client, organizations=target.organizations)
            live[target.label] = (source, spec)
            specs.append(spec)
        self._live = live
        return specs

    async def reload(self, exporter: Exporter) -> bool:
        """Load the targets file again and have ``exporter`` sweep its servers (see the module
        docstring); whether it could be loaded."""
        from ._exporter import _off_loop

        try:
            loaded = await _off_loop(load, self.path, self.passwords)
            previous = self._live
            specs = self.build(loaded)
        except CLIError as exc:
            exporter.stats.config_ok = False
            for line in exc.lines:
                log.error("%s", line)
            log.error("reloading %s failed: the servers of its last good version are still swept", self.path)
            self._retire(exporter, [])  # the clients made before the failure
            return False
        at_once = turns([target.max_concurrency for target, _, _ in loaded])
        retired = await exporter.reconfigure(specs, at_once=at_once)
        exporter.stats.config_ok = True
        exporter.stats.config_loaded = time.time()
        self._retire(exporter, retired)
        added = sum(name not in previous for name in self._live)
        removed = sum(name not in self._live for name in previous)
        changed = len(retired) - removed
        with contextlib.suppress(CLIError):  # stdout gone: the metrics say it all the same
            write_banner(
                f"Reloaded {self.path}: serving the metrics of {plural(len(specs), 'server')} "
                f"({added} added, {removed} removed, {changed} changed)"
            )
        return True

    def _retire(self, exporter: Exporter, retired: Sequence[ServerSpec]) -> None:
        """Close, in the background, every client no server uses any more, once the sweeps in
        progress of the ``retired`` specs have ended (`_close_unused`)."""
        task = asyncio.get_running_loop().create_task(
            self._close_unused(exporter, retired), name="vbo_async.serve retired clients"
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_unused(self, exporter: Exporter, retired: Sequence[ServerSpec]) -> None:
        """Once no sweep uses the ``retired`` specs, close every client neither a server nor a
        sweep in progress uses (a spec retired by a later reload still sweeping: that reload's
        close takes it), logged out within `LOGOUTS_WITHIN` seconds. A client leaves the open
        ones only once closed: a close cut short by `aclose` leaves it to that."""
        await exporter.released(retired)
        async with self._one_close:
            used = {id(spec.client) for _, spec in self._live.values()} | exporter.in_use()
            unused = [client for key, client in self._clients.items() if key not in used]
            await _close(unused, self.turns, within=LOGOUTS_WITHIN)
            for client in unused:
                self._clients.pop(id(client), None)

    async def aclose(self, *, within: float = LOGOUTS_WITHIN, abandon: asyncio.Event | None = None) -> None:
        """Close every client, logging them out in `turns` within ``within`` seconds in all, or
        until ``abandon`` is set (a second SIGTERM or SIGINT): the clients not logged out by then
        are closed without it, and a warning says how many. The background closes of a reload's
        retired clients are stopped first; their clients not closed yet are closed here."""
        closing = list(self._closing)
        for task in closing:
            task.cancel()
        await asyncio.gather(*closing, return_exceptions=True)
        clients, self._clients = list(self._clients.values()), {}
        await _close(clients, self.turns, within=within, abandon=abandon)


async def _close(
    clients: Sequence[VBOClient],
    turns: Turns,
    *,
    within: float | None = None,
    abandon: asyncio.Event | None = None,
) -> None:
    """`close_in_turns`, with a warning for the clients closed without their logout."""
    left = await close_in_turns(clients, turns, within=within, abandon=abandon)
    if left:
        log.warning(
            "%s closed without waiting for %s logout (%s): %s on the server until %s",
            plural(left, "client"),
            "its" if left == 1 else "their",
            "stopped again" if abandon is not None and abandon.is_set() else f"{within:g} s passed",
            "its token stays valid" if left == 1 else "their tokens stay valid",
            "it expires" if left == 1 else "they expire",
        )
