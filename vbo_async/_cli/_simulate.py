"""``simulate`` and ``demo``: the simulator extra, fault flags derived from `Faults`, serving.

The fault flags of ``simulate`` are generated from the attrs fields of `Faults`: the name gives
``--kebab-case``, the annotation the type, the field's default the default, and the help comes
from the field's ``metadata["help"]``, else from `FAULT_HELP` below. A field added to `Faults`
is a flag at once, with no change here.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
import sys
import tempfile
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import click

from .._exceptions import ConfigError
from ._connect import is_terminal
from ._exit import CLIError, Outcome, simulator_extra, write_banner

__all__ = ["FAULT_HELP", "fault_options", "faults_from", "serve_simulator"]

FAULT_HELP: Mapping[str, str] = {
    "latency": "Seconds of delay added to every request.",
    "latency_spike_rate": "Share of requests (0-1) delayed by a further --latency-spike.",
    "latency_spike": "Seconds of the extra delay of a latency spike.",
    "error_rate": "Share of requests (0-1) answered 500, 502 or 503.",
    "rate_limit_rate": "Share of requests (0-1) answered 429 with Retry-After.",
    "retry_after": "Retry-After seconds of those 429 answers.",
    "drop_rate": "Share of requests (0-1) whose connection is dropped mid-body.",
    "truncate_rate": "Share of requests (0-1) whose body is cut short of its Content-Length.",
    "malformed_rate": "Share of requests (0-1) answered 200 with a body that is not JSON.",
    "revoke_every": "Revoke every access token each N seconds.",
    "fault_seed": "Seed of the random draws deciding which requests get a fault.",
    "token_throttle": (
        "Answer 429 to token requests of one user beyond one a second, 5 a minute or 1,500 an "
        "hour, with the Retry-After of the window that refused them, as v6+ servers do."
    ),
}
"""Help for the `Faults` fields that carry no ``metadata["help"]`` of their own. The five
outcome shares (error, rate limit, drop, truncate, malformed) must not add up to more than 1."""

_CLICK_TYPES: Mapping[type, Any] = {float: click.FLOAT, int: click.INT, str: click.STRING}


def fault_options(cls: type[Any], *, reserved: frozenset[str] = frozenset()) -> list[click.Option]:
    """One click option per attrs field of ``cls`` (`Faults`), in field order.

    ``reserved`` are parameter names taken by the command's other options: a field named like
    one of them is a programming error, raised here rather than silently shadowed.
    """
    hints = typing.get_type_hints(cls)
    options = []
    for field in attrs.fields(cls):
        if field.name in reserved:
            raise TypeError(f"{cls.__name__}.{field.name} clashes with an option of the command")
        kind, optional = _unwrap_optional(hints[field.name])
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        text = field.metadata.get("help") or FAULT_HELP.get(field.name) or f"{cls.__name__}.{field.name}."
        flag = "--" + field.name.replace("_", "-")
        if kind is bool and not optional:
            options.append(click.Option([f"{flag}/--no-{flag[2:]}", field.name], default=default, help=text))
            continue
        if kind not in _CLICK_TYPES:
            raise TypeError(f"{cls.__name__}.{field.name}: no command-line type for {hints[field.name]!r}")
        options.append(
            click.Option(
                [flag, field.name],
                type=_CLICK_TYPES[kind],
                default=default,
                show_default=True if default is not None else "off",
                help=text,
            )
        )
    return options


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, else ``(annotation, False)``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        if len(members) == 1:
            return members[0], True
    return annotation, False


def as_option(message: str, fields: Iterable[str]) -> str:
    """A configuration error of the simulator as the command line says it: the field it opens
    with (one of ``fields``, the configuration's, the options' names) as its option
    (``api_versions must ...`` -> ``--api-versions must ...``), or the fields of its opening
    ``the sum of`` list (``the sum of error_rate, drop_rate`` -> ``the sum of --error-rate,
    --drop-rate``). The rest is left as it is: it quotes the user's own value, which may be
    spelt like a field (``--api-versions seed``: ``'seed' is not one of ...``)."""
    names = "|".join(sorted(map(re.escape, fields), key=len, reverse=True))
    if not names:
        return message
    name = rf"(?:{names})(?![\w-])"
    opening = re.match(rf"the sum of {name}(?:, {name})*|{name}", message)
    if opening is None:
        return message
    options = re.sub(name, lambda m: "--" + m[0].replace("_", "-"), opening[0])
    return options + message[opening.end() :]


def faults_from(cls: type[Any], values: dict[str, Any]) -> Any:
    """Build ``cls`` (`Faults`) from the parsed options, taking its fields out of ``values``."""
    return cls(**{field.name: values.pop(field.name) for field in attrs.fields(cls)})


# --- serving ------------------------------------------------------------------------------------


def serve_simulator(
    *,
    host: str,
    port: int,
    tls: bool,
    seed: int,
    organizations: int,
    faults: dict[str, Any],
    api_versions: tuple[str, ...] = ("v1", "v6", "v7", "v8"),
    token_lifetime: float = 3600.0,
    refresh_token_lifetime: float | None = None,
    run_schedules: bool = False,
) -> Outcome:
    """Serve a simulator on ``host``:``port`` until Ctrl-C or SIGTERM (``run_schedules``:
    its jobs run on their schedules, `SimulatorConfig.run_schedules`)."""
    with simulator_extra("simulate"):
        import uvicorn

        from ..simulator import Faults, SimulatorConfig, create_app, make_tls_material
        from ..simulator._faults import is_simulated_disconnect

    try:
        config = SimulatorConfig(
            seed=seed,
            organizations=organizations,
            api_versions=api_versions,
            token_lifetime=token_lifetime,
            refresh_token_lifetime=refresh_token_lifetime,
            run_schedules=run_schedules,
            faults=faults_from(Faults, faults),
        )
    except ConfigError as exc:
        from ..simulator import _config  # the classes themselves (the names may be wrapped)

        fields = [
            field.name for cls in (_config.SimulatorConfig, _config.Faults) for field in attrs.fields(cls)
        ]
        raise ConfigError(as_option(str(exc), fields)) from None
    scheme = "https" if tls else "http"
    options: dict[str, Any] = {}
    # Listening before "Serving" is printed: a client that connects as soon as it reads the line
    # is queued by the kernel instead of refused, and a busy port is one error line, not a lie.
    sock = _listen(host, port)
    # The TLS key is removed when the simulator stops; uvicorn re-raises SIGTERM after shutting
    # down, so it is turned into SystemExit here to let the cleanup below run.
    previous = signal.signal(signal.SIGTERM, _exit_quietly)
    folder = tempfile.TemporaryDirectory(prefix="vbo-async-sim-")
    try:
        # v1 hrefs are absolute: they name the URL served (the port chosen), so scripts following
        # them come back here.
        served = f"{scheme}://{_link_host(host)}:{sock.getsockname()[1]}"
        app = create_app(attrs.evolve(config, link_origin=served))
        if tls:
            cert, key, ca = make_tls_material(folder.name, hosts=_certificate_hosts(host))
            options = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
            write_banner(f"CA bundle (pass as verify= or --ca-bundle): {ca}")
        # The URL printed is the links' (localhost for every address): one the certificate names.
        versions = ", ".join(config.api_versions)
        write_banner(
            f"Serving the VB365 simulator at {served} "
            f"(API {versions}; user {config.username!r}, password {config.password!r}; Ctrl-C stops)"
        )
        # Ctrl-C stops at once: requests still waiting out a --latency are cancelled instead of
        # waited for (uvicorn's graceful shutdown waits for them without limit by default).
        # Colours decided here: uvicorn asks sys.stdout, which is None when stdout is closed (>&-).
        # No lifespan: the app has no startup or shutdown work, and a second Ctrl-C cancelled
        # Starlette's lifespan task waiting for the shutdown message, a traceback on stderr.
        colours = is_terminal(sys.stdout)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_level="warning",
                lifespan="off",
                timeout_graceful_shutdown=STOP_WITHIN,
                use_colors=colours,
                **options,
            )
        )
        # A dropped or truncated answer is a fault asked for, not an error of the app to report
        # with its traceback, nor is cancelling requests to stop (the filter is added after
        # uvicorn.Config set up its loggers).
        errors = logging.getLogger("uvicorn.error")
        quiet = _Unless(lambda record: is_simulated_disconnect(record) or _is_stop_cancelling(record))
        errors.addFilter(quiet)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn stops gracefully on Ctrl-C, then re-raises it
            return Outcome.OK
        finally:
            errors.removeFilter(quiet)
        if not server.started:
            raise CLIError(
                "the simulator could not start (see the messages above)", outcome=Outcome.UNREADABLE
            )
        return Outcome.OK
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
        folder.cleanup()


STOP_WITHIN = 1
"""Seconds the simulator waits, once told to stop, for the answers it is still sending."""


def _is_stop_cancelling(record: logging.LogRecord) -> bool:
    """uvicorn's records of cancelling the requests still running when `STOP_WITHIN` is over:
    that it does, and each request's `asyncio.CancelledError` (uvicorn cancels nothing else)."""
    if record.exc_info is not None and isinstance(record.exc_info[1], asyncio.CancelledError):
        return True
    return record.msg == "Cancel %s running task(s), timeout graceful shutdown exceeded"


class _Unless(logging.Filter):
    """A log filter leaving out the records `skip` recognises."""

    def __init__(self, skip: Callable[[logging.LogRecord], bool]) -> None:
        super().__init__()
        self.skip = skip

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.skip(record)


_EVERY_ADDRESS = ("", "0.0.0.0", "::")
"""``--host`` values listening on every interface: no name of the machine."""


def _link_host(host: str) -> str:
    """The host v1 hrefs and the "Serving" line name for a simulator listening on `host`:
    ``localhost`` for every address (``0.0.0.0``, ``::``, none), which the ``--tls``
    certificate covers too (an address of every interface is no address to connect to)."""
    if host in _EVERY_ADDRESS:
        return "localhost"
    return f"[{host}]" if ":" in host else host


def _certificate_hosts(host: str) -> tuple[str, ...]:
    """What the ``--tls`` certificate names beside 127.0.0.1 and localhost: the host the
    simulator listens on, under which it prints its URL (none for every address)."""
    return () if host in _EVERY_ADDRESS else (host,)


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host``:``port``; a failure is a `CLIError`."""
    try:
        # proto is IPPROTO_TCP here; asyncio sets TCP_NODELAY on accepted connections only then
        # (a bare socket.socket() has proto 0, and every answer then waits ~40 ms for delayed ACKs).
        family, kind, proto, _, address = socket.getaddrinfo(
            host or "0.0.0.0",
            port,
            type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE,  # "": every IPv4 one
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise CLIError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", outcome=Outcome.UNREADABLE
        ) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise CLIError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", outcome=Outcome.UNREADABLE
        ) from None
    return sock
