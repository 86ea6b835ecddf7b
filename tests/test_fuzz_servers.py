"""Fuzzing every value a server sends, in a sweep: one hostile tenant, healthy tenants beside it.

Hypothesis builds one hostile answer — a status, headers (``Retry-After``, ``Content-Type``,
``Content-Encoding``, ``Content-Length``, in any bytes), a body (random bytes, random JSON, a
real answer mutated, optionally compressed as its header says), an href (a page's ``next``, a
job's ``_links``) or a token answer (``access_token``, ``expires_in``, ``.expires``, ``.issued``,
``refresh_token``, numbers no float holds included) — and the endpoint that gives it: the token
endpoint, the organizations, the first page of jobs, the next page, the followed repository or the
job sessions. The hostile tenant's client gets it through ``httpx.MockTransport``; three healthy
tenants are on the simulator (in process). `poll_jobs` runs per tenant, batched or as it chooses,
sometimes judging health, and must end with:

- the healthy tenants' jobs exactly as the simulator holds them, without an error;
- the hostile tenant's result made of models, or its error a `VBOError` (link errors too);
- no other exception out of the sweep, and no task left over.

Examples: ``VBO_FUZZ_EXAMPLES`` (default 300, about 6 s); derandomized for CI unless
``VBO_PROPERTY_RANDOM=1``, like ``tests/test_properties.py``. `CASES_RUN` counts the examples run
(the report publishes it). What it found is pinned by the ``@example`` cases below.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import os
from collections.abc import Callable
from typing import Any

import attrs
import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vbo_async import HealthPolicy, RetryPolicy, VBOClient
from vbo_async.simulator import Simulator, SimulatorConfig

from .bombs import ENCODERS, encode
from .test_hostile_sweeps import HOSTILE_ORG as ORG
from .test_hostile_sweeps import Sweep, sweep_with

EXAMPLES = int(os.environ.get("VBO_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("VBO_PROPERTY_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CASES_RUN: collections.Counter[str] = collections.Counter()
"""Examples run, by endpoint and kind of hostile value (``"listing/raw"``), since import."""

EPOCH = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
JOB = "9e1c7b3a-5d24-4f86-b0a9-3c8e7f1d2a65"
JOB_2 = "2a4b6c8d-0e1f-4a3b-9c5d-7e9f1a3b5c7d"
REPOSITORY = "a740fb93-4de8-4de4-977e-765dd092748f"
BASE = "https://hostile.test:4443"
NO_WAIT = RetryPolicy(attempts=2, wait_initial=0, wait_max=0, wait_jitter=0, max_retry_after=0)
ENDPOINTS = ("token", "organizations", "listing", "next", "link", "sessions")
FAR_DATE = "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"
RETRIED = frozenset({429, 500, 502, 503, 504})


# --- the hostile server: healthy answers, one endpoint replaced ------------------------------------


def job(job_id: str) -> dict[str, Any]:
    return {
        "id": job_id,
        "name": f"Job {job_id[:4]}",
        "lastStatus": "Success",
        "isEnabled": True,
        "_links": {
            "self": {"href": f"/v1/Jobs/{job_id}"},
            "organization": {"href": f"/v1/Organizations/{ORG}"},
            "repository": {"href": f"/v1/BackupRepositories/{REPOSITORY}"},
            "jobsessions": {"href": f"/v1/Jobs/{job_id}/JobSessions"},
        },
    }


HEALTHY: dict[str, Any] = {
    "token": {"access_token": "tok-Fuzz-Access", "refresh_token": "tok-Fuzz-Refresh", "expires_in": 3600},
    "organizations": [{"id": ORG, "name": "Hostile Inc."}],
    "listing": {"results": [job(JOB)], "_links": {"next": {"href": "/v1/Jobs?page=2"}}},
    "next": {"results": [job(JOB_2)]},
    "link": {"id": REPOSITORY, "name": "Repository 1", "path": "C:\\Backups"},
    "sessions": [
        {
            "id": "5f0e4d3c-2b1a-4098-8765-4321fedcba98",
            "status": "Success",
            "creationTime": "2026-06-01T02:00:00Z",
            "endTime": "2026-06-01T02:10:00Z",
        }
    ],
}
"""What each endpoint of the hostile server answers when it is not the one being fuzzed."""


def endpoint_of(request: httpx.Request) -> str | None:
    path = request.url.path.lower()
    if path.endswith("/token"):
        return "token"
    if path == "/v1/organizations":
        return "organizations"
    if path in ("/v1/jobs", f"/v1/organizations/{ORG}/jobs"):
        return "next" if request.url.params.get("page") == "2" else "listing"
    if path.startswith("/v1/backuprepositories/"):
        return "link"
    if path.endswith("/jobsessions"):
        return "sessions"
    return None


@attrs.frozen
class Case:
    """One hostile answer, the endpoint that gives it and how the sweep runs."""

    endpoint: str
    kind: str
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    batch: bool | None = None
    health: bool = False
    refuse_first_token: bool = False
    """The first API request is answered 401, so a fuzzed token answer is also renewed."""

    def respond(self) -> httpx.Response:
        # A stream, never content=: httpx.Response(content=...) decodes itself at once.
        return httpx.Response(self.status, headers=list(self.headers), stream=httpx.ByteStream(self.body))


class HostileServer:
    """Answers like a healthy v1 server, except ``case.endpoint``, which answers ``case``."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.refused = False
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        endpoint = endpoint_of(request)
        if endpoint is None:
            return httpx.Response(404, json={"message": "no such resource"})
        if self.case.refuse_first_token and endpoint != "token" and not self.refused:
            self.refused = True
            return httpx.Response(401)
        if endpoint == self.case.endpoint:
            return self.case.respond()
        return httpx.Response(200, json=HEALTHY[endpoint])


# --- strategies -------------------------------------------------------------------------------------

latin1 = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
)
"""Header values as a server may send them (no CR, LF or NUL: those end the header on a socket)."""

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

http_dates = st.builds(
    "{}{:02d} {} {} {:02d}:{:02d}:{:02d} {}".format,
    st.sampled_from(["", "Mon, ", "Fri, "]),
    st.integers(0, 40),
    st.sampled_from(["Jan", "Dec", "Foo"]),
    st.integers(0, 9999) | st.integers(10**18, 10**25) | st.just(10**19),
    st.integers(0, 30),
    st.integers(0, 70),
    st.integers(0, 70),
    st.sampled_from(["GMT", "UTC", "+0000", "-2359", "+9999", "EST"]),
)
"""RFC 1123 dates of any year, 0 to 10^25 (``email.utils`` overflows on the large ones)."""
dates = http_dates | http_dates | st.datetimes().map(lambda when: when.strftime("%a, %d %b %Y %H:%M:%S GMT"))
"""Dates weigh half of every date-like value: they are where parsers overflow."""
retry_after = (
    dates
    | latin1
    | st.integers(-(10**6), 10**30).map(str)
    | st.sampled_from(
        ["0", "-1", "1e3", "inf", "nan", "²", "9" * 5000, FAR_DATE, "Fri, 31 Dec 9999 23:59:59 GMT"]
    )
)
content_encoding = (
    st.lists(
        st.sampled_from(
            ["gzip", "x-gzip", "deflate", "br", "zstd", "identity", "GZIP", " br ", "compress", ""]
        ),
        max_size=5,
    ).map(", ".join)
    | latin1
)
content_length = st.integers(-5, 10**20).map(str) | latin1
content_type = (
    st.sampled_from(["application/json", "text/html", "application/json; charset=utf-16", ""]) | latin1
)


@st.composite
def headers(draw: st.DrawFn, status: int) -> tuple[tuple[bytes, bytes], ...]:
    """Each of the four headers or not; ``Retry-After`` mostly where it is read (429, 5xx)."""
    chosen: list[tuple[bytes, bytes]] = []
    for name, values, odds in (
        (b"retry-after", retry_after, 4 if status in RETRIED else 2),
        (b"content-type", content_type, 2),
        (b"content-encoding", content_encoding, 2),
        (b"content-length", content_length, 2),
    ):
        if draw(st.integers(1, odds)) > 1:
            chosen.append((name, draw(values).encode("latin-1")))
    return tuple(chosen)


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` with a few of its parts replaced, dropped, added, retyped or stringified."""
    if isinstance(value, dict) and value and depth < 4:
        copy = dict(value)
        for key in draw(st.lists(st.sampled_from(sorted(copy)), max_size=3, unique=True)):
            action = draw(st.sampled_from(["mutate", "drop", "replace", "stringify"]))
            if action == "drop":
                del copy[key]
            elif action == "replace":
                copy[key] = draw(json_values)
            elif action == "stringify":
                copy[key] = json.dumps(copy[key])
            else:
                copy[key] = draw(mutated(copy[key], depth + 1))
        if draw(st.booleans()):
            copy[draw(st.text(max_size=10))] = draw(json_values)
        return copy
    if isinstance(value, list) and value and depth < 4:
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], draw(mutated(value[index], depth + 1)), *value[index + 1 :]]
    return draw(json_values | st.just(value))


hrefs = (
    st.text(max_size=60)
    | st.sampled_from(
        [
            "https:/\t/[x/v1/Jobs",
            "//evil.example/v1/Jobs",
            "/v1/../../x",
            "/v1/Jobs/%2e%2e/x",
            "/v1/Jobs/a\x01b",
            "http://[::1/v1/Jobs",
            "https://user:pw@evil/v1/Jobs?page=2",
            "/v8/Jobs?page=2",
            "/v1/Jobs?page=2&&&",
            "/V1/JOBS?PAGE=2",
            "",
            "/v1/",
            "\\v1\\Jobs",
            "/v1/Jobs?page=2#frag",
            "javascript:alert(1)//v1/Jobs",
        ]
    )
    | st.builds(
        lambda prefix, middle, suffix: f"{prefix}/v1/{middle}{suffix}",
        st.sampled_from(["", "https://x", "http://[", "//", "https:/\t/", "https://h:99999"]),
        st.text(st.characters(codec="utf-8"), max_size=20),
        st.sampled_from(["", "?page=2", "#x", "?%zz", "/..", "/%2F"]),
    )
)

raw_number = st.sampled_from(
    ["1e400", "-1e400", "9" * 5000, "-" + "9" * 5000, "0.001", "0", "-1", "1e-400", "3600", "NaN", "Infinity"]
)
token_fields = {
    "access_token": st.one_of(
        st.just('"tok-Fuzz-Access"'),
        st.just('"tok-Fuzz-Access"'),  # usable half the time, so the lifetimes matter
        json_values.map(json.dumps),
        st.text(max_size=30).map(json.dumps),
    ),
    "refresh_token": st.just('"tok-Fuzz-Refresh"') | json_values.map(json.dumps),
    "expires_in": raw_number
    | json_values.map(json.dumps)
    | st.sampled_from(["²", "٣", "9" * 5000, " 60 ", "0.001", "1e3"]).map(json.dumps),
    ".expires": (dates | retry_after | json_values).map(json.dumps),
    ".issued": (dates | retry_after | json_values).map(json.dumps),
}


@st.composite
def token_answer(draw: st.DrawFn) -> bytes:
    """A token answer's JSON text, each field present or not, numbers no float holds included."""
    fields = [
        f"{json.dumps(name)}: {draw(value)}"
        for name, value in token_fields.items()
        if draw(st.integers(0, 4))
    ]
    return ("{" + ", ".join(fields) + "}").encode()


@st.composite
def bodies(draw: st.DrawFn, endpoint: str) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["bytes", "json", "mutated"]))
    if kind == "bytes":
        return kind, draw(st.binary(max_size=600))
    if kind == "json":
        return kind, json.dumps(draw(json_values)).encode()
    return kind, json.dumps(draw(mutated(HEALTHY[endpoint]))).encode()


def _encoded(header_value: bytes, body: bytes) -> bytes:
    """``body`` compressed as ``Content-Encoding`` says, when every coding named is known."""
    names = [name.strip(" \t").lower() for name in header_value.decode("latin-1").split(",")]
    if all(name in ENCODERS or name in ("", "identity") for name in names):
        return encode(header_value.decode("latin-1"), body)
    return body


@st.composite
def cases(draw: st.DrawFn) -> Case:
    endpoint = draw(st.sampled_from(ENDPOINTS))
    choices = ["raw"]
    if endpoint in ("listing", "next", "link"):
        choices.append("href")
    if endpoint == "token":
        choices += ["token", "token"]  # a token answer's fields, twice as often as raw bytes
    kind = draw(st.sampled_from(choices))
    status = 200
    chosen_headers: tuple[tuple[bytes, bytes], ...] = ()
    if kind == "token":
        body = draw(token_answer())
    elif kind == "href":
        answer = json.loads(json.dumps(HEALTHY[endpoint]))
        href = draw(hrefs)
        if endpoint == "link" or draw(st.booleans()):
            target = answer if endpoint == "link" else answer["results"][0]
            target.setdefault("_links", {})[draw(st.sampled_from(["self", "repository", "organization"]))] = {
                "href": href
            }
        else:
            answer["_links"] = {"next": {"href": href}}
        body = json.dumps(answer).encode()
    else:
        status = draw(
            st.sampled_from([200, 200, 204, 302, 400, 401, 404, 429, 500, 502, 503, 504])
            | st.integers(100, 599)
        )
        chosen_headers = draw(headers(status))
        body_kind, body = draw(bodies(endpoint))
        kind = f"raw {body_kind}"
        encoding = dict(chosen_headers).get(b"content-encoding")
        if encoding is not None and draw(st.booleans()):
            body = _encoded(encoding, body)
    return Case(
        endpoint=endpoint,
        kind=kind,
        status=status,
        headers=chosen_headers,
        body=body,
        # Only a batched sweep lists the organizations.
        batch=True if endpoint == "organizations" else draw(st.sampled_from([None, True, False])),
        health=endpoint == "sessions" or draw(st.integers(0, 3)) == 0,
        refuse_first_token=endpoint == "token" and draw(st.booleans()),
    )


# --- the sweep ----------------------------------------------------------------------------------------

HEALTHY_SERVER: list[Simulator] = []
"""The healthy tenants' simulator, built once (it only gains tokens between cases)."""


def healthy_server() -> Simulator:
    if not HEALTHY_SERVER:
        HEALTHY_SERVER.append(Simulator(SimulatorConfig(seed=8, organizations=3, epoch=EPOCH)))
    return HEALTHY_SERVER[0]


async def sweep(case: Case) -> Sweep:
    """Sweep the hostile tenant and the healthy ones; `Sweep.check` what the module promises."""
    hostile = VBOClient(
        BASE,
        username="svc",
        password="pw",
        api_version="v1",
        transport=httpx.MockTransport(HostileServer(case)),
        retry=NO_WAIT,
    )
    health = HealthPolicy() if case.health else None
    swept = await sweep_with(hostile, batch=case.batch, health=health, simulator=healthy_server())
    swept.check()
    return swept


def check(case: Case) -> None:
    CASES_RUN[f"{case.endpoint}/{case.kind.split()[0]}"] += 1
    asyncio.run(sweep(case))


def raw(endpoint: str, status: int = 200, body: bytes = b"", **header: str) -> Case:
    pairs = tuple(
        (name.replace("_", "-").encode(), value.encode("latin-1")) for name, value in header.items()
    )
    return Case(endpoint=endpoint, kind="raw", status=status, headers=pairs, body=body)


@FUZZ
@given(case=cases())
@example(case=raw("listing", 503, retry_after=FAR_DATE))  # OverflowError, before the fix
@example(case=raw("token", 200, b'{"access_token": "a", ".expires": "' + FAR_DATE.encode() + b'"}'))
@example(case=raw("listing", 200, b"[]", content_encoding="compress"))  # UnsupportedEncoding escaped
@example(case=raw("link", 200, b"{}", content_encoding="gzip, gzip, gzip, gzip"))
@example(
    case=attrs.evolve(
        raw("listing", 200, b'{"results": [], "_links": {"next": {"href": "https:/\\t/[x/v1/Jobs"}}}'),
        batch=True,
    )
)
@example(case=raw("token", 200, b'{"access_token": "a", "expires_in": "\xc2\xb2"}'))
def test_every_hostile_answer_ends_in_models_or_a_vbo_error_for_its_tenant_only(case: Case) -> None:
    check(case)


def campaign(examples: int, *, derandomize: bool = True) -> collections.Counter[str]:
    """Run ``examples`` fuzz cases outside pytest (the report's figures): what ran, by endpoint
    and kind. A failing case raises, as in the test."""
    CASES_RUN.clear()
    run: Callable[[], None] = settings(FUZZ, max_examples=examples, derandomize=derandomize)(
        given(case=cases())(check)
    )
    run()
    return collections.Counter(CASES_RUN)
