"""Validated, immutable settings for the simulator: data shape (`SimulatorConfig`) and `Faults`."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from vbo_async._exceptions import ConfigError

from ._throttle import TOKEN_QUOTA, TokenQuota
from ._tokens import MAX_TOKEN_LIFETIME

__all__ = ["API_VERSIONS", "Faults", "SimulatorConfig"]

_OUTCOME_RATES = ("error_rate", "rate_limit_rate", "drop_rate", "truncate_rate", "malformed_rate")
API_VERSIONS = ("v1", "v6", "v7", "v8")
"""Every API version the simulator can serve, oldest first."""


def _non_negative(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    _finite_number(attribute, value, ">= 0")


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    _finite_number(attribute, value, "> 0")


def _finite_number(attribute: attrs.Attribute[Any], value: object, bound: Literal[">= 0", "> 0"]) -> None:
    """`ConfigError` unless ``value`` is a finite number within ``bound``, which every refusal
    names (``-5`` and ``0`` of a positive field are told the same)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{attribute.name} must be a number, got {value!r}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float (10**400)
        raise ConfigError(
            f"{attribute.name} must be a finite number {bound}, got an int too large for a float"
        ) from None
    if not finite or value < 0 or (bound == "> 0" and value == 0):
        raise ConfigError(f"{attribute.name} must be a finite number {bound}, got {value!r}")


def _positive_at_most(maximum: float) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        _positive(instance, attribute, value)
        assert isinstance(value, int | float)
        if value > maximum:
            raise ConfigError(f"{attribute.name} must be <= {maximum:.0f}, got {value!r}")

    return check


def _rate(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    _non_negative(instance, attribute, value)
    assert isinstance(value, int | float)
    if value > 1:
        raise ConfigError(f"{attribute.name} must be between 0 and 1, got {value!r}")


def _int_at_least(minimum: int, maximum: int | None = None) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        check_int(attribute.name, value, minimum, maximum)

    return check


def check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> None:
    """`ConfigError` naming ``name`` unless ``value`` is an int (not a bool) from ``minimum``
    to ``maximum``: the check of the configuration's ints and of the `Simulator`'s hooks' ones."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value!r}")


def check_text(name: str, value: object, *, optional: bool = False) -> None:
    """`ConfigError` naming ``name`` unless ``value`` is a non-empty str (or None, when
    ``optional``): the check of the configuration's strings and of the `Simulator`'s hooks' ones."""
    if optional and value is None:
        return
    if not isinstance(value, str) or not value:
        either = "None or " if optional else ""
        raise ConfigError(f"{name} must be {either}a non-empty string, got {value!r}")


def _int_range(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ConfigError(f"{attribute.name} must be a (low, high) tuple of ints, got {value!r}")
    low, high = value
    if low < 0 or low > high:
        raise ConfigError(f"{attribute.name} must satisfy 0 <= low <= high, got {value!r}")


def _host(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{attribute.name} must be a non-empty string, got {value!r}")
    if any(c in value for c in "/\\?#@ \t\r\n"):
        raise ConfigError(f"{attribute.name} must be a bare host[:port], got {value!r}")


def _origin(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        _ = parts and parts.port
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.path
        or parts.query
        or parts.fragment
        or any(c in str(value) for c in " \t\r\n\\")
    ):
        raise ConfigError(f"{attribute.name} must be None or an http(s)://host[:port] origin, got {value!r}")


def _non_empty_str(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    check_text(attribute.name, value)


def _bool(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{attribute.name} must be a bool, got {value!r}")


def _api_versions(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not value:
        raise ConfigError(
            f"{attribute.name} must name at least one of {', '.join(API_VERSIONS)} (a tuple), got {value!r}"
        )
    for version in value:
        if version not in API_VERSIONS:
            raise ConfigError(f"{attribute.name}: {version!r} is not one of {', '.join(API_VERSIONS)}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{attribute.name} must not repeat a version, got {value!r}")


_LONGEST_PERIOD = 7 * 24 * 3600
"""WebApiThrottle's longest period, a week: no `token_quota` period is longer."""


def _token_quota(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        not isinstance(value, tuple)
        or not value
        or not all(
            isinstance(pair, tuple)
            and len(pair) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
            for pair in value
        )
    ):
        raise ConfigError(
            f"{attribute.name} must be a non-empty tuple of (period seconds, limit) tuples of ints, "
            f"got {value!r}"
        )
    for period, limit in value:
        if not 1 <= period <= _LONGEST_PERIOD or limit < 1:
            raise ConfigError(
                f"{attribute.name} must have periods of 1 to {_LONGEST_PERIOD} seconds and limits >= 1, "
                f"got {value!r}"
            )
    periods = [period for period, _ in value]
    if periods != sorted(set(periods)):
        raise ConfigError(f"{attribute.name} must list its periods shortest first, each once, got {value!r}")


def _tuple_of_lists(value: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """A list as a tuple; anything else as it is, for `_api_versions` to refuse if it must (the
    parameter's type is what type checkers take ``api_versions=`` to be)."""
    return tuple(value) if isinstance(value, list) else value


def _epoch(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(f"{attribute.name} must be None or a timezone-aware datetime, got {value!r}")
    if value.year >= _LAST_EPOCH_YEAR:
        raise ConfigError(
            f"{attribute.name} must be before the year {_LAST_EPOCH_YEAR} (runs, next runs and tokens "
            f"up to a century long are dated after it), got {value.isoformat()}"
        )


_LAST_EPOCH_YEAR = 9000
"""An epoch from this year on is refused: what the simulator dates after it (next runs, a token's
``.expires`` up to `MAX_TOKEN_LIFETIME` ahead) must stay within ``datetime``'s year 9999."""


@attrs.frozen(kw_only=True)
class Faults:
    """Failure injection, applied to the requests of every served version (token endpoints included).

    Each request first gets `latency` seconds of delay (plus `latency_spike` with probability
    `latency_spike_rate`), then at most one outcome is drawn with the listed probabilities:
    a 500/502/503 (`error_rate`), a 429 with ``Retry-After`` (`rate_limit_rate`), a connection
    dropped mid-body (`drop_rate`), a body cut short of its ``Content-Length``
    (`truncate_rate`) or a 200 whose body is not JSON (`malformed_rate`); their sum must not
    exceed 1. `revoke_every` revokes all access tokens every N wall-clock seconds. All draws
    come from a ``random.Random(fault_seed)`` owned by the simulator instance.

    `token_throttle` turns on the v6+ token endpoints' WebApiThrottle limits per user name,
    `SimulatorConfig.token_quota` (by default a request a second, 5 a minute and 1500 an hour, in
    fixed windows on the simulator's clock): a request beyond one of them is answered 429 with
    ``Retry-After`` (1 for the second's, else the seconds left of the minute's or hour's window)
    and no body. It is a behaviour, not a random fault, and applies whatever the other settings
    are; v1 is never throttled.
    """

    latency: float = attrs.field(default=0.0, validator=_non_negative)
    latency_spike_rate: float = attrs.field(default=0.0, validator=_rate)
    latency_spike: float = attrs.field(default=0.5, validator=_non_negative)
    error_rate: float = attrs.field(default=0.0, validator=_rate)
    rate_limit_rate: float = attrs.field(default=0.0, validator=_rate)
    retry_after: float = attrs.field(default=1, validator=_non_negative)
    drop_rate: float = attrs.field(default=0.0, validator=_rate)
    truncate_rate: float = attrs.field(default=0.0, validator=_rate)
    malformed_rate: float = attrs.field(default=0.0, validator=_rate)
    revoke_every: float | None = attrs.field(default=None, validator=attrs.validators.optional(_positive))
    fault_seed: int = attrs.field(default=0, validator=_int_at_least(-(2**63)))
    token_throttle: bool = attrs.field(default=False, validator=_bool)

    def __attrs_post_init__(self) -> None:
        total = sum(getattr(self, name) for name in _OUTCOME_RATES)
        if total > 1 + 1e-9:
            raise ConfigError(f"the sum of {', '.join(_OUTCOME_RATES)} must not exceed 1, got {total}")

    @property
    def active(self) -> bool:
        """Whether any random fault, delay or revocation can happen at all (not `token_throttle`)."""
        return bool(
            self.latency
            or self.latency_spike_rate
            or self.revoke_every
            or any(getattr(self, name) for name in _OUTCOME_RATES)
        )


def _faults(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Faults):
        raise ConfigError(f"{attribute.name} must be a Faults instance, got {value!r}")


def _unauthorized_body(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ("message", "empty"):
        raise ConfigError(f"{attribute.name} must be 'message' or 'empty', got {value!r}")


@attrs.frozen(kw_only=True)
class SimulatorConfig:
    """What the simulated VBO/VB365 server holds, which API versions it serves and how it behaves.

    `api_versions` lists the versions served (any of ``v1``, ``v6``, ``v7``, ``v8``; all by
    default); every path of another version answers 404. All versions show the same state.

    Ranges are inclusive ``(low, high)`` tuples. Everything generated is a function of `seed`
    and `epoch`: the simulated wall-clock "now" when the simulator is built (a timezone-aware
    datetime; None, the default, means the real current UTC time truncated to the second, so
    history lies in the days before the real now and ``nextRun`` after it). Pin it in tests.
    `advertised_host` is written into every v1 href (``https://{advertised_host}/v1/...``) and
    is deliberately not the host clients connect to; v6+ hrefs are server-relative.
    `link_origin` (``http://127.0.0.1:4443``), when given, is written instead of
    ``https://{advertised_host}``: ``vbo-async simulate`` gives the URL it serves, so v1 hrefs
    lead back to it.
    `token_lifetime` is the seconds an access token is accepted after issue (at most a century:
    `MAX_TOKEN_LIFETIME`; its ``expires_in`` in whole seconds, cut down, at least 1);
    `refresh_token_lifetime` those of a refresh token (single use), None for 14 days or the access
    token's lifetime if longer. A bearer past its expiry is answered 401 as any refused one.
    `session_duration` is how many seconds (of the simulator's clock) a started job stays
    ``Running``. `run_schedules` runs each enabled job when its ``nextRun`` comes, as the
    server's scheduler does (a run missed while nothing asked the simulator anything is made
    once, at the latest time it was due): a simulator left running for days keeps fresh
    sessions, where otherwise every ``lastRun`` stays where it was generated and the jobs grow
    stale. Off by default, so that the state changes only by requests. `page_size` is the
    default ``limit`` of every paged answer (30, as v8 servers).
    `token_quota` sets the limits of the v6+ token throttle (`Faults.token_throttle`), as
    ``(period seconds, limit)`` pairs shortest period first (periods up to a week, WebApiThrottle's
    longest): by default the v6 server's ``((1, 1), (60, 5), (3600, 1500))``.

    About one job in ten has never run (``lastRun`` null, no sessions) whatever
    `sessions_per_job` says; the range applies to jobs that have run. When
    `mailboxes_per_job` starts at 0, about a quarter of the jobs back up all mailboxes
    (``allMailboxes: "true"``) and select none.
    """

    seed: int = attrs.field(default=0, validator=_int_at_least(-(2**63)))
    organizations: int = attrs.field(default=5, validator=_int_at_least(0))
    jobs_per_organization: tuple[int, int] = attrs.field(default=(2, 5), validator=_int_range)
    mailboxes_per_job: tuple[int, int] = attrs.field(default=(0, 70), validator=_int_range)
    sessions_per_job: tuple[int, int] = attrs.field(default=(1, 40), validator=_int_range)
    repositories: int = attrs.field(default=3, validator=_int_at_least(1))
    proxies: int = attrs.field(default=2, validator=_int_at_least(1))
    advertised_host: str = attrs.field(default="vbo-sim.east.local:4443", validator=_host)
    link_origin: str | None = attrs.field(default=None, validator=_origin)
    username: str = attrs.field(default="admin", validator=_non_empty_str)
    password: str = attrs.field(default="admin", validator=_non_empty_str, repr=False)
    token_lifetime: float = attrs.field(default=3600.0, validator=_positive_at_most(MAX_TOKEN_LIFETIME))
    refresh_token_lifetime: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(_positive)
    )
    session_duration: float = attrs.field(default=30.0, validator=_non_negative)
    run_schedules: bool = attrs.field(default=False, validator=_bool)
    page_size: int = attrs.field(default=30, validator=_int_at_least(1, 10_000))
    token_quota: TokenQuota = attrs.field(default=TOKEN_QUOTA, validator=_token_quota)
    unauthorized_body: Literal["message", "empty"] = attrs.field(
        default="message", validator=_unauthorized_body
    )
    faults: Faults = attrs.field(factory=Faults, validator=_faults)
    api_versions: tuple[str, ...] = attrs.field(
        default=API_VERSIONS, converter=_tuple_of_lists, validator=_api_versions
    )
    epoch: datetime | None = attrs.field(default=None, validator=_epoch)

    @property
    def origin(self) -> str:
        """The scheme and host of every absolute href: `link_origin`, else
        ``https://{advertised_host}``."""
        return self.link_origin or f"https://{self.advertised_host}"

    @property
    def base_url(self) -> str:
        """The URL prefix of every v1 href the server writes (``https://{advertised_host}/v1``)."""
        return f"{self.origin}/v1"
