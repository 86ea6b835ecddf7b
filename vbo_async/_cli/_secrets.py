"""The password of each server of a targets file: its ``password_env`` variable or its ``password_file``.

A password file is read as a secret must be: a regular file only (a directory, a named pipe,
``/dev/zero`` or a socket is refused before a byte is read, and nothing waits for a writer), at
most `MAX_PASSWORD_BYTES` of it, one trailing line break left out; an empty one is refused. A
problem is a `CLIError` naming the targets file, the server and the password file's path, never
what the file holds; a value that may be the password itself, written there by mistake, is never
said back: a path that names no file only when it looks like one (`file_said`), a variable's name
only when written as one (`_connect.variable_said`). A file that any user of the machine may
read (mode ``o+r``) is warned about once per path (`Passwords.warned`): a group-readable one is
not, since a monitoring system's group (``root:nagios``, mode 0640) is how such files are
commonly shared.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

import attrs

from .._files import not_a_file, open_flags
from ._connect import no_password, password_in, read_password, reads_as_path, without_line_break
from ._exit import CLIError
from ._targets import ServerTarget, TargetsFile

__all__ = ["MAX_PASSWORD_BYTES", "Passwords", "file_said", "read_password_file"]

log = logging.getLogger("vbo_async.cli")

MAX_PASSWORD_BYTES = 64 * 1024
"""The most bytes of a password file read (64 KiB): a longer file is refused, not read whole."""


def read_password_file(path: str, *, name: str | None = None) -> tuple[str, int]:
    """The password in the file at ``path`` and the file's permission bits; a file that cannot
    be one is a `CLIError` saying why, with the path and never the content. ``name`` is how a
    file that cannot be opened is named instead of its path (`file_said`); a file opened is
    one, and is named by its path."""
    descriptor = _opened(path, name)
    try:
        mode = os.fstat(descriptor).st_mode
        if (kind := not_a_file(mode)) is not None:
            raise CLIError(f"{path}: a {kind}, not a file")
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            raw = file.read(MAX_PASSWORD_BYTES + 1)
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(descriptor)
    if len(raw) > MAX_PASSWORD_BYTES:
        raise CLIError(f"{path}: larger than {MAX_PASSWORD_BYTES >> 10} KiB, which no password file is")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CLIError(f"{path}: not UTF-8 text") from None
    password = without_line_break(text)
    if not password:
        raise CLIError(f"{path}: empty (the password file holds no password)")
    return password, stat.S_IMODE(mode)


def file_said(path: str, folder: Path) -> str:
    """How a message names the password file at ``path`` (resolved against ``folder``, the
    targets file's) that cannot be opened: its path when the value written has a folder in it
    (``/etc/vbo/east.pw``, ``secrets/east.pw``, ``credentials:NAME``) and only the characters
    of file names, as no password is written; else by the folder it was looked for in alone.
    A password written into ``password_file`` by mistake names no file, and was said back in
    ``cannot read /etc/vbo/Summer2024``."""
    within = str(folder) + os.sep
    written = path.removeprefix(within) if path.startswith(within) else path
    if reads_as_path(written):
        return path
    if os.sep in written or (os.altsep is not None and os.altsep in written):
        # Its own folder (absolute, or relative to the targets file's): not said either, as a
        # password may hold a slash, and not the targets file's folder, which it is not in.
        return "the file it names (not said: what is written there may be the password itself)"
    return f"the file it names in {folder} (not said: a name without a folder may be the password itself)"


def _opened(path: str, name: str | None) -> int:
    """The password file at ``path`` opened (`read_password_file`), else its `CLIError`,
    raised outside the handler of ``os.open``'s error: as the error's context, that one would
    keep the path (its ``filename``) whatever ``name`` hides."""
    try:
        # Read-only, never waiting (a named pipe), never taking a terminal.
        return os.open(path, open_flags("O_RDONLY", "O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC", "O_BINARY"))
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket
            problem = f"{path}: a socket, not a file"
        else:
            problem = f"cannot read {name or path}: {exc.strerror or exc.__class__.__name__}"
    raise CLIError(problem)


@attrs.define
class Passwords:
    """Reads the passwords of a targets file's servers, as often as it is read (``serve``
    reloads it): ``prompt`` lets a variable that is unset be prompted for (at start, with a
    terminal), the passwords of variables are kept in ``given`` and given again at a reload,
    which cannot prompt, and ``warned`` holds the paths already warned about (mode ``o+r``)."""

    prompt: bool = True
    given: dict[str, str] = attrs.field(factory=dict, repr=False)
    warned: set[str] = attrs.field(factory=set)
    prompted: bool = False
    """Whether a password was asked for at a prompt (a command's time limit counts from then)."""

    def read(self, path: Path, targets: TargetsFile) -> list[str]:
        """The password of each server of ``targets`` (read from ``path``), in order; each
        variable and each file is read once. A problem is a `CLIError` naming its place."""
        passwords: list[str] = []
        files: dict[str, str] = {}
        variables: dict[str, str] = {}
        for index, target in enumerate(targets.servers):
            if target.password_file is not None:
                if target.password_file not in files:
                    files[target.password_file] = self._file(path, index, target)
                passwords.append(files[target.password_file])
            else:
                variable = target.password_env or ""
                if variable not in variables:
                    try:
                        variables[variable] = self._variable(variable, target)
                    except CLIError as exc:
                        raise CLIError(_placed(path, index, "password_env", exc, target)) from None
                passwords.append(variables[variable])
        return passwords

    def _file(self, path: Path, index: int, target: ServerTarget) -> str:
        assert target.password_file is not None
        try:
            password, mode = read_password_file(
                target.password_file, name=file_said(target.password_file, path.parent)
            )
        except CLIError as exc:
            raise CLIError(_placed(path, index, "password_file", exc, target)) from None
        if mode & stat.S_IROTH and os.name == "posix" and target.password_file not in self.warned:
            self.warned.add(target.password_file)
            log.warning(
                "the password file %s of %s can be read by any user (mode %04o): chmod o-r it",
                target.password_file,
                target.label,
                mode,
            )
        return password

    def _variable(self, variable: str, target: ServerTarget) -> str:
        if self.prompt:
            self.prompted = self.prompted or not password_in(os.environ, variable)
            prompt = f"Password for {target.label} ({target.username}): "
            password = self.given[variable] = read_password(variable, prompt, where="it")
            return password
        return _from_environment(variable, os.environ, self.given)


def _placed(path: Path, index: int, key: str, exc: CLIError, target: ServerTarget) -> str:
    """``exc``'s problem with the password of ``servers[index]``, said with its place:
    ``targets.toml: servers[0].password_env: no password: ... (server "east")``."""
    named = f' (server "{target.name}")' if target.name else ""
    return f"{path}: servers[{index}].{key}: {exc}{named}"


def _from_environment(variable: str, environ: Mapping[str, str], given: Mapping[str, str]) -> str:
    """The password in ``variable``, else the one read (or prompted for) before; no prompt."""
    value = password_in(environ, variable)
    if value:
        return value
    if variable in given:
        return given[variable]
    raise CLIError(no_password(variable, "it", empty=value == ""))
