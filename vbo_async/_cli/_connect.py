"""Connecting to one server from the command line: URLs, passwords, TLS, and hints for errors.

Pure helpers (no click, no rich): the options of ``jobs``/``organizations`` and each
``[[servers]]`` table of a targets file both end up as a `Connection`.
"""

from __future__ import annotations

import contextlib
import getpass
import io
import os
import re
import signal
import ssl
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import BinaryIO, Literal, TextIO

import aiohttp
import attrs
import httpx

from _vbo_async_cli import terminated_raises

from .._client import VBOClient, tls_context
from .._dialects import DIALECTS
from .._exceptions import ConfigError, TransportError, VBOError
from .._redact import redact_url
from .._retry import RetryPolicy
from .._urls import ApiRoot
from ..cli import DEFAULT_API_VERSION
from ._exit import CLIError, Outcome

__all__ = [
    "DEFAULT_API_VERSION",
    "HIDDEN_VARIABLE",
    "NOT_A_VARIABLE",
    "Connection",
    "Source",
    "ca_bundle_problem",
    "explain",
    "is_terminal",
    "is_variable_name",
    "no_password",
    "password_in",
    "read_password",
    "said_of",
    "split_version",
    "typed_text",
    "unknown_version",
    "url_problem",
    "variable_said",
    "without_line_break",
]


Source = Literal["options", "targets"]
"""Where a connection's settings came from: hints name the option or the targets-file key."""

_VERSION_SUFFIX = re.compile(r"^(?P<base>.*?)/+(?P<version>v[0-9]+)/*$", re.IGNORECASE)
"""A URL ending in a version segment: ``/v1`` … ``/v8`` are taken off, any other (``/v9``,
``/v10``) is refused as no API version, not kept as a base path the client would prefix to
every version it tries (``/v9/v8/Token``, 404: "serves none of the API versions")."""
_WRONG_VERSION = ("wrong version number", "record layer failure", "packet length too long", "http request")


def split_version(url: str) -> tuple[str, str | None]:
    """``(base URL, version)`` of a URL that ends in a version segment ``/vN`` (``/v1`` … ``/v8``
    as ``vbo-async simulate`` prints it; `unknown_version` says when N names none), else
    ``(url, None)``; the version is lower-cased.

    ```python
    split_version("http://127.0.0.1:4443/v1")  # ("http://127.0.0.1:4443", "v1")
    ```
    """
    match = _VERSION_SUFFIX.match(url.strip())
    if match is None:
        return url, None
    return match["base"], match["version"].lower()


def unknown_version(url: str) -> str | None:
    """``"ends in /v5, which is no API version (v8, v7, v6, v1)"`` for a URL whose version
    segment (see `split_version`) names no API version, else None."""
    base, version = split_version(url)
    if version is None or version in DIALECTS:
        return None
    return f"ends in {url.strip()[len(base) :]}, which is no API version ({', '.join(DIALECTS)})"


_CREDENTIALS = {
    "options": "give the user with --username and the password in the environment variable "
    "--password-env names",
    "targets": "put the user in username and the password in the environment variable named by password_env "
    "or the file named by password_file",
}


def url_problem(url: str, *, source: Source) -> str | None:
    """What makes ``url`` unusable as a server's base URL (after any ``/vN``), worded after its
    subject (``must be an absolute http(s) URL, got 'vbo01'``), else None. Credentials in it
    are told where they go on the command line or in a targets file (``source``), which never
    take a password itself."""
    base, version = split_version(url)
    if "@" in base:
        return f"must not carry credentials (user:password@host): {_CREDENTIALS[source]}"
    if version is not None and (inner := split_version(base)[1]) in DIALECTS:
        return (
            f"ends in two API version segments (/{inner}/{version}): give the server's URL with one "
            f"at most, at its end, to use that version only"
        )
    try:
        ApiRoot(base, DIALECTS)
    except ConfigError as exc:
        # Said of the subject the caller puts first: "must ...", "'s host ..." (not "base_url's").
        said = str(exc)
        return (
            said.removeprefix("base_url ") if said.startswith("base_url ") else said.removeprefix("base_url")
        )
    return None


def said_of(subject: str, problem: str) -> str:
    """``problem`` (`url_problem`'s) said of ``subject``: ``--server must ...``, ``--server's host ...``."""
    return f"{subject}{problem}" if problem.startswith("'s ") else f"{subject} {problem}"


def ca_bundle_problem(path: str) -> str | None:
    """Why the CA bundle at ``path`` cannot be loaded (``cannot load the CA bundle 'east.cer':
    ...``: not PEM, such as a DER ``.cer``), else None; said before any password is asked for."""
    try:
        tls_context(path)
    except ConfigError as exc:
        return str(exc)
    return None


_SAID_VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
"""How a variable named in a message (`variable_said`) or a repr (`variable_shown`) is written."""

_PATH_CHARACTERS = re.compile(r"[A-Za-z0-9._~/\\:-]+")
"""What a path said back is made of: the portable file name characters (letters, digits,
``.``, ``_``, ``-``), separators, ``~`` and a drive's ``:``."""


def reads_as_path(written: str, *, folder: bool = True) -> bool:
    """Whether a ``password_file`` value ``written`` may be said back (`file_said`, `path_shown`):
    only the characters of file names, and (unless ``folder`` is False) a folder in it; a
    password written there by mistake does not read as one."""
    if _PATH_CHARACTERS.fullmatch(written) is None:
        return False
    return not folder or "/" in written or "\\" in written


def variable_shown(variable: str | None) -> str:
    """The repr of a ``password_env`` value in a repr: the name when `variable_said` would say
    it, else ``'***'`` (a value that may be the password, written there by mistake)."""
    return repr(variable) if variable is None or _SAID_VARIABLE.match(variable) else "'***'"


@attrs.frozen(kw_only=True)
class Connection:
    """How to reach one server: ``url`` is the base URL (without the ``/vN`` segment)."""

    url: str
    api_version: str
    username: str
    password_env: str = attrs.field(repr=variable_shown)
    verify: bool | str = True
    """True (system CAs), a CA bundle path, or False (``--insecure``)."""
    label: str = ""
    """How prompts and reports name the server (its URL when empty)."""
    source: Source = "options"

    @classmethod
    def build(
        cls,
        url: str,
        *,
        api_version: str | None,
        username: str,
        password_env: str,
        ca_bundle: str | None = None,
        insecure: bool = False,
        label: str = "",
        source: Source = "options",
    ) -> Connection:
        """A connection for ``url``; a ``/vN`` at its end is taken off and is the API version
        unless ``api_version`` names one, else `DEFAULT_API_VERSION`."""
        base, version = split_version(url)
        verify: bool | str = False if insecure else (ca_bundle if ca_bundle is not None else True)
        return cls(
            url=base.rstrip("/"),
            api_version=api_version or version or DEFAULT_API_VERSION,
            username=username,
            password_env=password_env,
            verify=verify,
            label=label,
            source=source,
        )

    @property
    def name(self) -> str:
        """``label``, else the URL without any ``user:password@`` (which the client refuses, in
        a message that quotes this name)."""
        return self.label or redact_url(self.url)

    def client(
        self,
        password: str,
        *,
        verify: bool | str | ssl.SSLContext | None = None,
        max_concurrency: int = 10,
        within: float | None = None,
        log_out: bool = True,
    ) -> VBOClient:
        """A `VBOClient` for this server (``verify`` overrides the connection's own, e.g. with a
        shared TLS context), for a command that gives up after ``within`` seconds (None: never;
        see `retries_within`); ``log_out`` False keeps its session live at close (a token
        cache's). An unusable URL or CA bundle is a `CLIError` (usage); no file
        descriptor free to make the client, one whose outcome is `Outcome.UNREADABLE`."""
        try:
            return VBOClient(
                self.url,
                username=self.username,
                password=password,
                api_version=self.api_version,
                verify=self.verify if verify is None else verify,
                max_concurrency=max_concurrency,
                retry=retries_within(within),
                log_out=log_out,
            )
        except ConfigError as exc:
            raise CLIError(f"{self.name}: {exc}") from None
        except TransportError as exc:  # no descriptor free (its transport, or TLS certificates)
            raise CLIError(f"{self.name}: {exc}", outcome=Outcome.UNREADABLE) from None


def retries_within(seconds: float | None) -> RetryPolicy | None:
    """The retry policy of a command that gives up after ``seconds``: the default one, its time
    budget cut to them (the policy counts it from each request's first try). A retry whose wait
    would end past that (a throttled server's ``Retry-After: 60`` under a check's 50 s) is then
    not waited for: the server's own answer is reported (rate limited, and when to try again)
    instead of "no answer within". A request that starts late in the run is bounded by the
    command's deadline itself (`open_servers` gives it to each client: `VBOClient._retry_until`).
    None (the client's default) when there is no such limit or the default already fits it."""
    default = RetryPolicy()
    if seconds is None or (default.timeout is not None and default.timeout <= seconds):
        return None
    return attrs.evolve(default, timeout=seconds)


_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NOT_A_VARIABLE = (
    "the name of an environment variable (letters, digits and _, not starting with a digit), not the password"
)
"""What ``password_env`` and ``--password-env`` take, said without repeating what was given
instead (often the password itself)."""


def is_variable_name(name: str) -> bool:
    """Whether ``name`` can name the password's environment variable (``VBO_EAST_PASSWORD``)."""
    return _VARIABLE_NAME.match(name) is not None


HIDDEN_VARIABLE = "not said: a name not in capitals may be the password itself"
"""Why a message names the password's variable by its place (`variable_said`)."""


def variable_said(variable: str) -> str | None:
    """How a message names the password's environment variable ``variable`` (of
    ``--password-env``, or a targets file's ``password_env``): ``the environment variable NAME``
    when it is written in capitals, digits and _, as environment variables are named
    (``VBO_EAST_PASWORD``: a typo in it shows); None when it is not, and the message names where
    it was given instead: such a value may be the password itself, written there by mistake
    (``Summer2024`` is a valid variable name), and is never said back."""
    return f"the environment variable {variable}" if _SAID_VARIABLE.match(variable) else None


def no_password(variable: str, where: str, *, empty: bool) -> str:
    """``no password: set the environment variable VBO_PASSWORD`` (or ``... is empty``), the
    variable named as `variable_said` allows."""
    said = variable_said(variable)
    if said is None:
        state = "empty" if empty else "not set"
        return f"no password: the environment variable {where} names is {state} ({HIDDEN_VARIABLE})"
    return f"no password: {said} is empty" if empty else f"no password: set {said}"


def read_password(variable: str, prompt: str, *, where: str = "--password-env") -> str:
    """The password in the environment variable ``variable``, else typed at a prompt (never
    echoed); with neither a value nor a terminal (stdin closed included), or when the prompt
    gets no line (Ctrl-D), a `CLIError` naming the variable (or ``where`` it was given, when
    its name may be a password: `variable_said`). Ctrl-C at the prompt raises
    `KeyboardInterrupt` at once (see `_interruptible`).

    A line break ending the variable's value is not part of the password (a secret read from a
    file keeps the file's last one), as the prompt leaves out the one that ends the line typed."""
    value = password_in(os.environ, variable)
    if value:
        return value
    if not is_terminal(sys.stdin):
        raise CLIError(no_password(variable, where, empty=value == ""))
    stream = _prompt_stream()
    with _interruptible(), terminated_raises():  # the prompt blocks the loop: signals raise here
        try:
            typed = _typed_line(prompt, stream)
        except EOFError:
            _end_prompt_line(stream)
            said = variable_said(variable) or f"the environment variable {where} names ({HIDDEN_VARIABLE})"
            raise CLIError(f"no password: none was typed at the prompt; type it, or set {said}") from None
        except BaseException:  # Ctrl-C, SIGTERM
            _end_prompt_line(stream)
            raise
    password = typed_text(typed) if isinstance(typed, bytes) else typed
    if password is None:
        raise CLIError(NOT_UTF8_TYPED)
    return password


NOT_UTF8_TYPED = "no password: the password typed is not UTF-8 (check the terminal's encoding)"
"""What a line typed at the prompt that is no text is said to be (never what it holds)."""


def typed_text(line: bytes) -> str | None:
    """The password typed as the bytes ``line``, read as a value of the environment is
    (`environment_text`): in the locale's encoding, else in UTF-8 (``LC_ALL=C PYTHONUTF8=0``
    and a UTF-8 password typed); None when it is neither (a terminal sending Latin-1 under a
    UTF-8 locale), which the prompt says as `NOT_UTF8_TYPED`."""
    text = environment_text(os.fsdecode(line))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text


def _typed_line(prompt: str, stream: TextIO | None) -> bytes | str:
    """The line typed at ``prompt`` without its line break, never echoed, as `getpass.getpass`
    reads it (on the controlling terminal, else on stdin with the prompt on ``stream``), but as
    its bytes: getpass decodes them strictly in the locale's encoding, and a password typed in
    another (a terminal set to Latin-1, UTF-8 under ``LC_ALL=C``) was an internal error;
    `typed_text` reads them. getpass itself (text) where there is no ``termios`` (Windows reads
    characters, not bytes) or no terminal whose echo can be turned off (it warns, and reads
    with echo). No line (Ctrl-D) is an `EOFError`, as getpass's."""
    try:
        import termios
    except ImportError:
        return getpass.getpass(prompt, stream)
    with contextlib.ExitStack() as stack:
        source: io.FileIO | BinaryIO | None
        try:
            terminal = io.FileIO(os.open("/dev/tty", os.O_RDWR | getattr(os, "O_NOCTTY", 0)), "r+")
        except OSError:  # no controlling terminal: stdin is one (`read_password` saw it)
            source = getattr(sys.stdin, "buffer", None)
        else:
            source = stack.enter_context(terminal)
            if stream is None:
                stream = stack.enter_context(io.TextIOWrapper(terminal, errors="replace"))
        try:
            if source is None or stream is None:
                raise termios.error
            descriptor = source.fileno()
            before = termios.tcgetattr(descriptor)
        except (termios.error, OSError, ValueError):
            stack.close()
            return getpass.getpass(prompt, stream)
        silent = before[:]
        silent[3] &= ~termios.ECHO
        when = termios.TCSAFLUSH | getattr(termios, "TCSASOFT", 0)
        termios.tcsetattr(descriptor, when, silent)
        try:
            stream.write(prompt)
            stream.flush()
            line = source.readline()
        finally:
            termios.tcsetattr(descriptor, when, before)
            stream.flush()
        if not line:
            raise EOFError
        stream.write("\n")
        stream.flush()
        return line.removesuffix(b"\n")


def _end_prompt_line(stream: TextIO | None) -> None:
    """End the prompt's line (getpass ends it only when a line was typed), so that what is said
    next (``vbo-async: interrupted``) starts a line of its own."""
    with contextlib.suppress(OSError, ValueError):
        if stream is None:
            with open("/dev/tty", "w", encoding="utf-8") as terminal:
                terminal.write("\n")
        else:
            stream.write("\n")
            stream.flush()


def _prompt_stream() -> TextIO | None:
    """Where the password prompt is written: None (getpass writes it on the controlling
    terminal) when there is one, else the process's own stderr, not whatever ``sys.stderr`` is
    then. getpass writes it on ``sys.stderr`` without a controlling terminal (``setsid``, a
    tool's pseudo-terminal as stdin), and ``check`` holds that until its verdict: it waited for
    a password at a prompt nobody saw."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | getattr(os, "O_NOCTTY", 0)))  # none on Windows
    except OSError:
        return sys.__stderr__
    return None


def without_line_break(value: str) -> str:
    """``value`` without one line break at its end: ``\\n``, ``\\r\\n``, or a ``\\r`` alone (as an
    editor saving with classic Mac OS line ends writes it; no password is typed ending in one)."""
    return value.removesuffix("\n").removesuffix("\r")


def password_in(environ: Mapping[str, str], variable: str) -> str | None:
    """The password in the environment variable ``variable`` (None when it is not set): its
    bytes read in UTF-8 (`environment_text`), without a line break ending it."""
    value = environ.get(variable)
    return None if value is None else without_line_break(environment_text(value))


def environment_text(value: str) -> str:
    """A value of the environment as its bytes read in UTF-8. Under an ASCII locale without
    Python's UTF-8 mode (``LC_ALL=C PYTHONUTF8=0``) each byte past ASCII arrives as a lone
    surrogate: a UTF-8 password was refused as "not UTF-8", the same bytes in a password file
    taken. ``value`` itself when it has no such byte, or when its bytes are no UTF-8 (said
    later, as such, by the client)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return os.fsencode(value).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return value
    return value


def is_terminal(stream: object) -> bool:
    """Whether ``stream`` is a terminal: False for a closed or missing stream (``<&-`` makes
    ``sys.stdin`` None)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return isatty is not None and bool(isatty())
    except (ValueError, OSError):
        return False


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C raises `KeyboardInterrupt` while the block runs (in the main thread). A prompt is
    read inside ``asyncio.run``, whose own SIGINT handler only cancels the main task: with the
    event loop blocked in the prompt, nothing would happen until a line was typed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):  # ignored (nohup, a background job): stays so
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class SharedContexts:
    """One verifying TLS context per CA bundle (None: the system's), shared by every server using
    it: loading a bundle costs about 25 ms, once per server otherwise."""

    def __init__(self) -> None:
        self._contexts: dict[str | None, ssl.SSLContext] = {}

    def __len__(self) -> int:
        return len(self._contexts)

    def verify(self, verify: bool | str) -> ssl.SSLContext | Literal[False]:
        if verify is False:
            return False
        key = None if verify is True else verify
        context = self._contexts.get(key)
        if context is None:
            try:
                context = self._contexts[key] = tls_context(True if key is None else key)
            except ConfigError as exc:
                raise CLIError(str(exc)) from None
            except TransportError as exc:  # no descriptor free: nothing wrong with the command
                raise CLIError(str(exc), outcome=Outcome.UNREADABLE) from None
        return context


# --- hints for errors ---------------------------------------------------------------------------


def explain(error: VBOError, *, source: Source = "options") -> str:
    """``str(error)``, followed by what to do about it when the cause is a usual mistake:
    an untrusted certificate, ``https://`` to a plain-HTTP port or ``http://`` to a TLS port."""
    hint = _hint(error, source)
    return f"{error}; {hint}" if hint else str(error)


def _hint(error: VBOError, source: Source) -> str | None:
    if not isinstance(error, TransportError):
        return None
    chain = list(_causes(error))
    refusals = [exc for exc in chain if isinstance(exc, ssl.SSLCertVerificationError)]
    if refusals:
        # aiohttp's own error is one too, without OpenSSL's code: the ssl module's is its cause.
        codes = (getattr(exc, "verify_code", None) for exc in refusals)
        return _certificate_hint(next((code for code in codes if isinstance(code, int)), None), source)
    scheme = (error.url or "").partition(":")[0].lower()
    if scheme == "https" and any(_is_plain_http_answer(exc) for exc in chain):
        return "the server answered in plain HTTP, not TLS: use http:// instead of https://"
    if scheme == "http" and _closed_unanswered(chain):
        return (
            "the server closed the connection on a plain-HTTP request, as a TLS port does "
            "(VB365 serves HTTPS): use https:// instead of http://"
        )
    return None


def _closed_unanswered(chain: list[BaseException]) -> bool:
    """Whether the errors of ``chain`` say the server closed the connection before any answer
    (what a TLS port does with a plain-HTTP request), not in the middle of one's body."""
    if any(isinstance(exc, aiohttp.ClientPayloadError) for exc in chain):
        return False  # an answer began: its body was cut short
    return any(
        isinstance(exc, aiohttp.ServerDisconnectedError)
        or (isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in str(exc))
        for exc in chain
    )


_UNTRUSTED_ISSUER = frozenset({2, 18, 19, 20, 21})
"""OpenSSL's verify codes of a certificate whose issuer is not trusted: its issuer is unknown
(2, 20, 21), it is self-signed (18) or its chain ends in an unknown root (19)."""
_NAME_MISMATCH = frozenset({62, 64})
"""OpenSSL's verify codes of a certificate issued for other names (62) or addresses (64)."""
_STRICT_RULES = frozenset(range(78, 95))
"""OpenSSL's verify codes of the checks its strict mode (``ssl.VERIFY_X509_STRICT``, on by
default from Python 3.13) adds: a CA certificate without keyUsage (92) or whose basicConstraints
is not critical (89), a certificate without an authorityKeyIdentifier (85), ..."""


def _certificate_hint(code: int | None, source: Source) -> str | None:
    """What to do about a certificate refused with OpenSSL's verify ``code``: pass the CA
    when its issuer is not trusted, use another name when it names others; nothing when it
    has expired or is refused for any other reason (the error says why), except by the strict
    rules of Python 3.13 (what trusted it before may be refused now). Without a code (none read),
    as for an unknown issuer."""
    if code is None or code in _UNTRUSTED_ISSUER:
        where = "--ca-bundle PATH" if source == "options" else 'ca_bundle = "PATH" in the targets file'
        return f"if the server's certificate is signed by your own CA, pass that CA with {where}"
    if code in _NAME_MISMATCH:
        return "connect to the server by a name its certificate was issued for"
    if code in _STRICT_RULES:
        return (
            "Python 3.13 and later refuse certificates that break RFC 5280's rules"
            " (ssl.VERIFY_X509_STRICT): have the certificate or its CA re-issued with what is missing"
        )
    return None


def _is_plain_http_answer(exc: BaseException) -> bool:
    if not isinstance(exc, ssl.SSLError) or isinstance(exc, ssl.SSLCertVerificationError):
        return False
    text = f"{getattr(exc, 'reason', '') or ''} {exc}".lower().replace("_", " ")
    return any(marker in text for marker in _WRONG_VERSION)


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    seen = 0
    while exc is not None and seen < 12:
        yield exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
