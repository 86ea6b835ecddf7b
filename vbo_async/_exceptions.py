"""The one exception tree of vbo-async.

Everything the library raises on purpose derives from `VBOError`; nothing else escapes it
(``asyncio.CancelledError`` excepted, which is never swallowed)::

    VBOError
    ├── APIError                  the server answered with a non-success status
    │   ├── NotFoundError         404: unknown id or path
    │   ├── RateLimitedError      429 after every retry (at once when its Retry-After is too long)
    │   └── ServerError           5xx after every retry (at once when its Retry-After is too long)
    ├── AuthenticationError       credentials or tokens refused (token endpoint 400/401/403, a
    │                             refused password held during its pause, 401 loop)
    ├── DecodeError               a body is not JSON, or not the shape of the model it should be
    ├── LinkError                 an href outside the API root, or a link the server did not send
    ├── TransportError            connect, read, write, timeout, TLS, dropped or truncated responses
    ├── ResponseTooLargeError     a body exceeded ``max_response_bytes`` while streaming in
    ├── ClientStateError          the client is closed, or used from another event loop; a
    │                             `PollSweep` read by two tasks at once
    ├── NotSupportedError         the server's API version has no such operation
    └── ConfigError               an option or argument is invalid (also a ``ValueError``)

Context is keyword-only, as in httpx. Messages never contain passwords or tokens.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "ClientStateError",
    "ConfigError",
    "DecodeError",
    "LinkError",
    "NotFoundError",
    "NotSupportedError",
    "RateLimitedError",
    "ResponseTooLargeError",
    "ServerError",
    "TransportError",
    "VBOError",
]


class VBOError(Exception):
    """Base of every error vbo-async raises.

    ``method`` and ``url`` name the request the error belongs to, when there is one.
    """

    args: tuple[Any, ...]  # as BaseException's: the `message` setter rewords it
    method: str | None
    url: str | None

    def __init__(self, message: str, *, method: str | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.method = method
        self.url = url

    @property
    def message(self) -> str:
        """What went wrong, without the request (the exception's one argument)."""
        return str(self.args[0]) if self.args else ""

    @message.setter
    def message(self, value: str) -> None:
        # Rewording an error (a scrubbed URL, the attempts made) rewords its ``args`` too.
        self.args = (value,)

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException's pickle calls ``type(*args)``, which the keyword-only context of
        # `APIError` and `NotSupportedError` refuses: rebuild without calling ``__init__``.
        return (_unpickled, (type(self), self.args), self.__dict__)

    def __str__(self) -> str:
        if self.method and self.url:
            return f"{self.message} ({self.method} {self.url})"
        if self.url:
            return f"{self.message} ({self.url})"
        return self.message


class APIError(VBOError):
    """The server answered with a status that is not a success, and retrying did not help; or,
    with ``status_code`` 200, a listing the client will not read on (over ``max_pages`` or
    ``max_listing_items``, a ``next`` leading back to a page read, a page that links on but
    brings nothing new), the message naming the listing.

    ``message`` is read leniently from the body (``message``, ``error_description``/``error``,
    or a short excerpt of a non-JSON body); ``error_code`` is the v7+ ``errorCode`` if sent;
    ``retry_after`` the seconds the server's ``Retry-After`` asked to wait (None when it named
    none), which the message also gives with the time it ends. ``unsent`` is True when the client
    did not send this request at all: an earlier answer (its ``status_code``) asked for a rest that
    ends past the request's bound (the message says "not sent").
    """

    unsent: bool = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_code: str | None = None,
        method: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status_code = status_code
        self.error_code = error_code
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"HTTP {self.status_code}: {super().__str__()}"


class NotFoundError(APIError):
    """404: the resource does not exist (unknown id, or a path this server does not serve)."""


class RateLimitedError(APIError):
    """429 still answered after the last retry, or at once when its ``Retry-After`` is longer than
    ``RetryPolicy.max_retry_after`` (``retry_after`` says how long; the message, until when)."""


class ServerError(APIError):
    """A 5xx status still answered after the last retry (or on a request never retried), or at
    once when its ``Retry-After`` is longer than ``RetryPolicy.max_retry_after``."""


class AuthenticationError(VBOError):
    """The server refused the credentials or every fresh token (bad password, 401 loop)."""


class DecodeError(VBOError):
    """A body is not JSON, or does not have the shape of the model it should decode into.

    ``path`` names the failing value in wire names (``$[1].schedulePolicy.retryNumber``).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.path = path


class LinkError(VBOError):
    """A link cannot be followed.

    Either its href has no ``/{api_version}/`` segment or leaves the API root (raised before any
    request is sent, so the bearer token never travels elsewhere), or the link is missing:
    ``links.require(relation)`` when the server sent none (or, for a name read at run time, when
    the resource has no such relation: the message lists those it has), or a `ThroughLink` whose middle
    resource has no link to follow (a v8 repository of a proxy pool has no ``proxy``).
    ``relation`` names the link, ``href`` the href concerned when there is one (whole: the message
    quotes at most its first 500 characters, and then says how long it is).
    """

    def __init__(self, message: str, *, href: str | None = None, relation: str | None = None) -> None:
        super().__init__(message)
        self.href = href
        self.relation = relation


class TransportError(VBOError):
    """The request did not get a complete answer: connect, read, write, timeout, TLS or a dropped
    or truncated response. The underlying exception is the ``__cause__``.

    ``unsent`` is True when the request is known never to have reached the server (no connection
    could be made, or none was free in time): sending it again cannot carry it out twice. False
    means it may have reached the server (a job action may have been carried out)."""

    unsent: bool = False

    def __init__(
        self, message: str, *, method: str | None = None, url: str | None = None, unsent: bool = False
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.unsent = unsent


class ResponseTooLargeError(VBOError):
    """A response body grew past ``max_response_bytes``; it was refused while streaming in."""


class ClientStateError(VBOError):
    """The client cannot serve the call: it is closed, or bound to another event loop. Also a
    `PollSweep` read or closed by a second task while one awaits its next result."""


class NotSupportedError(VBOError):
    """The API version the client speaks has no such operation (``service_instance()`` on v1,
    a full start on v1, ...). ``version`` and ``operation`` name them; nothing was sent."""

    def __init__(self, message: str, *, version: str, operation: str) -> None:
        super().__init__(message)
        self.version = version
        self.operation = operation


class ConfigError(VBOError, ValueError):
    """An option or argument is invalid: a bad base URL, a negative limit, an unknown job id type.

    Also a ``ValueError``, so code that validates arguments generically still catches it.
    """


def _unpickled(cls: type[VBOError], args: tuple[Any, ...]) -> VBOError:
    """A pickled `VBOError` of class ``cls``, its attributes restored by pickle afterwards."""
    return cls.__new__(cls, *args)
