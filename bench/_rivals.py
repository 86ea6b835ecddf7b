"""The v1 and v8 jobs for msgspec and pydantic v2, as equivalent to vbo-async's models as each allows.

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

v8 (`pydantic_v8_adapter`, `msgspec_v8`) decodes the page object ``{offset, limit, results,
_links}`` with v8's job fields: ``backupType``, ``organizationId``, ``repositoryId``,
``lastBackup``, ``eTag``, ``backupWindowSettings``/``periodicallyWindowSettings`` windows and the
switches of the schedule, and the ``self``/``organization``/``backupRepository``/``jobsessions``/
``selectedItems``/``excludedItems``/``copyJob`` links (server-relative hrefs, kept as sent). v8
sends real booleans, so one strict msgspec model serves. Neither rival derives what vbo-async
derives from them (a job's ``proxy`` link through its repository, the ``jobsessions`` link the
server sends dead, rewritten to ``/v8/JobSessions?jobId=``).
"""

from __future__ import annotations

import datetime as dt

import msgspec
import pydantic
from pydantic.alias_generators import to_camel

__all__ = ["msgspec_lax", "msgspec_strict", "msgspec_v8", "pydantic_adapter", "pydantic_v8_adapter"]


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


# --- v8: the page object and v8's job --------------------------------------------------------------


class MsV8JobLinks(msgspec.Struct, frozen=True, rename="camel"):
    self_: MsLink | None = msgspec.field(default=None, name="self")
    organization: MsLink | None = None
    backup_repository: MsLink | None = None
    jobsessions: MsLink | None = None
    selected_items: MsLink | None = None
    excluded_items: MsLink | None = None
    copy_job: MsLink | None = None


class MsV8Window(msgspec.Struct, frozen=True, rename="camel"):
    backup_window: tuple[bool, ...] | None = None
    minute_offset: int | None = None


class MsV8SchedulePolicy(msgspec.Struct, frozen=True, rename="camel"):
    type: str | None = None
    periodically_every: str | None = None
    daily_type: str | None = None
    daily_time: dt.time | None = None
    schedule_enabled: bool | None = None
    backup_window_enabled: bool | None = None
    backup_window_settings: MsV8Window | None = None
    periodically_window_enabled: bool | None = None
    periodically_window_settings: MsV8Window | None = None
    periodically_offset_minutes: int | None = None
    retry_enabled: bool | None = None
    retry_number: int | None = None
    retry_wait_interval: int | None = None


class MsV8Job(msgspec.Struct, frozen=True, rename="camel"):
    id: str
    name: str | None = None
    description: str | None = None
    backup_type: str | None = None
    schedule_policy: MsV8SchedulePolicy | None = None
    organization_id: str | None = None
    repository_id: str | None = None
    last_run: dt.datetime | None = None
    next_run: dt.datetime | None = None
    last_backup: dt.datetime | None = None
    is_enabled: bool | None = None
    last_status: str | None = None
    e_tag: int | None = None
    links: MsV8JobLinks = msgspec.field(default_factory=MsV8JobLinks, name="_links")


class MsPageLinks(msgspec.Struct, frozen=True):
    self_: MsLink | None = msgspec.field(default=None, name="self")
    next: MsLink | None = None


class MsV8Page(msgspec.Struct, frozen=True):
    offset: int | None = None
    limit: int | None = None
    results: tuple[MsV8Job, ...] = ()
    links: MsPageLinks = msgspec.field(default_factory=MsPageLinks, name="_links")


msgspec_v8 = msgspec.json.Decoder(MsV8Page)
"""A v8 page of jobs, msgspec's default strict mode (v8 sends real booleans)."""


class PdV8JobLinks(_Model):
    self_: PdLink | None = pydantic.Field(default=None, alias="self")
    organization: PdLink | None = None
    backup_repository: PdLink | None = None
    jobsessions: PdLink | None = None
    selected_items: PdLink | None = None
    excluded_items: PdLink | None = None
    copy_job: PdLink | None = None


class PdV8Window(_Model):
    backup_window: tuple[bool, ...] | None = None
    minute_offset: int | None = None


class PdV8SchedulePolicy(_Model):
    type: str | None = None
    periodically_every: str | None = None
    daily_type: str | None = None
    daily_time: dt.time | None = None
    schedule_enabled: bool | None = None
    backup_window_enabled: bool | None = None
    backup_window_settings: PdV8Window | None = None
    periodically_window_enabled: bool | None = None
    periodically_window_settings: PdV8Window | None = None
    periodically_offset_minutes: int | None = None
    retry_enabled: bool | None = None
    retry_number: int | None = None
    retry_wait_interval: int | None = None


class PdV8Job(_Model):
    id: str
    name: str | None = None
    description: str | None = None
    backup_type: str | None = None
    schedule_policy: PdV8SchedulePolicy | None = None
    organization_id: str | None = None
    repository_id: str | None = None
    last_run: dt.datetime | None = None
    next_run: dt.datetime | None = None
    last_backup: dt.datetime | None = None
    is_enabled: bool | None = None
    last_status: str | None = None
    e_tag: int | None = None
    links: PdV8JobLinks = pydantic.Field(default_factory=PdV8JobLinks, alias="_links")


class PdPageLinks(_Model):
    self_: PdLink | None = pydantic.Field(default=None, alias="self")
    next: PdLink | None = None


class PdV8Page(_Model):
    offset: int | None = None
    limit: int | None = None
    results: tuple[PdV8Job, ...] = ()
    links: PdPageLinks = pydantic.Field(default_factory=PdPageLinks, alias="_links")


pydantic_v8_adapter: pydantic.TypeAdapter[PdV8Page] = pydantic.TypeAdapter(PdV8Page)
"""``TypeAdapter(PdV8Page)``: a v8 page of jobs, parsed and validated in one pass."""
