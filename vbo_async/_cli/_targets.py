"""The targets file of ``vbo-async poll``: TOML read into attrs classes by a cattrs converter.

Unknown keys are refused (a misspelt ``cabundle =`` would otherwise be ignored and surface later
as a TLS failure), values must have their TOML type (``insecure = "false"`` is refused, not read
as true), and every problem is reported as one line with its TOML path, from
`cattrs.transform_error`::

    targets.toml: servers[1].cabundle: extra field (server "west")

``servers[0]`` is the first ``[[servers]]`` table. A password is never accepted in the file:
each server names where it is, an environment variable (``password_env``) or a file of its own
(``password_file``, read by `vbo_async._cli._secrets`).
"""

from __future__ import annotations

import errno
import os
import re
import ssl
import stat
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
import httpx
from cattrs.errors import AttributeValidationNote, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, override

from .._checks import organization_key
from .._client import API_VERSIONS
from .._files import not_a_file, open_flags
from ._connect import (
    NOT_A_VARIABLE,
    Connection,
    SharedContexts,
    is_variable_name,
    reads_as_path,
    said_of,
    split_version,
    unknown_version,
    url_problem,
    variable_shown,
)
from ._exit import CLIError

__all__ = [
    "CREDENTIALS_PREFIX",
    "CREDENTIALS_VARIABLE",
    "MAX_TARGETS_BYTES",
    "ServerTarget",
    "TargetsFile",
    "make_converter",
    "read_targets",
    "tls_contexts",
]

MAX_TARGETS_BYTES = 16 * 1024 * 1024
"""The most bytes of a targets file read (16 MiB, some 50,000 servers): a wrong file of
gigabytes is refused after that, not read into memory whole (and what is no regular file, such
as ``/dev/zero``, before a byte is read)."""

CREDENTIALS_VARIABLE = "CREDENTIALS_DIRECTORY"
"""Where systemd puts a service's credentials (``LoadCredential=``, ``SetCredential=``...)."""
CREDENTIALS_PREFIX = "credentials:"
"""``password_file = "credentials:NAME"``: the credential ``NAME`` of `CREDENTIALS_VARIABLE`."""

Organizations = Literal["all"] | tuple[str, ...]


def path_shown(path: str | None) -> str:
    """The repr of a ``password_file`` value in a repr: the path when it has a folder in it or is
    a credential's (`CREDENTIALS_PREFIX`) and is made of the characters of file names alone (as
    messages say it), else ``'***'``: a password written there by mistake is not shown."""
    if path is None:
        return repr(path)
    named = path.removeprefix(CREDENTIALS_PREFIX)
    if reads_as_path(named, folder=named == path):  # a credential's name has no folder
        return repr(path)
    return "'***'"


@attrs.frozen(kw_only=True)
class ServerTarget:
    """One ``[[servers]]`` table: a VBO server and the organizations to poll on it.

    - ``url`` (required): the server's base URL, ``https://vbo01.example.com:4443``. A trailing
      ``/v1`` … ``/v8`` (as ``vbo-async simulate`` prints it) is taken off and used as the API
      version unless ``api_version`` is given.
    - ``username`` (required): the account, e.g. ``"LAB\\\\svc-backup"`` (TOML escapes ``\\``).
    - ``password_env``: the environment variable holding the password; it is prompted for when
      the variable is unset and a terminal is attached. A ``password`` key is refused.
    - ``password_file``: instead of ``password_env``, a file holding the password (one trailing
      line break is not part of it), relative to the targets file's folder;
      ``"credentials:NAME"`` is the file ``NAME`` of ``$CREDENTIALS_DIRECTORY``, where systemd's
      ``LoadCredential=NAME:/path`` puts it. Exactly one of the two is given.
    - ``name``: how reports name the server (default: its URL); names must be unique.
    - ``organizations``: ``"all"`` (default), or a list of organization ids or names (names
      match case-insensitively and must be unambiguous on the server).
    - ``ca_bundle``: a CA bundle (file or directory) to verify the server's certificate with,
      relative to the targets file's folder; default: the system's CAs.
    - ``insecure``: ``true`` turns certificate verification off (a boolean, unquoted; default
      ``false``); not together with ``ca_bundle``.
    - ``api_version``: ``"auto"`` (the default, `DEFAULT_API_VERSION`: the newest version the
      server serves), ``"v8"``, ``"v7"``, ``"v6"`` or ``"v1"``; or the URL's ``/vN``.
    - ``max_concurrency``: requests in flight on this server, a positive integer (default 10).
    """

    url: str
    username: str
    password_env: str | None = attrs.field(default=None, repr=variable_shown)
    password_file: str | None = attrs.field(default=None, repr=path_shown)
    """The password file's path: a relative one joined to the targets file's folder, and
    ``credentials:NAME`` to ``$CREDENTIALS_DIRECTORY``."""
    name: str | None = None
    organizations: Organizations = "all"
    ca_bundle: str | None = None
    insecure: bool = False
    api_version: str | None = None
    max_concurrency: int = 10

    @property
    def label(self) -> str:
        """``name``, or the URL when the table names none."""
        return self.name if self.name is not None else self.url

    def connection(self) -> Connection:
        return Connection.build(
            self.url,
            api_version=self.api_version,
            username=self.username,
            password_env=self.password_env or "",
            ca_bundle=self.ca_bundle,
            insecure=self.insecure,
            label=self.label,
            source="targets",
        )


@attrs.frozen(kw_only=True)
class TargetsFile:
    """A whole targets file: one or more ``[[servers]]`` tables, and no other key."""

    servers: tuple[ServerTarget, ...]


# --- reading ------------------------------------------------------------------------------------


def read_targets(path: Path) -> TargetsFile:
    """Read and check the targets file at ``path``; every problem is a line of one `CLIError`.
    ``password_file = "credentials:NAME"`` is resolved against ``$CREDENTIALS_DIRECTORY`` as
    it is now."""
    raw = _read_file(path, MAX_TARGETS_BYTES + 1)
    if len(raw) > MAX_TARGETS_BYTES:
        raise CLIError(f"{path}: larger than {MAX_TARGETS_BYTES >> 20} MiB, which no targets file is")
    try:
        text = raw.decode("utf-8-sig")  # a byte order mark (PowerShell 5.1) is not TOML
    except UnicodeDecodeError:
        raise CLIError(f"{path}: not UTF-8 text") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # as a file read as text reads them
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise CLIError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    except ValueError as exc:  # TOMLDecodeError, or int()'s refusal of an integer of 4,300+ digits
        why = str(exc).partition("; use sys.set_int_max_str_digits()")[0]
        raise CLIError(f"{path}: not valid TOML: {why}") from None
    try:
        converter = make_converter(path.parent, credentials=os.environ.get(CREDENTIALS_VARIABLE))
        return converter.structure(data, TargetsFile)
    except (cattrs.ClassValidationError, cattrs.IterableValidationError) as exc:
        raise CLIError(*(f"{path}: {line}" for line in describe(exc, data))) from None


def _read_file(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of the regular file or pipe at ``path`` (``--targets
    /dev/stdin``, a shell's ``<(...)``). Anything else is a `CLIError` saying what it is, found
    before a byte is read: opened without blocking (a named pipe with no writer held the command
    for good) and checked once open (`not_a_file`), so that what is read is what was checked. A
    pipe is then read as it is written, to its end: one that no process holds open for writing
    ends at once, and is refused as empty."""
    try:
        descriptor = os.open(path, open_flags("O_RDONLY", "O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC", "O_BINARY"))
    except OSError as exc:
        if exc.errno == errno.ENXIO and (kind := _kind_at(path)) is not None:  # a socket
            raise CLIError(f"{path}: a {kind}, not a file") from None
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        piped = stat.S_ISFIFO(mode)
        if not piped and (kind := not_a_file(mode)) is not None:
            raise CLIError(f"{path}: a {kind}, not a file")
        if piped:
            os.set_blocking(descriptor, True)  # wait for what its writer writes, to its end
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            raw = file.read(limit)
        if piped and not raw:
            raise CLIError(f"{path}: a named pipe with nothing written to it (no process writing)")
        return raw
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(descriptor)


def _kind_at(path: Path) -> str | None:
    try:
        return not_a_file(os.stat(path).st_mode)
    except OSError:
        return None


def tls_contexts(path: Path, targets: TargetsFile) -> list[ssl.SSLContext | Literal[False]]:
    """What each server of ``targets`` (read from ``path``) verifies certificates with: one
    context per CA bundle, shared by the servers using it (`SharedContexts`), or False for
    ``insecure``. A bundle that exists but cannot be loaded (not PEM: a DER ``.cer``) is a
    `CLIError` naming its place in the file, as `read_targets` names the problems it finds."""
    contexts = SharedContexts()
    verify: list[ssl.SSLContext | Literal[False]] = []
    for index, target in enumerate(targets.servers):
        try:
            verify.append(contexts.verify(target.connection().verify))
        except CLIError as exc:
            if target.ca_bundle is None:
                raise
            named = f' (server "{target.name}")' if target.name else ""
            raise CLIError(f"{path}: servers[{index}].ca_bundle: {exc}{named}") from None
    return verify


class _Invalid(ValueError):
    """A value of the wrong kind; its message is what the user reads after the TOML path."""


def make_converter(folder: Path, *, credentials: str | None = None) -> cattrs.Converter:
    """A converter for `TargetsFile`: strict TOML types, unknown keys refused, relative
    ``ca_bundle`` and ``password_file`` paths resolved against ``folder`` (the targets file's),
    ``password_file = "credentials:NAME"`` against ``credentials`` (the value of
    ``$CREDENTIALS_DIRECTORY``; None when it is unset)."""
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(str, _string)
    converter.register_structure_hook(bool, _boolean)
    converter.register_structure_hook(int, _integer)
    server = make_dict_structure_fn(
        ServerTarget,
        converter,
        url=override(struct_hook=_url),
        organizations=override(struct_hook=_organizations),
        ca_bundle=override(struct_hook=_ca_bundle(folder)),
        api_version=override(struct_hook=_api_version),
        password_env=override(struct_hook=_variable),
        password_file=override(struct_hook=_password_file(folder, credentials)),
        max_concurrency=override(struct_hook=_positive),
    )

    def structure_server(value: Any, _: Any) -> ServerTarget:
        _table(value)
        if "password_env" not in value and "password_file" not in value:
            missing = _Invalid("required key missing (or password_file)")
            missing.__notes__ = [AttributeValidationNote("password_env", "password_env", str)]
            try:
                server(value, ServerTarget)
            except cattrs.ClassValidationError as exc:
                raise cattrs.ClassValidationError(exc.message, [*exc.exceptions, missing], exc.cl) from None
            raise cattrs.ClassValidationError("while structuring ServerTarget", [missing], ServerTarget)
        target = server(value, ServerTarget)
        if target.password_env is not None and target.password_file is not None:
            raise _Invalid("password_env and password_file exclude each other: give one")
        if target.insecure and target.ca_bundle is not None:
            raise _Invalid("ca_bundle and insecure = true exclude each other")
        return target

    converter.register_structure_hook(ServerTarget, structure_server)
    whole = make_dict_structure_fn(TargetsFile, converter, servers=override(struct_hook=_servers(converter)))

    def structure_file(value: Any, _: Any) -> TargetsFile:
        return whole(value, TargetsFile)

    converter.register_structure_hook(TargetsFile, structure_file)
    return converter


def _servers(converter: cattrs.Converter) -> Callable[[Any, Any], tuple[ServerTarget, ...]]:
    def structure(value: Any, _: Any) -> tuple[ServerTarget, ...]:
        if not isinstance(value, list) or not value:
            raise _Invalid("expected one or more [[servers]] tables")
        servers = converter.structure(value, tuple[ServerTarget, ...])
        labels: dict[str, int] = {}
        first: dict[object, int] = {}
        for index, target in enumerate(servers):
            earlier = labels.setdefault(target.label, index)
            if earlier != index:
                raise _Invalid(f'servers[{earlier}] and servers[{index}] are both named "{target.label}"')
            earlier = first.setdefault(_identity(target), index)
            if earlier == index:
                continue
            raise _Invalid(
                f"servers[{earlier}] and servers[{index}] are both named by the url of one server, written "
                f'two ways ("{servers[earlier].label}", "{target.label}"): each would be polled, and '
                "counted, twice (give them names if that is meant)"
            )
        return servers

    return structure


def _identity(target: ServerTarget) -> object:
    """What names a table in reports: its ``name``, else its url as the client reads it (scheme
    and host in any case, a trailing ``/`` or ``/vN`` left out), so that one server written two
    ways without names is not polled, and counted, twice under two labels."""
    if target.name is not None:
        return ("name", target.name)
    base, _ = split_version(target.url)
    try:
        url = httpx.URL(base.strip())
    except (httpx.InvalidURL, TypeError):
        return ("url", base)
    return ("url", url.scheme, url.host, url.port, url.path.rstrip("/"))


# --- strict scalar hooks (TOML has real types: a quoted "false" is a string, not false) ----------


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array"}
    return names.get(type(value), "a table" if isinstance(value, Mapping) else "a date or time")


def _string(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_kind(value)}")
    if not value.strip():
        raise _Invalid("expected a non-empty string")
    return value


def _boolean(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false (unquoted), got {_kind(value)}")
    return value


def _integer(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"expected an integer, got {_kind(value)}")
    return value


def _positive(value: Any, _: Any) -> int:
    number = _integer(value, int)
    if number < 1:
        raise _Invalid(f"expected a positive integer, got {number}")
    return number


def _table(value: Any) -> None:
    if not isinstance(value, Mapping):
        raise _Invalid(f"expected a [[servers]] table, got {_kind(value)}")


def _url(value: Any, _: Any) -> str:
    url = _string(value, str)
    if (unknown := unknown_version(url)) is not None:
        raise _Invalid(unknown)
    if (problem := url_problem(url, source="targets")) is not None:
        raise _Invalid(said_of("the URL", problem))
    return url


def _variable(value: Any, _: Any) -> str:
    name = _string(value, str)
    if not is_variable_name(name):
        raise _Invalid(f"expected {NOT_A_VARIABLE}")
    return name


def _api_version(value: Any, _: Any) -> str:
    version = _string(value, str)
    if version not in API_VERSIONS:
        raise _Invalid(f"expected one of {', '.join(API_VERSIONS)}")
    return version


def _organizations(value: Any, _: Any) -> Organizations:
    if value == "all":
        return "all"
    if isinstance(value, list) and value and all(isinstance(entry, str) and entry.strip() for entry in value):
        kept: dict[str, str] = {}
        for entry in value:  # ids and names are matched ignoring case: one tenant, however written
            kept.setdefault(organization_key(entry), entry.strip())
        return tuple(kept.values())
    raise _Invalid('expected "all" or a non-empty array of organization ids or names (strings)')


def _ca_bundle(folder: Path) -> Callable[[Any, Any], str]:
    def structure(value: Any, _: Any) -> str:
        path = folder / Path(_string(value, str)).expanduser()
        if not path.exists():
            raise _Invalid(f"no such file or directory: {path}")
        return str(path)

    return structure


def _password_file(folder: Path, credentials: str | None) -> Callable[[Any, Any], str]:
    def structure(value: Any, _: Any) -> str:
        text = _string(value, str)
        if not text.startswith(CREDENTIALS_PREFIX):
            return str(folder / Path(text).expanduser())
        name = text.removeprefix(CREDENTIALS_PREFIX)
        if not name or "/" in name or "\\" in name or name in {".", ".."}:
            raise _Invalid(f"expected {CREDENTIALS_PREFIX}NAME, NAME a credential's name (no /)")
        if not credentials:
            raise _Invalid(
                f"{text} needs ${CREDENTIALS_VARIABLE}, which is unset: systemd sets it for a "
                f"service with LoadCredential={name}:/path/to/file"
            )
        return str(Path(credentials) / name)

    return structure


# --- error messages -----------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def describe(exc: BaseException, data: Any) -> list[str]:
    """One ``path: problem`` line per problem in ``exc`` (from `cattrs.transform_error`), with
    the server's name added to the lines about a named ``[[servers]]`` table."""
    extras: list[list[str]] = []

    def message(error: BaseException, kind: Any) -> str:
        if isinstance(error, ForbiddenExtraKeysError):
            extras.append(sorted(error.extra_fields))
            return f"\0{len(extras) - 1}"
        if isinstance(error, _Invalid):
            return str(error)
        if isinstance(error, KeyError):
            return "required key missing"
        return cattrs.v.format_exception(error, kind)

    lines = []
    for line in cattrs.transform_error(exc, path="$", format_exception=message):
        text, _, path = line.rpartition(" @ ")
        place = path.removeprefix("$").removeprefix(".")
        if text.startswith("\0"):
            for key in extras[int(text[1:])]:
                lines.append(_line(_join(place, key), _extra(key), data))
        else:
            lines.append(_line(place, text, data))
    return lines


def _extra(key: str) -> str:
    if key.lower() == "password":
        return (
            "not accepted: put the password in the environment variable named by password_env, "
            "or in the file named by password_file"
        )
    return "extra field"


def _join(place: str, key: str) -> str:
    name = key if _BARE_KEY.match(key) else '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{place}.{name}" if place else name


_SERVER_INDEX = re.compile(r"^servers\[(\d+)\]")


def _line(place: str, text: str, data: Any) -> str:
    line = f"{place}: {text}" if place else text
    match = _SERVER_INDEX.match(place)
    if match and isinstance(data, Mapping) and isinstance(data.get("servers"), list):
        servers = data["servers"]
        index = int(match[1])
        if index < len(servers) and isinstance(servers[index], Mapping):
            name = servers[index].get("name")
            if isinstance(name, str) and name:
                line += f' (server "{name}")'
    return line
