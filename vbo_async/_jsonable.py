"""`to_jsonable`: models as JSON-ready data for web backends (snake_case, ISO times, link hrefs).

``to_wire`` gives a model back in its API version's own wire shape; this gives it in the model's
shape, which is what an application serves: the same keys on every API version.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Mapping
from typing import Any

import attrs

from ._exceptions import ConfigError
from ._lenient import NumberText
from ._links import Link, ThroughLink
from ._models import HourFlags
from ._zones import as_sent

__all__ = ["to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """``value`` (a model, a list, tuple or dict of models, or plain data) as JSON-ready data.

    Models become dicts with their snake_case field names (every field, ``None`` included, so
    each object has the same keys); datetimes and times become ISO 8601 strings (a time the
    server sent without an offset without one); enums their
    value (`HealthState` its name); links their href: the server's, or the one the client built
    in its place (a v7+ job's ``jobsessions``, ``/v8/JobSessions?jobId=...``, where the server's is
    dead), with any secret in it masked (a link reached in two steps, such as a v6+ job's proxy
    through its repository, has none of its own: ``None``); tuples
    and a window's `HourFlags` become lists. A mapping's keys are written as the same values
    are (strings, numbers, enums, times; True, False and None as JSON spells them). Anything
    else raises `ConfigError` naming its type, as do a key of another type, two keys written
    alike, a float that is not finite (NaN, infinity: no JSON number), and data nested more
    deeply than Python's recursion goes (raw JSON may be 1024 levels).

    ```python
    from starlette.responses import JSONResponse

    return JSONResponse(to_jsonable(await vbo.organization_jobs(org_id)))
    ```
    """
    try:
        return _convert(value, "$")
    except RecursionError:
        error = ConfigError("to_jsonable() cannot convert data nested too deeply")
    raise error  # outside the handler: no RecursionError as its context


def _convert(value: Any, path: str) -> Any:
    if value is None or value is True or value is False:
        return value
    if isinstance(value, enum.Enum):
        return value.name if isinstance(value, enum.IntEnum) else str(value.value)
    if value.__class__ is NumberText:  # raw JSON's number no double holds: the plain text
        return str(value)
    if isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):  # json.dumps would write NaN, which no JSON parser reads
            raise ConfigError(
                f"to_jsonable() cannot write {value!r}, which JSON has no number for (at {path})"
            )
        return value
    if isinstance(value, dt.datetime):
        return as_sent(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Link):
        return None if isinstance(value, ThroughLink) else value.shown_href()
    if isinstance(value, list | tuple | HourFlags):
        return [_convert(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        converted: dict[str, Any] = {}
        for key, item in value.items():
            name = key if key.__class__ is str else _key(key, path)
            if name in converted:
                raise ConfigError(f"to_jsonable() would write two keys as {name!r} (at {path})")
            converted[name] = _convert(item, f"{path}.{name}")
        return converted
    if attrs.has(type(value)) and type(value).__module__.startswith("vbo_async."):
        names = (field.name for field in attrs.fields(type(value)))
        return {name: _convert(getattr(value, name), f"{path}.{name}") for name in names}
    raise ConfigError(f"to_jsonable() cannot convert a {type(value).__name__} (at {path})")


def _key(key: Any, path: str) -> str:
    """A mapping's key as JSON's string key: a string, number, enum, time, True, False or None
    written as the same value is (True, False and None as JSON spells them)."""
    if key is None or key is True or key is False:
        return "null" if key is None else "true" if key else "false"
    if isinstance(key, enum.Enum | str | int | float | dt.datetime | dt.date | dt.time):
        converted = _convert(key, path)  # a float JSON has no number for: its ConfigError
        try:
            return str(converted)
        except ValueError:  # an int of more digits than Python writes (sys.get_int_max_str_digits)
            raise ConfigError(f"to_jsonable() cannot write an int that long as a key (at {path})") from None
    raise ConfigError(f"to_jsonable() cannot write a {type(key).__name__} key (at {path})")
