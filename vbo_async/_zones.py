"""Times a server wrote without an offset: read as UTC, and marked so (`UNZONED`).

VB365 servers write their times in UTC (``...Z``, v6 on) or with an offset (v1); the documents
also show times without either (``2017-04-05T08:04:55``). Such a time names no instant: the
server's zone is not stated anywhere in the API (no field carries a time both with and without
its offset, and the ``Date`` header's clock cannot tell a local time from a UTC one that is hours
old), so it is read as UTC, the only reading that is right for some servers, and marked with
`UNZONED`, a UTC of its own: the same instant as `datetime.UTC`, equal to it and written alike
(``+00:00``), but telling whoever judges the time that it may be a local time, off by the
server's zone (a server west of UTC looks hours staler than it is, one east of it fresher).
Written out again (`to_wire`, `to_jsonable`, ``--json``), such a time has no offset either
(`as_sent`): ``+00:00`` would claim a zone the server never stated, and a time read back from
it would no longer be marked.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["UNZONED", "as_sent", "unzoned"]

_NAME = "UTC (no offset sent)"
UNZONED = dt.timezone(dt.timedelta(0), _NAME)
"""The zone of a time read without an offset: UTC, by another name."""


def unzoned(moment: object) -> bool:
    """Whether ``moment`` is a time the server sent without an offset (pure). By the zone's
    name, not its identity: a pickled or copied time gets a zone of its own, equal to UTC."""
    if not isinstance(moment, dt.datetime):
        return False
    zone = moment.tzinfo
    return zone is UNZONED or (isinstance(zone, dt.timezone) and zone.tzname(None) == _NAME)


def as_sent(moment: dt.datetime) -> str:
    """``moment`` in ISO 8601, without an offset when the server sent it without one (`unzoned`),
    else with its offset (pure)."""
    return moment.replace(tzinfo=None).isoformat() if unzoned(moment) else moment.isoformat()
