"""``password_file`` in a targets file: resolved against the file's folder or systemd's
``$CREDENTIALS_DIRECTORY``, read bounded and only from a regular file, its content never said."""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vbo_async._cli._connect import Connection
from vbo_async._cli._exit import CLIError
from vbo_async._cli._secrets import MAX_PASSWORD_BYTES, Passwords, read_password_file
from vbo_async._cli._targets import ServerTarget, TargetsFile, read_targets
from vbo_async.simulator import create_app

from .conftest import serve
from .test_cli import run, run_in_thread, small_config

SECRET = "Pa55-in-a-file-Qx7"
TABLE = '[[servers]]\nname = "east"\nurl = "http://127.0.0.1:1"\nusername = "admin"\n'


def targets_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(CLIError) as info:
        read_targets(path)
    return [line.removeprefix(f"{path}: ") for line in info.value.lines]


def password_of(path: Path) -> str:
    targets = read_targets(path)
    (password,) = Passwords(prompt=False).read(path, targets)
    return password


def reading_problem(path: Path) -> str:
    with pytest.raises(CLIError) as info:
        Passwords(prompt=False).read(path, read_targets(path))
    (line,) = info.value.lines
    assert SECRET not in line
    return line


# --- where the file is --------------------------------------------------------------------------


def test_a_relative_password_file_is_read_from_the_targets_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "east.pw").write_text(SECRET + "\n", encoding="utf-8")
    path = targets_file(tmp_path, TABLE + 'password_file = "secrets/east.pw"\n')
    monkeypatch.chdir("/")
    (server,) = read_targets(path).servers
    assert server.password_file == str(tmp_path / "secrets" / "east.pw")
    assert server.password_env is None
    assert password_of(path) == SECRET


def test_credentials_name_is_a_file_of_systemds_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "run-credentials"
    credentials.mkdir()
    (credentials / "vbo-east").write_text(SECRET, encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    path = targets_file(tmp_path, TABLE + 'password_file = "credentials:vbo-east"\n')
    assert read_targets(path).servers[0].password_file == str(credentials / "vbo-east")
    assert password_of(path) == SECRET


@pytest.mark.parametrize(
    ("value", "directory", "expected"),
    [
        (
            "credentials:vbo",
            None,
            "servers[0].password_file: credentials:vbo needs $CREDENTIALS_DIRECTORY, which is unset: "
            'systemd sets it for a service with LoadCredential=vbo:/path/to/file (server "east")',
        ),
        (
            "credentials:../etc/shadow",
            "/run/credentials/x",
            "servers[0].password_file: expected credentials:NAME, NAME a credential's name (no /) "
            '(server "east")',
        ),
        (
            "credentials:",
            "/run/credentials/x",
            "servers[0].password_file: expected credentials:NAME, NAME a credential's name (no /) "
            '(server "east")',
        ),
        ("", None, 'servers[0].password_file: expected a non-empty string (server "east")'),
    ],
    ids=["no-directory", "a-path", "no-name", "empty"],
)
def test_a_password_file_that_names_nothing_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, directory: str | None, expected: str
) -> None:
    if directory is None:
        monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    else:
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", directory)
    assert problems(targets_file(tmp_path, TABLE + f'password_file = "{value}"\n')) == [expected]


def test_exactly_one_of_password_env_and_password_file(tmp_path: Path) -> None:
    both = targets_file(tmp_path, TABLE + 'password_env = "VBO_PASSWORD"\npassword_file = "pw"\n')
    assert problems(both) == [
        'servers[0]: password_env and password_file exclude each other: give one (server "east")'
    ]
    neither = targets_file(tmp_path, TABLE)
    assert problems(neither) == [
        'servers[0].password_env: required key missing (or password_file) (server "east")'
    ]


def test_a_password_key_is_refused_and_both_places_are_named(tmp_path: Path) -> None:
    path = targets_file(tmp_path, TABLE + f'password_file = "pw"\npassword = "{SECRET}"\n')
    assert problems(path) == [
        "servers[0].password: not accepted: put the password in the environment variable named by "
        'password_env, or in the file named by password_file (server "east")'
    ]


# --- reading it -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "password"),
    [
        (SECRET, SECRET),
        (SECRET + "\n", SECRET),
        (SECRET + "\r\n", SECRET),
        (SECRET + "\r", SECRET),
        (SECRET + "\n\n", SECRET + "\n"),
        (SECRET + "\r\r", SECRET + "\r"),
        (" " + SECRET + " \n", " " + SECRET + " "),
        ("\ufeff" + SECRET + "\n", SECRET),
    ],
    ids=[
        "bare",
        "newline",
        "crlf",
        "cr",
        "one-newline-only",
        "one-cr-only",
        "spaces-kept",
        "byte-order-mark",
    ],
)
def test_one_trailing_line_break_is_left_out(tmp_path: Path, content: str, password: str) -> None:
    (tmp_path / "pw").write_bytes(content.encode("utf-8"))
    assert password_of(targets_file(tmp_path, TABLE + 'password_file = "pw"\n')) == password


@settings(max_examples=50, deadline=None)
@given(password=st.text(st.characters(codec="utf-8"), min_size=1))
def test_any_password_written_with_a_line_break_reads_back(
    tmp_path_factory: pytest.TempPathFactory, password: str
) -> None:
    """Whatever the password, the file written as ``echo "$PASSWORD" > file`` writes it reads it
    back; a CR ending it is the CRLF's (as a Windows editor writes it), a BOM starting it the
    editor's."""
    assume(not password.startswith("\ufeff") and password.removesuffix("\r"))
    folder = tmp_path_factory.mktemp("pw")
    (folder / "pw").write_bytes((password + "\n").encode("utf-8"))
    read, _ = read_password_file(str(folder / "pw"))
    assert read == password.removesuffix("\r")


def test_a_missing_password_file_names_its_path(tmp_path: Path) -> None:
    """A path with a folder in it is said (a name alone is not: see
    `test_a_password_written_as_password_file_is_never_said`)."""
    path = targets_file(tmp_path, TABLE + 'password_file = "secrets/missing.pw"\n')
    assert reading_problem(path) == (
        f"{path}: servers[0].password_file: cannot read {tmp_path / 'secrets' / 'missing.pw'}: No such "
        'file or directory (server "east")'
    )
    path = targets_file(tmp_path, TABLE + 'password_file = "/etc/vbo-missing/east.pw"\n')
    assert "cannot read /etc/vbo-missing/east.pw: No such file" in reading_problem(path)


def test_an_empty_password_file_is_refused(tmp_path: Path) -> None:
    for content in (b"", b"\n", b"\r\n", b"\r"):
        (tmp_path / "pw").write_bytes(content)
        path = targets_file(tmp_path, TABLE + 'password_file = "pw"\n')
        assert reading_problem(path) == (
            f"{path}: servers[0].password_file: {tmp_path / 'pw'}: empty (the password file holds no "
            'password) (server "east")'
        )


def test_a_password_file_is_read_to_a_bound_and_never_quoted(tmp_path: Path) -> None:
    """A file of a gigabyte (sparse: no disk used) is refused after 64 KiB, not read whole."""
    big = tmp_path / "big.pw"
    with big.open("wb") as file:
        file.write(SECRET.encode())
        file.truncate(1 << 30)
    path = targets_file(tmp_path, TABLE + 'password_file = "big.pw"\n')
    assert reading_problem(path) == (
        f"{path}: servers[0].password_file: {big}: larger than {MAX_PASSWORD_BYTES >> 10} KiB, which no "
        'password file is (server "east")'
    )
    (tmp_path / "bytes.pw").write_bytes(SECRET.encode() + b"\xff\xfe")
    path = targets_file(tmp_path, TABLE + 'password_file = "bytes.pw"\n')
    assert reading_problem(path).endswith('bytes.pw: not UTF-8 text (server "east")')


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_what_is_no_regular_file_is_refused_before_a_byte_is_read(tmp_path: Path) -> None:
    """A directory, a named pipe without a writer (it must not hold the command) and
    ``/dev/zero`` (endless) are refused, naming what they are."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    cases = {"folder": "directory", "fifo": "named pipe"}
    if Path("/dev/zero").exists():
        cases["/dev/zero"] = "character device"
    for name, kind in cases.items():
        path = targets_file(tmp_path, TABLE + f'password_file = "{name}"\n')
        result: list[str] = []
        reader = threading.Thread(target=lambda p=path, r=result: r.append(reading_problem(p)), daemon=True)
        reader.start()
        reader.join(60)
        assert result == [
            f'{path}: servers[0].password_file: {tmp_path / name}: a {kind}, not a file (server "east")'
        ]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_file_any_user_can_read_is_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "pw"
    secret.write_text(SECRET, encoding="utf-8")
    table2 = TABLE.replace('"east"', '"west"').replace(":1", ":2")
    path = targets_file(tmp_path, TABLE + 'password_file = "pw"\n' + table2 + 'password_file = "pw"\n')
    passwords = Passwords(prompt=False)
    targets = read_targets(path)
    with caplog.at_level(logging.WARNING, logger="vbo_async.cli"):
        secret.chmod(0o640)  # a monitoring system's group: no warning
        assert passwords.read(path, targets) == [SECRET, SECRET]
        assert caplog.messages == []
        secret.chmod(0o644)
        passwords.read(path, targets)
        passwords.read(path, targets)  # a reload: not again
    assert caplog.messages == [
        f"the password file {secret} of east can be read by any user (mode 0644): chmod o-r it"
    ]
    assert SECRET not in caplog.text
    assert stat.S_IMODE(secret.stat().st_mode) == 0o644


def test_servers_sharing_a_variable_or_a_file_read_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pw").write_text("from-file", encoding="utf-8")
    monkeypatch.setenv("VBO_PASSWORD", "from-env")
    tables = [
        TABLE.replace('"east"', f'"s{i}"').replace(":1", f":{i + 1}") + line
        for i, line in enumerate(['password_file = "pw"\n', 'password_env = "VBO_PASSWORD"\n'] * 2)
    ]
    path = targets_file(tmp_path, "".join(tables))
    assert Passwords(prompt=False).read(path, read_targets(path)) == ["from-file", "from-env"] * 2


def test_a_reload_that_cannot_prompt_reuses_a_password_given_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VBO_PASSWORD", raising=False)
    path = targets_file(tmp_path, TABLE + 'password_env = "VBO_PASSWORD"\n')
    targets: TargetsFile = read_targets(path)
    with pytest.raises(
        CLIError, match=r"password_env: no password: set the environment variable VBO_PASSWORD "
    ):
        Passwords(prompt=False).read(path, targets)
    assert Passwords(prompt=False, given={"VBO_PASSWORD": "typed"}).read(path, targets) == ["typed"]


# --- the commands ---------------------------------------------------------------------------------


async def test_poll_signs_in_with_the_password_in_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VBO_PASSWORD", raising=False)
    app = create_app(small_config(seed=5, organizations=1))
    async with serve(app) as port:
        (tmp_path / "pw").write_text("admin\n", encoding="utf-8")
        path = targets_file(
            tmp_path, TABLE.replace("127.0.0.1:1", f"127.0.0.1:{port}") + 'password_file = "pw"\n'
        )
        good = await run_in_thread(capsys, "poll", "--targets", str(path), "--json")
        (tmp_path / "pw").write_text("not-admin\n", encoding="utf-8")
        bad = await run_in_thread(capsys, "poll", "--targets", str(path), "--json")
    assert good.code == 0, good.err
    assert bad.code == 1
    assert "not-admin" not in bad.out + bad.err


def test_check_says_which_password_file_is_missing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = targets_file(tmp_path, TABLE + 'password_file = "secrets/missing.pw"\n')
    result = run(capsys, "check", "--targets", str(path))
    assert result.code == 3
    assert result.out.startswith("VB365 UNKNOWN - ")
    assert str(tmp_path / "secrets" / "missing.pw") in result.out


# --- a password written where its place is named ----------------------------------------------------

MISPLACED = ["Summer2024", "s3cr3t_Pa55", "hunter2-Qx7", "Pa55.word", "Zq!8w#rT"]
"""Passwords written by mistake into ``password_env`` or ``password_file``: what a variable's
name takes (letters, digits, _), a file name, and symbols."""


@pytest.mark.parametrize("password", [p for p in MISPLACED if p.replace("_", "a").isalnum()])
def test_a_password_written_as_password_env_is_never_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    """``password_env = "Summer2024"`` (the password itself, a valid variable name) was said back
    in ``no password: set the environment variable Summer2024``, by every command and in
    ``check``'s Nagios line. The place is named instead: the targets file, the server, the key."""
    monkeypatch.delenv(password, raising=False)
    path = targets_file(tmp_path, TABLE + f'password_env = "{password}"\n')
    line = reading_problem_of(path, password)
    assert line.startswith(f"{path}: servers[0].password_env: no password: ")
    assert line.endswith('(server "east")')
    check = run(capsys, "check", "--targets", str(path))
    assert check.code == 3
    assert check.out.startswith("VB365 UNKNOWN - ")
    assert "servers[0].password_env" in check.out
    poll = run(capsys, "poll", "--targets", str(path))
    assert poll.code != 0
    for shown in (check.out, check.err, poll.out, poll.err):
        assert password not in shown


def test_a_password_env_that_names_a_variable_is_said_so_a_typo_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name in capitals (``VBO_EAST_PASWORD``) is how environment variables are named, not
    how passwords are written: it is said, so that a typo can be seen."""
    monkeypatch.delenv("VBO_EAST_PASWORD", raising=False)
    path = targets_file(tmp_path, TABLE + 'password_env = "VBO_EAST_PASWORD"\n')
    assert reading_problem_of(path, "") == (
        f"{path}: servers[0].password_env: no password: set the environment variable VBO_EAST_PASWORD "
        '(server "east")'
    )
    monkeypatch.setenv("VBO_EAST_PASWORD", "")
    assert reading_problem_of(path, "").endswith(
        'no password: the environment variable VBO_EAST_PASWORD is empty (server "east")'
    )


@pytest.mark.parametrize("password", MISPLACED)
def test_a_password_written_as_password_file_is_never_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    """``password_file = "hunter2-Qx7"`` was said back in ``cannot read /etc/vbo/hunter2-Qx7``.
    A path that names no file is said only when it has a folder in it (as no password has), and
    else by its key and the folder it was looked for in."""
    path = targets_file(tmp_path, TABLE + f'password_file = "{password}"\n')
    line = reading_problem_of(path, password)
    assert line == (
        f"{path}: servers[0].password_file: cannot read the file it names in {tmp_path} (not said: a "
        'name without a folder may be the password itself): No such file or directory (server "east")'
    )
    check = run(capsys, "check", "--targets", str(path))
    assert check.code == 3
    assert "servers[0].password_file" in check.out
    assert password not in check.out + check.err


@pytest.mark.parametrize("written", ["/nonexistent/S3cretP@ss", "sub/Zq!8w#rT", "ab/cd@x"])
def test_a_password_file_with_a_folder_that_names_no_file_is_not_said_to_be_in_the_targets_folder(
    tmp_path: Path, written: str
) -> None:
    """A value with a folder of its own that is no file name (a password holding a slash, or a
    path with symbols) was said to be looked for "in" the targets file's folder, which it was
    not; its folder is not said either (``ab`` of a password ``ab/cd@x``)."""
    path = targets_file(tmp_path, TABLE + f'password_file = "{written}"\n')
    line = reading_problem_of(path, written)
    assert line == (
        f"{path}: servers[0].password_file: cannot read the file it names (not said: what is written "
        'there may be the password itself): No such file or directory (server "east")'
    )
    assert str(tmp_path) not in line.removeprefix(str(path))
    assert not any(part in line for part in written.split("/") if part)


def test_a_password_option_variable_is_never_said(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--password-env Summer2024``: the same rule as ``password_env``."""
    monkeypatch.delenv("Summer2024", raising=False)
    result = run(
        capsys,
        "organizations",
        "--server",
        "http://127.0.0.1:1",
        "--username",
        "admin",
        "--password-env",
        "Summer2024",
    )
    assert result.code != 0
    assert "Summer2024" not in result.out + result.err
    assert "--password-env" in result.err


def reading_problem_of(path: Path, password: str) -> str:
    with pytest.raises(CLIError) as info:
        Passwords(prompt=False).read(path, read_targets(path))
    (line,) = info.value.lines
    if password:
        assert password not in line
    return line


@pytest.mark.parametrize("password", MISPLACED)
def test_no_exception_under_the_error_holds_a_password_written_as_password_file(
    tmp_path: Path, password: str
) -> None:
    """The `CLIError` was raised inside the handler of ``os.open``'s error: that error stayed its
    (suppressed) context, and its ``filename`` was the path, password and all, for an error
    reporter or a debugger to show."""
    path = targets_file(tmp_path, TABLE + f'password_file = "{password}"\n')
    with pytest.raises(CLIError) as info:
        Passwords(prompt=False).read(path, read_targets(path))
    chain: list[BaseException] = []
    pending: list[BaseException | None] = [info.value]
    while pending:
        exc = pending.pop()
        if exc is not None and all(exc is not seen for seen in chain):
            chain.append(exc)
            pending += [exc.__cause__, exc.__context__]
    shown = [f"{exc!s} {exc!r} {vars(exc) if hasattr(exc, '__dict__') else ''}" for exc in chain]
    shown += [str(getattr(exc, "filename", "")) for exc in chain]
    assert [text for text in shown if password in text] == []


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("password_env", "Summer2024", False),
        ("password_env", "VBO_EAST_PASSWORD", True),
        ("password_file", "Summer2024", False),
        ("password_file", "Summer 2024!/x", False),
        ("password_file", "secrets/east.pw", True),
        ("password_file", "credentials:east", True),
        ("password_file", "credentials:Summer 2024!", False),
    ],
)
def test_a_targets_repr_hides_a_value_that_may_be_the_password(key: str, value: str, shown: bool) -> None:
    """A password written into ``password_env`` or ``password_file`` by mistake is never said
    back by a message; nor is it by the repr of the target or the connection that holds it (a
    debugger, an error reporter's locals, a log of ``%r``): only a value that reads as a
    variable's name or a path is shown, as messages show them."""
    target = ServerTarget(url="https://vbo.test", username="u", **{key: value})
    text = repr(target)
    assert (repr(value) in text) is shown, text
    assert ("'***'" in text) is not shown
    if key == "password_env":
        connection = Connection(url="https://vbo.test", api_version="auto", username="u", password_env=value)
        assert (value in repr(connection)) is shown, repr(connection)
