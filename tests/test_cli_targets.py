"""The targets file of ``vbo-async poll``: typed by attrs + cattrs, unknown keys refused, one line
per problem with its TOML path, exit code 2; every accepted key documented."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import attrs
import pytest

from vbo_async._cli._connect import DEFAULT_API_VERSION
from vbo_async._cli._exit import CLIError
from vbo_async._cli._targets import (
    MAX_TARGETS_BYTES,
    ServerTarget,
    TargetsFile,
    read_targets,
    tls_contexts,
)

from .test_cli import HANG_GUARD, child_environment, error_lines, run

GOOD = 'url = "http://127.0.0.1:1"\nusername = "admin"\npassword_env = "VBO_PASSWORD"\n'
SECRET = "Pa55-in-the-file-Qx7"
ORGANIZATIONS = 'expected "all" or a non-empty array of organization ids or names (strings)'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(CLIError) as info:
        read_targets(path)
    lines = list(info.value.lines)
    assert all(line.startswith(f"{path}: ") for line in lines)
    return [line.removeprefix(f"{path}: ") for line in lines]


def test_a_full_file_is_read_into_attrs_classes(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not checked here", encoding="utf-8")
    text = (
        "[[servers]]\n"
        'name = "east"\n'
        'url = "https://vbo-east.example.com:4443/v1"\n'
        'username = "LAB\\\\svc-backup"\n'
        'password_env = "VBO_EAST_PASSWORD"\n'
        'organizations = ["Contoso", "2b1c0f4e-0000-0000-0000-000000000001", "Contoso"]\n'
        'ca_bundle = "ca.pem"\n'
        'api_version = "v6"\n'
        "max_concurrency = 4\n"
        "\n[[servers]]\n" + GOOD + "insecure = true\n"
    )
    targets = read_targets(write(tmp_path, text))
    assert isinstance(targets, TargetsFile)
    east, other = targets.servers
    assert east == ServerTarget(
        name="east",
        url="https://vbo-east.example.com:4443/v1",
        username="LAB\\svc-backup",
        password_env="VBO_EAST_PASSWORD",
        organizations=("Contoso", "2b1c0f4e-0000-0000-0000-000000000001"),
        ca_bundle=str(tmp_path / "ca.pem"),  # relative to the targets file
        api_version="v6",
        max_concurrency=4,
    )
    assert other.label == "http://127.0.0.1:1"
    assert (other.organizations, other.insecure, other.max_concurrency) == ("all", True, 10)
    # The url's /v1 is taken off; an explicit api_version wins, else the url's, else the default.
    connection = east.connection()
    assert (connection.url, connection.api_version, connection.verify) == (
        "https://vbo-east.example.com:4443",
        "v6",
        str(tmp_path / "ca.pem"),
    )
    assert attrs.evolve(east, api_version=None).connection().api_version == "v1"
    assert other.connection().api_version == DEFAULT_API_VERSION
    assert other.connection().verify is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["servers: required key missing"]),
        ("[[servers]]\n" + GOOD + 'cabundle = "/etc/ssl/ca.pem"\n', ["servers[0].cabundle: extra field"]),
        (
            "[[servers]]\n"
            + GOOD
            + '[[servers]]\nname = "west"\n'
            + GOOD
            + 'cabundle = "x"\n"odd key" = 1\n',
            [
                'servers[1].cabundle: extra field (server "west")',
                'servers[1]."odd key": extra field (server "west")',
            ],
        ),
        ("server = []\n[[servers]]\n" + GOOD, ["server: extra field"]),
        ('servers = ["east"]\n', ["servers[0]: expected a [[servers]] table, got a string"]),
        ("servers = []\n", ["servers: expected one or more [[servers]] tables"]),
        (
            "[[servers]]\n",
            [
                "servers[0].url: required key missing",
                "servers[0].username: required key missing",
                "servers[0].password_env: required key missing (or password_file)",
            ],
        ),
        (
            "[[servers]]\n" + GOOD.replace('"admin"', "7"),
            ["servers[0].username: expected a string, got an integer"],
        ),
        (
            "[[servers]]\n" + GOOD.replace('"admin"', '" "'),
            ["servers[0].username: expected a non-empty string"],
        ),
        (
            "[[servers]]\n" + GOOD.replace("http://127.0.0.1:1", "ftp://127.0.0.1"),
            ["servers[0].url: the URL must be an absolute http(s) URL, got 'ftp://127.0.0.1'"],
        ),
        (
            "[[servers]]\n" + GOOD.replace("127.0.0.1:1", "127.0.0.1:99999"),
            ["servers[0].url: the URL has an invalid port: 'http://127.0.0.1:99999'"],
        ),
        (  # the library's "base_url's host" said of the URL
            "[[servers]]\n" + GOOD.replace("127.0.0.1:1", "127.1:1"),
            [
                "servers[0].url: the URL's host '127.1' is no IPv4 address in dotted-decimal form (the "
                "resolver reads it as 127.0.0.1): write four numbers without leading zeros: 'http://127.1:1'"
            ],
        ),
        (
            "[[servers]]\n" + GOOD.replace("127.0.0.1:1", "a..b:1"),
            [
                "servers[0].url: the URL's host is not a valid host name (an empty label, as in 'a..b', or "
                "one longer than 63 characters): 'http://a..b:1'"
            ],
        ),
        (
            "[[servers]]\n" + GOOD + "organizations = 5\n",
            [f"servers[0].organizations: {ORGANIZATIONS}"],
        ),
        (
            "[[servers]]\n" + GOOD + 'organizations = ["a", 1]\n',
            [f"servers[0].organizations: {ORGANIZATIONS}"],
        ),
        (
            "[[servers]]\n" + GOOD + 'insecure = "false"\n',
            ["servers[0].insecure: expected true or false (unquoted), got a string"],
        ),
        (
            "[[servers]]\n" + GOOD + 'max_concurrency = "many"\n',
            ["servers[0].max_concurrency: expected an integer, got a string"],
        ),
        (
            "[[servers]]\n" + GOOD + "max_concurrency = 0\n",
            ["servers[0].max_concurrency: expected a positive integer, got 0"],
        ),
        (
            "[[servers]]\n" + GOOD + "max_concurrency = true\n",
            ["servers[0].max_concurrency: expected an integer, got a boolean"],
        ),
        (
            "[[servers]]\n" + GOOD + "ca_bundle = 5\n",
            ["servers[0].ca_bundle: expected a string, got an integer"],
        ),
        (
            "[[servers]]\n" + GOOD + 'api_version = "v1/x"\n',
            ["servers[0].api_version: expected one of auto, v8, v7, v6, v1"],
        ),
        (
            "[[servers]]\n" + GOOD + 'ca_bundle = "/"\ninsecure = true\n',
            ["servers[0]: ca_bundle and insecure = true exclude each other"],
        ),
        (
            '[[servers]]\nname = "a"\n' + GOOD + '[[servers]]\nname = "a"\n' + GOOD,
            ['servers: servers[0] and servers[1] are both named "a"'],
        ),
        (
            "[[servers]]\n"
            + GOOD
            + "[[servers]]\n"
            + GOOD.replace('url = "http://127.0.0.1:1"', 'url = "HTTP://127.0.0.1:1/v8/"'),
            [
                "servers: servers[0] and servers[1] are both named by the url of one server, written two "
                'ways ("http://127.0.0.1:1", "HTTP://127.0.0.1:1/v8/"): each would be polled, and counted, '
                "twice (give them names if that is meant)"
            ],
        ),
    ],
    ids=[
        "empty",
        "misspelt-key",
        "two-extra-keys-named-server",
        "top-level-typo",
        "not-a-table",
        "no-servers",
        "required-keys",
        "username-number",
        "username-blank",
        "url-scheme",
        "url-port",
        "url-host-ipv4-shorthand",
        "url-host-empty-label",
        "organizations-number",
        "organizations-mixed",
        "insecure-quoted",
        "concurrency-string",
        "concurrency-zero",
        "concurrency-bool",
        "ca-bundle-number",
        "api-version-path",
        "ca-bundle-and-insecure",
        "duplicate-names",
        "one-url-written-two-ways",
    ],
)
def test_bad_files_are_one_line_per_problem_with_its_toml_path(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    assert problems(tmp_path, text) == expected


@pytest.mark.parametrize(
    ("first", "second"), [("/v5", "/V3/"), ("/v9", "/v10/")], ids=["below-v8", "past-v8"]
)
def test_a_url_ending_in_a_version_no_server_serves_names_its_place(
    tmp_path: Path, first: str, second: str
) -> None:
    """``/v5`` at the end of a url is taken as the API version, as ``/v8`` is: one that does not
    exist is a problem of the file, named with its place like any other, every one of them at
    once; not a line without file or key, about the first server only, once the file is read.
    ``/v9`` and ``/v10`` alike: they were kept as a base path, the client asked ``/v9/v8/Token``
    and blamed the server ("serves none of the API versions"), a failure row."""
    text = f'[[servers]]\nurl = "http://127.0.0.1:1{first}"\nusername = "a"\npassword_env = "P"\n'
    text += (
        f'[[servers]]\nname = "w"\nurl = "http://127.0.0.1:2{second}"\nusername = "a"\npassword_env = "P"\n'
    )
    assert problems(tmp_path, text) == [
        f"servers[0].url: ends in {first}, which is no API version (v8, v7, v6, v1)",
        f'servers[1].url: ends in {second}, which is no API version (v8, v7, v6, v1) (server "w")',
    ]


def test_a_url_ending_in_two_versions_says_so(tmp_path: Path) -> None:
    """Not the library's ``base_url ends in the API version segment /v1 ... api_version='v1'``."""
    text = '[[servers]]\nurl = "http://127.0.0.1:1/v1/v8"\nusername = "a"\npassword_env = "P"\n'
    assert problems(tmp_path, text) == [
        "servers[0].url: the URL ends in two API version segments (/v1/v8): give the server's URL with "
        "one at most, at its end, to use that version only"
    ]


def test_one_server_under_two_names_is_polled_as_two(tmp_path: Path) -> None:
    """Names given on purpose (a test's many servers in one simulator, tenants split between
    tables) are left as they are: only tables named by one url written two ways are refused."""
    second = GOOD.replace('127.0.0.1:1"', '127.0.0.1:1/"')
    text = '[[servers]]\nname = "a"\n' + GOOD + '[[servers]]\nname = "b"\n' + second
    assert [target.label for target in read_targets(write(tmp_path, text)).servers] == ["a", "b"]


def test_a_url_with_credentials_says_where_the_password_goes_in_the_file(tmp_path: Path) -> None:
    """The library's advice ("use username= and password=") sent the user to a ``password`` key
    that the targets file refuses in turn."""
    text = "[[servers]]\n" + GOOD.replace("http://", f"http://svc:{SECRET}@")
    (line,) = problems(tmp_path, text)
    assert line == (
        "servers[0].url: the URL must not carry credentials (user:password@host): put the user in "
        "username and the password in the environment variable named by password_env or the file named "
        "by password_file"
    )


def test_a_missing_ca_bundle_names_the_resolved_path(tmp_path: Path) -> None:
    (line,) = problems(tmp_path, "[[servers]]\n" + GOOD + 'ca_bundle = "certs/missing.pem"\n')
    assert line == f"servers[0].ca_bundle: no such file or directory: {tmp_path / 'certs' / 'missing.pem'}"


def test_invalid_toml_and_unreadable_files(tmp_path: Path) -> None:
    (line,) = problems(tmp_path, "[[servers]\nurl = ")
    assert line.startswith("not valid TOML: ")
    with pytest.raises(CLIError, match="cannot read"):
        read_targets(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "[[servers]]\n" + GOOD + "max_concurrency = " + "9" * 5000 + "\n",
            "Exceeds the limit (4300 digits)",
        ),
        ("a = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
    ],
    ids=["integer-of-5000-digits", "nested-100000-deep"],
)
def test_toml_that_tomllib_cannot_take_is_a_problem_of_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, says: str
) -> None:
    """tomllib raises a bare ValueError (an integer past Python's 4,300 digits) or RecursionError
    for these, not its TOMLDecodeError: an internal error (exit 1) naming no file."""
    (line,) = problems(tmp_path, text)
    assert line.startswith("not valid TOML: ")
    assert says in line
    assert "set_int_max_str_digits" not in line
    (printed,) = error_lines(run(capsys, "poll", "--targets", str(tmp_path / "targets.toml")), code=2)
    assert printed == f"vbo-async: error: {tmp_path / 'targets.toml'}: {line}"


def test_a_targets_file_is_read_to_a_bound(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A wrong file of gigabytes was read whole: a MemoryError ('internal error') after
    gigabytes, or the kernel's OOM killer; a huge file took seconds past check's -t. Nothing
    past the bound is read, and the file is named."""
    path = tmp_path / "targets.toml"
    with path.open("wb") as file:
        file.write(b"[[servers]]\n" + GOOD.encode())
        file.truncate(MAX_TARGETS_BYTES + 1)  # sparse: no disk used
    with pytest.raises(CLIError) as info:
        read_targets(path)
    assert info.value.lines == (f"{path}: larger than 16 MiB, which no targets file is",)
    (printed,) = error_lines(run(capsys, "poll", "--targets", str(path)), code=2)
    assert printed == f"vbo-async: error: {info.value.lines[0]}"


@pytest.mark.parametrize("kind", ["directory", "character device", "socket"])
def test_a_targets_file_that_is_no_regular_file_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    """``--targets /dev/zero`` was read up to the bound and called too large, a directory or a
    socket failed with what the system said of reading it: each is refused as what it is, the
    path named, before a byte is read."""
    path = {"directory": tmp_path, "character device": Path("/dev/zero")}.get(kind, tmp_path / "t.sock")
    with contextlib.ExitStack() as stack:
        if kind == "socket":
            sock = stack.enter_context(socket.socket(socket.AF_UNIX))
            sock.bind(str(path))
        if not path.exists():
            pytest.skip(f"needs {path}")
        with pytest.raises(CLIError) as info:
            read_targets(path)
        assert info.value.lines == (f"{path}: a {kind}, not a file",)
        (printed,) = error_lines(run(capsys, "poll", "--targets", str(path)), code=2)
    if kind == "directory":  # click's own check of --targets comes first
        assert f"'{path}' is a directory" in printed
    else:
        assert printed == f"vbo-async: error: {path}: a {kind}, not a file"


def test_targets_are_read_where_os_lacks_posix_open_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Windows has no O_NONBLOCK, O_NOCTTY or O_CLOEXEC: reading a targets file must not need
    them (an AttributeError, every poll and check an internal error there)."""
    for flag in ("O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC"):
        monkeypatch.delattr(os, flag)
    (server,) = read_targets(write(tmp_path, "[[servers]]\n" + GOOD)).servers
    assert server.url == "http://127.0.0.1:1"


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="a shell's <(...) names /dev/fd/N")
def test_targets_are_read_from_a_pipe_with_a_writer() -> None:
    """``--targets <(envsubst < targets.toml.in)`` and ``--targets /dev/stdin`` name a pipe its
    writer holds: read as it is written, to its end, as a file is."""
    text = ("[[servers]]\n" + GOOD).encode()
    readable, writable = os.pipe()

    def write_slowly() -> None:
        try:
            for start in range(0, len(text), 7):  # in pieces, as a generating command writes
                os.write(writable, text[start : start + 7])
                time.sleep(0.001)
        finally:
            os.close(writable)

    writer = threading.Thread(target=write_slowly, daemon=True)
    writer.start()
    try:
        (server,) = read_targets(Path(f"/dev/fd/{readable}")).servers
    finally:
        writer.join(HANG_GUARD)
        os.close(readable)
    assert server.url == "http://127.0.0.1:1"


@pytest.mark.parametrize("command", ["poll", "check", "serve"])
def test_a_targets_fifo_without_a_writer_is_refused_not_waited_for(tmp_path: Path, command: str) -> None:
    """``--targets`` naming a named pipe nothing writes to: opening it blocked the command for
    good (check past any monitoring timeout, serve never serving nor saying why)."""
    path = tmp_path / "targets.toml"
    os.mkfifo(path)
    completed = subprocess.run(
        [sys.executable, "-m", "vbo_async", command, "--targets", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=child_environment(),
        timeout=HANG_GUARD,  # a hang fails the test instead of holding it
        check=False,
    )
    said = f"{path}: a named pipe with nothing written to it (no process writing)"
    if command == "check":
        assert (completed.returncode, completed.stdout) == (3, f"VB365 UNKNOWN - {said}\n")
    else:
        assert (completed.returncode, completed.stderr) == (2, f"vbo-async: error: {said}\n")


def test_line_ends_of_any_kind_are_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_bytes(("[[servers]]\r\n" + GOOD.replace("\n", "\r\n", 1) + 'name = """a\rb"""\n').encode())
    (server,) = read_targets(path).servers
    assert (server.url, server.name) == ("http://127.0.0.1:1", "a\nb")


def test_a_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Windows PowerShell 5.1's ``Set-Content -Encoding UTF8`` and ``Out-File`` begin the file
    with a UTF-8 byte order mark; tomllib alone calls that "Invalid statement" at line 1."""
    path = tmp_path / "targets.toml"
    path.write_text("[[servers]]\n" + GOOD, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    (server,) = read_targets(path).servers
    assert server.url == "http://127.0.0.1:1"


def test_a_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    lines = problems(tmp_path, '[[servers]]\nname = "east"\n' + GOOD + f'password = "{SECRET}"\n')
    assert lines == [
        "servers[0].password: not accepted: put the password in the environment variable named by "
        'password_env, or in the file named by password_file (server "east")'
    ]


def test_a_password_put_in_password_env_is_refused_without_echoing_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``password = "..."`` is refused; a user who then writes the password into
    ``password_env`` must not see it printed back ("set the environment variable Pa55-...") by
    ``check`` into a monitoring system's status line."""
    monkeypatch.setattr(sys, "stdin", None)
    path = write(tmp_path, '[[servers]]\nname = "east"\n' + GOOD.replace("VBO_PASSWORD", SECRET))
    assert problems(tmp_path, path.read_text(encoding="utf-8")) == [
        "servers[0].password_env: expected the name of an environment variable (letters, digits and _, "
        'not starting with a digit), not the password (server "east")'
    ]
    result = run(capsys, "check", "--targets", str(path))
    assert result.code == 3
    assert result.out.startswith("VB365 UNKNOWN - ")
    assert SECRET not in result.out + result.err


def test_poll_reports_every_problem_and_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(
        tmp_path, "[[servers]]\n" + GOOD + f'cabundle = "x"\npassword = "{SECRET}"\ninsecure = "no"\n'
    )
    result = run(capsys, "poll", "--targets", str(path))
    lines = error_lines(result, code=2)
    assert lines == [
        f"vbo-async: error: {path}: servers[0].insecure: expected true or false (unquoted), got a string",
        f"vbo-async: error: {path}: servers[0].cabundle: extra field",
        f"vbo-async: error: {path}: servers[0].password: not accepted: put the password in the environment "
        "variable named by password_env, or in the file named by password_file",
    ]
    assert SECRET not in result.err


def test_every_accepted_key_is_documented() -> None:
    keys = [field.name for field in attrs.fields(ServerTarget)]
    assert keys == [
        "url",
        "username",
        "password_env",
        "password_file",
        "name",
        "organizations",
        "ca_bundle",
        "insecure",
        "api_version",
        "max_concurrency",
    ]
    docstring = ServerTarget.__doc__ or ""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    example = readme.split("**Targets file.**", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    for key in keys:
        assert f"``{key}``" in docstring, key
        assert f"\n{key} = " in example, key
    assert "password =" not in example


def test_the_api_version_defaults_to_auto_in_the_file_and_on_the_command_line(tmp_path: Path) -> None:
    # Issue 10: ``--api-version`` (CLI) and ``api_version`` (targets.toml) default to ``auto``,
    # which an older server (v6 only, say) needs: a default pinned to v8 would 404 there.
    from vbo_async._cli._app import cli
    from vbo_async._cli._connect import Connection

    targets = read_targets(write(tmp_path, "[[servers]]\n" + GOOD))
    assert isinstance(targets, TargetsFile)
    (server,) = targets.servers
    assert server.connection().api_version == "auto"
    # Without --api-version (nor a /vN at the end of --server), a command's connection is auto.
    built = Connection.build("https://vbo.example.com:4443", api_version=None, username="u", password_env="P")
    assert built.api_version == "auto"
    for name in ("jobs", "organizations"):
        (option,) = [p for p in cli.commands[name].params if p.name == "api_version"]
        assert option.default == "auto"


@pytest.mark.parametrize("command", ["poll", "check", "serve"])
def test_a_ca_bundle_that_cannot_be_loaded_names_its_place(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str
) -> None:
    """A bundle that exists but is no PEM (a certificate exported from Windows as DER ``.cer``)
    is found when the TLS contexts are made, after the file is read: its error named the bundle
    alone, not the targets file, the table nor the server, unlike every other problem of the file."""
    monkeypatch.setenv("VBO_PASSWORD", "admin")
    (tmp_path / "east.cer").write_bytes(b"0\x82\x03\x1d0\x82\x02\x05\xa0\x03\x02\x01\x02")
    path = write(
        tmp_path,
        "[[servers]]\n"
        + GOOD
        + '[[servers]]\nname = "east"\n'
        + GOOD.replace("127.0.0.1:1", "127.0.0.1:2")
        + 'ca_bundle = "east.cer"\n',
    )
    argv = [command, "--targets", str(path)]
    if command == "serve":
        argv += ["--listen", "127.0.0.1:0"]
    result = run(capsys, *argv)
    place = f"{path}: servers[1].ca_bundle: cannot load the CA bundle '{tmp_path / 'east.cer'}': "
    if command == "check":
        assert result.code == 3
        assert result.out.startswith(f"VB365 UNKNOWN - {place}")
        assert result.out.splitlines()[0].endswith(' (server "east")')
        return
    (line,) = error_lines(result, code=2)
    assert line.startswith(f"vbo-async: error: {place}")
    assert line.endswith(' (server "east")')


def test_servers_of_a_file_with_the_same_ca_bundle_share_one_tls_context(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    ca = tls_files[1]
    servers = [
        GOOD + f'ca_bundle = "{ca}"\n',
        GOOD.replace(":1", ":2") + "insecure = true\n",
        GOOD.replace(":1", ":3") + f'ca_bundle = "{ca}"\n',
    ]
    path = write(tmp_path, "".join(f"[[servers]]\n{server}" for server in servers))
    first, insecure, third = tls_contexts(path, read_targets(path))
    assert isinstance(first, ssl.SSLContext)
    assert third is first
    assert insecure is False
