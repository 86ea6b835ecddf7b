"""The v1 Job modelled for msgspec and pydantic v2, as equivalent to vbo-async's models as each allows.

Equivalent means: the same fields under the same wire names (camelCase, ``_links``), ``null``
accepted wherever vbo-async accepts it, timestamps as `datetime`, ``dailyTime`` as `time`, the
backup window as a tuple of booleans, and each link as an object with its ``href``.

What each library cannot do the same way, and how it is modelled here:

- String booleans (``"allMailboxes": "true"``). msgspec's default strict mode refuses a string
  for a ``bool`` field, so `msgspec_strict` declares those fields ``str | bool | None`` and hands
  the caller ``"true"`` (a string) to interpret. `msgspec_lax` declares them ``bool`` and decodes
  with ``strict=False``, msgspec's documented string-to-bool/int coercion. pydantic's default lax
  mode accepts ``"true"``/``"false"`` for ``bool`` fields.
- Status fields (``lastStatus``, ``type``...) are plain ``str`` in both: an `enum.Enum` would
  refuse the values newer servers invent, which vbo-async's open enums accept.
- Links are inert ``{href}`` objects: neither library can bind them to a client (vbo-async's are
  awaitable `Link` objects that know their navigator).
- vbo-async also reads numeric strings for integers and zone-less timestamps as UTC; the data
  here has neither, so the rivals are not asked to.
"""

from __future__ import annotations

import datetime as dt

import msgspec
import pydantic
from pydantic.alias_generators import to_camel

__all__ = ["msgspec_lax", "msgspec_strict", "pydantic_adapter"]


# --- msgspec, strict: string booleans as `str | bool` -------------------------------------------------


class MsLink(msgspec.Struct, frozen=True):
    href: str | None = None


class MsJobLinks(msgspec.Struct, frozen=True, rename="camel"):
    self_: MsLink | None = msgspec.field(default=None, name="self")
    organization: MsLink | None = None
    repository: MsLink | None = None
    proxy: MsLink | None = None
    selected_mailboxes: MsLink | None = None
    jobsessions: MsLink | None = None


class MsBackupWindow(msgspec.Struct, frozen=True, rename="camel"):
    backup_intervals_array: tuple[bool, ...] | None = None
    minute_offset: int | None = None


class MsSchedulePolicy(msgspec.Struct, frozen=True, rename="camel"):
    type: str | None = None
    periodically_every: str | None = None
    daily_type: str | None = None
    daily_time: dt.time | None = None
    backup_window: MsBackupWindow | None = None
    retry_enabled: str | bool | None = None
    retry_number: int | None = None
    retry_wait_interval: int | None = None


class MsMailboxLinks(msgspec.Struct, frozen=True):
    self_: MsLink | None = msgspec.field(default=None, name="self")
    organization: MsLink | None = None


class MsSelectedMailbox(msgspec.Struct, frozen=True, rename="camel"):
    id: str
    email: str | None = None
    name: str | None = None
    is_backed_up: str | bool | None = None
    links: MsMailboxLinks = msgspec.field(default_factory=MsMailboxLinks, name="_links")


class MsJob(msgspec.Struct, frozen=True, rename="camel"):
    id: str
    name: str | None = None
    description: str | None = None
    all_mailboxes: str | bool | None = None
    last_status: str | None = None
    last_run: dt.datetime | None = None
    next_run: dt.datetime | None = None
    is_enabled: str | bool | None = None
    schedule_policy: MsSchedulePolicy | None = None
    proxy_id: str | None = None
    repository_id: str | None = None
    is_run: str | bool | None = None
    selected_mailboxes: tuple[MsSelectedMailbox, ...] | None = None
    excluded_mailboxes: tuple[MsSelectedMailbox, ...] | None = None
    links: MsJobLinks = msgspec.field(default_factory=MsJobLinks, name="_links")


# --- msgspec, lax: `bool` fields decoded with strict=False ------------------------------------------


class MsLaxSchedulePolicy(msgspec.Struct, frozen=True, rename="camel"):
    type: str | None = None
    periodically_every: str | None = None
    daily_type: str | None = None
    daily_time: dt.time | None = None
    backup_window: MsBackupWindow | None = None
    retry_enabled: bool | None = None
    retry_number: int | None = None
    retry_wait_interval: int | None = None


class MsLaxSelectedMailbox(msgspec.Struct, frozen=True, rename="camel"):
    id: str
    email: str | None = None
    name: str | None = None
    is_backed_up: bool | None = None
    links: MsMailboxLinks = msgspec.field(default_factory=MsMailboxLinks, name="_links")


class MsLaxJob(msgspec.Struct, frozen=True, rename="camel"):
    id: str
    name: str | None = None
    description: str | None = None
    all_mailboxes: bool | None = None
    last_status: str | None = None
    last_run: dt.datetime | None = None
    next_run: dt.datetime | None = None
    is_enabled: bool | None = None
    schedule_policy: MsLaxSchedulePolicy | None = None
    proxy_id: str | None = None
    repository_id: str | None = None
    is_run: bool | None = None
    selected_mailboxes: tuple[MsLaxSelectedMailbox, ...] | None = None
    excluded_mailboxes: tuple[MsLaxSelectedMailbox, ...] | None = None
    links: MsJobLinks = msgspec.field(default_factory=MsJobLinks, name="_links")


msgspec_strict = msgspec.json.Decoder(list[MsJob])
"""``list[MsJob]`` in msgspec's default strict mode (string booleans kept as strings)."""

msgspec_lax = msgspec.json.Decoder(list[MsLaxJob], strict=False)
"""``list[MsLaxJob]`` with ``strict=False`` (``"true"`` becomes ``True``)."""


# --- pydantic v2: aliases and its default lax mode ----------------------------------------------------


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class PdLink(_Model):
    href: str | None = None


class PdJobLinks(_Model):
    self_: PdLink | None = pydantic.Field(default=None, alias="self")
    organization: PdLink | None = None
    repository: PdLink | None = None
    proxy: PdLink | None = None
    selected_mailboxes: PdLink | None = None
    jobsessions: PdLink | None = None


class PdBackupWindow(_Model):
    backup_intervals_array: tuple[bool, ...] | None = None
    minute_offset: int | None = None


class PdSchedulePolicy(_Model):
    type: str | None = None
    periodically_every: str | None = None
    daily_type: str | None = None
    daily_time: dt.time | None = None
    backup_window: PdBackupWindow | None = None
    retry_enabled: bool | None = None
    retry_number: int | None = None
    retry_wait_interval: int | None = None


class PdMailboxLinks(_Model):
    self_: PdLink | None = pydantic.Field(default=None, alias="self")
    organization: PdLink | None = None


class PdSelectedMailbox(_Model):
    id: str
    email: str | None = None
    name: str | None = None
    is_backed_up: bool | None = None
    links: PdMailboxLinks = pydantic.Field(default_factory=PdMailboxLinks, alias="_links")


class PdJob(_Model):
    id: str
    name: str | None = None
    description: str | None = None
    all_mailboxes: bool | None = None
    last_status: str | None = None
    last_run: dt.datetime | None = None
    next_run: dt.datetime | None = None
    is_enabled: bool | None = None
    schedule_policy: PdSchedulePolicy | None = None
    proxy_id: str | None = None
    repository_id: str | None = None
    is_run: bool | None = None
    selected_mailboxes: tuple[PdSelectedMailbox, ...] | None = None
    excluded_mailboxes: tuple[PdSelectedMailbox, ...] | None = None
    links: PdJobLinks = pydantic.Field(default_factory=PdJobLinks, alias="_links")


pydantic_adapter: pydantic.TypeAdapter[list[PdJob]] = pydantic.TypeAdapter(list[PdJob])
"""``TypeAdapter(list[PdJob])``: ``validate_json(bytes)`` parses and validates in one pass."""
