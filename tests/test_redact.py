"""Errors: secrets never leave, even when a server echoes them (vbo_async._redact, Secret, ApiRoot)."""

from __future__ import annotations

import ast
import copy
import html
import html.entities
import json
import os
import pickle
import re
from urllib.parse import quote, quote_plus, urlencode

import orjson
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from vbo_async import ConfigError, NotFoundError
from vbo_async._auth import Secret
from vbo_async._redact import ANYWHERE, MASK, Redactor, _UrlRuns, encoded_forms, redact_url
from vbo_async._status import read_error_body
from vbo_async._urls import ApiRoot, scrub_error

PROPERTY = settings(
    max_examples=int(os.environ.get("VBO_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    derandomize=os.environ.get("VBO_PROPERTY_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

PASSWORD = "S3cr3t-PW"
ACCESS = "eyJhbGciOi.access+token/with=padding"
REFRESH = "refresh'token\"<with>&\\odd é✓ chars%41"


def lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda match: match.group().lower(), text)


def reference_forms(secret: str) -> set[str]:
    """The encodings the brief names, computed here independently of the module."""
    url = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    url |= {lower_hex(form) for form in url}
    forms = set(url)
    for form in url:
        forms.add(json.dumps(form)[1:-1])
        forms.add(json.dumps(form, ensure_ascii=False)[1:-1])
        forms.add(orjson.dumps(form).decode()[1:-1])
        forms.add(html.escape(form))
        forms.add(html.escape(form, quote=False))
        forms.add(html.escape(json.dumps(form)[1:-1]))
    return {form for form in forms if form}


# --- Redactor -------------------------------------------------------------------------------------


def test_an_echoed_token_form_is_scrubbed() -> None:
    """The 400 page of a token endpoint echoing the form it was sent."""
    body = "Bad request: " + urlencode({"grant_type": "password", "username": "svc", "password": PASSWORD})
    scrubbed = Redactor(PASSWORD).scrub(body)
    assert PASSWORD not in scrubbed
    assert scrubbed.endswith("password=***")


def test_an_echoed_authorization_header_is_scrubbed() -> None:
    page = f"<html><pre>Authorization: Bearer {html.escape(ACCESS)}</pre></html>"
    scrubbed = Redactor(PASSWORD, ACCESS, REFRESH).scrub(page)
    assert scrubbed == "<html><pre>Authorization: Bearer ***</pre></html>"


@pytest.mark.parametrize("secret", [PASSWORD, ACCESS, REFRESH, "pä ss+wörd/😀", "100%+\"'\\"])
def test_every_encoded_form_is_scrubbed(secret: str) -> None:
    redactor = Redactor(secret)
    for form in reference_forms(secret):
        scrubbed = redactor.scrub(f"before {form} after")
        assert scrubbed == f"before {MASK} after", form


@pytest.mark.parametrize(
    ("form", "secret"),
    [
        ("pa\\u002Bss\\u0027word", "pa+ss'word"),  # .NET's System.Text.Json, the VB365 server's own
        ("pa\\u002bss\\u0027word", "pa+ss'word"),
        ("p\\/w\\/d", "p/w/d"),  # a serializer escaping slashes
        ("caf&#233;!", "café!"),  # an HTML encoder writing numeric references
        ("it&#39;s-a-pw", "it's-a-pw"),
        ("%e2%9c%93-check", "✓-check"),
        ("%E2%9C%93-check", "✓-check"),
        ("S3cr3t!%2fx+y(1)*", "S3cr3t!/x y(1)*"),  # .NET's HttpUtility.UrlEncode: !()* left as is
        ("S3cr3t!%2Fx+y(1)*", "S3cr3t!/x y(1)*"),  # .NET's WebUtility.UrlEncode
        ("S3cr3t!%2Fx%20y(1)*'", "S3cr3t!/x y(1)*'"),  # JavaScript's encodeURIComponent
    ],
)
def test_server_style_escapes_are_scrubbed(form: str, secret: str) -> None:
    assert Redactor(secret).scrub(f"[{form}]") == "[***]"


def test_overlapping_secrets_are_masked_as_one_span() -> None:
    redactor = Redactor("abcdef", "defghi", "cd")
    assert redactor.scrub("xx abcdefghi yy") == "xx *** yy"
    assert redactor.scrub("abcdefabcdef") == "***"  # touching occurrences too
    assert redactor.scrub("a cd b") == "a *** b"


def test_empty_and_missing_secrets_are_ignored() -> None:
    redactor = Redactor("", None, "")
    text = "nothing to hide here"
    assert not redactor
    assert redactor.scrub(text) is text
    assert repr(redactor) == "Redactor(0 secrets)"
    assert encoded_forms("") == frozenset()


def test_nothing_to_hide_returns_the_text_itself() -> None:
    text = "HTTP 500: the database is busy " * 5000
    assert Redactor(PASSWORD, ACCESS, REFRESH).scrub(text) is text


def test_a_redactor_is_immutable_and_never_shows_or_pickles_its_secrets() -> None:
    redactor = Redactor(PASSWORD, ACCESS)
    with pytest.raises(AttributeError):
        redactor._forms = ()  # type: ignore[misc]
    assert PASSWORD not in repr(redactor)
    assert repr(redactor) == "Redactor(2 secrets)"
    data = pickle.dumps(redactor)
    assert PASSWORD.encode() not in data
    assert ACCESS.encode() not in data
    assert not pickle.loads(data)


def test_a_secret_made_of_asterisks_never_survives_the_mask() -> None:
    redactor = Redactor("a***", "****")
    for text in ["x=a***", "a*** a***", "a****", "*a***", "***a***"]:
        scrubbed = redactor.scrub(text)
        assert "a***" not in scrubbed
        assert "****" not in scrubbed


secrets = st.text(min_size=1, max_size=24) | st.text(
    alphabet=st.sampled_from("aZ9%+*'\"\\/&<>=?#@ é✓😀\t"), min_size=1, max_size=16
)


SEPARATORS = [
    " ",
    "=",
    ":",
    '"',
    "'",
    "&",
    "|",
    ",",
    ";",
    "(",
    ")",
    "<",
    ">",
    "\n",
    "%3D",
    "%7C",
    "%22",
    "\\u0022",
    '\\"',
    "\\n",
    "&quot;",
    "&#34;",
    "+",
    "*",
    "!",
    "?",
    "#",
    "[",
    "]",
    "{",
    "}",
]
"""What a server writes around a value it echoes (a form, a query, JSON, HTML, a header, a log line)."""


@PROPERTY
@given(
    secret_list=st.lists(secrets, min_size=1, max_size=3),
    fillers=st.lists(st.text(max_size=12), min_size=1, max_size=6),
    separator=st.sampled_from(SEPARATORS),
    data=st.data(),
)
def test_no_secret_or_encoded_form_survives(
    secret_list: list[str], fillers: list[str], separator: str, data: st.DataObject
) -> None:
    """Long secrets wherever they are, short ones where they stand alone (between separators)."""
    around = "" if all(len(secret) >= ANYWHERE for secret in secret_list) else separator
    forms = sorted({form for secret in secret_list for form in reference_forms(secret)})
    embedded = data.draw(st.lists(st.sampled_from(forms), min_size=1, max_size=6))
    text = "".join(
        filler + around + form + around
        for filler, form in zip(fillers * len(embedded), embedded, strict=False)
    )
    scrubbed = Redactor(*secret_list).scrub(text)
    for form in forms:
        if len(form) >= 4:
            assert around + form + around not in scrubbed


@PROPERTY
@given(
    secret=st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="|"), min_size=ANYWHERE, max_size=20
    ),
    before=st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    after=st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    kind=st.sampled_from([bytes, bytearray]),
)
def test_a_secret_in_a_line_quoted_as_a_bytes_literal_is_masked(
    secret: str, before: str, after: str, kind: type[bytes] | type[bytearray]
) -> None:
    """h11 quotes a line it refuses as ``bytearray(b'...')``: non-ASCII bytes as ``\\xNN``, a
    backslash doubled, a quote escaped as the literal's quotes require. The scrubbed literal still
    reads as bytes (the mask replaces whole escapes), and they hold the secret no more."""
    # Set apart by ``|``: an escape ending just before the secret (``\\x80`` then ``0...``) cannot
    # begin a match of a secret repeating its first character, which would cut the escape.
    quoted = repr(kind(f"{before}|{secret}|{after}".encode()))
    scrubbed = Redactor(secret).scrub(quoted)
    literal = scrubbed.removeprefix("bytearray(").removesuffix(")")
    assert secret.encode() not in ast.literal_eval(literal)
    assert MASK in scrubbed


@pytest.mark.parametrize(
    "password",
    ["Winter2024&Blue!Sky", "Pä%ss+word 2024", "plain-password-2024", "correct horse battery staple"],
)
def test_a_token_form_quoted_again_by_the_server_shows_no_password(password: str) -> None:
    """A token endpoint answering ``invalid form: `` and the form it was sent percent-encoded
    once more (``password%3DWinter2024%2526Blue%2521Sky``): a password holding ``&``, ``!``, ``%``
    or a space was not masked in that form, nor a passphrase whose only special characters are
    spaces (sent as ``+``, quoted again as ``%2B``: no ``%`` in its form once encoded)."""
    form = f"grant_type=password&username=svc&password={quote_plus(password)}"
    for echoed in (quote(form, safe=""), lower_hex(quote(form, safe=""))):
        scrubbed = Redactor(password).scrub(f"invalid form: {echoed}")
        assert scrubbed.lower().endswith("password%3d***"), scrubbed


def test_every_form_of_overlapping_secrets_in_one_text_is_masked() -> None:
    secret_list = ["abcd", "cdef", "p+w'd", "abcdefgh", "efghijkl"]
    forms = sorted({form for secret in secret_list for form in reference_forms(secret)})
    scrubbed = Redactor(*secret_list).scrub(" ".join(forms))
    assert scrubbed.replace(MASK, "").replace(" ", "") == ""
    assert all(form not in scrubbed for form in forms if len(form) >= 4)


ECHO_PREFIX = "S3cr3t-PW"
ECHOED_PASSWORDS = [ECHO_PREFIX, ECHO_PREFIX + " ", ECHO_PREFIX + '+/ä"&=%\\ ~é!()*', ECHO_PREFIX + "\t\n"]
"""Every encoded form of these starts with the prefix, so finding it finds a cut form too."""
BODIES = {
    "text": lambda text: ("text/plain", text.encode()),
    "JSON message": lambda text: ("application/json", orjson.dumps({"message": text})),
    "JSON error_description": lambda text: (
        "application/json",
        json.dumps({"error": "invalid_grant", "error_description": text}).encode(),
    ),
    "JSON errorCode": lambda text: ("application/json", orjson.dumps({"errorCode": text, "message": "x"})),
    "JSON string": lambda text: ("application/json", json.dumps(text, ensure_ascii=False).encode()),
    "HTML title": lambda text: ("text/html", f"<html><title>{text}</title></html>".encode()),
    "HTML body": lambda text: ("text/html", f"<html><body><p>{text}</p></body></html>".encode()),
    "text in UTF-16, its byte order mark": lambda text: ("text/plain", text.encode("utf-16")),
    "text in UTF-16LE, its charset": lambda text: ("text/plain; charset=utf-16le", text.encode("utf-16-le")),
    "text in UTF-32": lambda text: ("text/plain", text.encode("utf-32")),
    "JSON in UTF-16 said nowhere": lambda text: (
        "application/json",
        orjson.dumps({"message": text}).decode().encode("utf-16-le"),
    ),
}
"""Error bodies quoting ``text`` (an HTML page quotes it as given: the HTML-escaped forms are
among the forms drawn). A body in UTF-16 or UTF-32 read as UTF-8 had a NUL between the
characters of an echoed secret, which no scrub found, and which the message showed as ``\x00``."""


@PROPERTY
@given(
    password=st.sampled_from(ECHOED_PASSWORDS),
    before=st.text(max_size=80),
    after=st.text(max_size=80),
    body=st.sampled_from(sorted(BODIES)),
    pick=st.integers(min_value=0, max_value=10_000),
)
@example(password=ECHOED_PASSWORDS[1], before="wrong password ", after="", body="text", pick=0)
@example(password=ECHOED_PASSWORDS[1], before="wrong password ", after="", body="JSON message", pick=0)
def test_an_error_body_echoing_the_password_anywhere_shows_none_of_it(
    password: str, before: str, after: str, body: str, pick: int
) -> None:
    """The whole path from a server's error body to the message an error keeps (strip, JSON,
    HTML title or tags, whitespace, cut), with the password in any encoded form at any place."""
    forms = sorted(reference_forms(password) | encoded_forms(password))
    content_type, raw = BODIES[body](before + forms[pick % len(forms)] + after)
    message, code = read_error_body(raw, content_type, Redactor(password).scrub)
    # Read with a NUL between its characters (UTF-16 as UTF-8), shown as "\x00": no less a leak.
    assert ECHO_PREFIX not in f"{message} {code}".replace("\\x00", "")


@pytest.mark.parametrize("body", [name for name in BODIES if "UTF-" in name])
def test_an_error_body_in_utf16_or_utf32_is_read_as_text_and_scrubbed(body: str) -> None:
    content_type, raw = BODIES[body](f"wrong password {ECHOED_PASSWORDS[2]} for svc")
    message, _ = read_error_body(raw, content_type, Redactor(ECHOED_PASSWORDS[2]).scrub)
    assert message == "wrong password *** for svc"


READ = 256 * 1024
"""What `read_error_body` reads of a body (its ``_ERROR_READ``)."""
ECHOED = b"wrong password "
PADDED_ECHOES = {
    "HTML title at the end": lambda pad: ("text/html", b"<html><body>" + b"a" * pad + b"<title>" + ECHOED),
    "HTML tags before it": lambda pad: ("text/html", b"<p>" * (pad // 3) + b" " * (pad % 3) + ECHOED),
    "text after blank space": lambda pad: ("text/plain", b"error" + b" " * pad + ECHOED),
}
"""Error bodies whose echo of the password comes only after ``pad`` bytes (a page's markup or
blank space, which the message leaves out)."""


@pytest.mark.parametrize("cut", [2, 6, 12, 20])
@pytest.mark.parametrize("shape", list(PADDED_ECHOES))
def test_a_password_echoed_across_the_end_of_what_is_read_shows_no_part_of_it(shape: str, cut: int) -> None:
    """Only the first 256 KiB of an error body are read: a password echoed across that point was
    cut before it was scrubbed, so the part before the cut, no longer the password, was kept
    (``wrong password S3cr3t-PW-lo``) where the message shows the end of what was read: an HTML
    title, text after tags or blank space."""
    password = ECHO_PREFIX + "-long-password"
    content_type, head = PADDED_ECHOES[shape](0)
    content_type, head = PADDED_ECHOES[shape](READ - cut - len(head))
    body = head + password.encode() + b" (1 attempt)" + b" " * 1000
    assert len(head) + cut == READ  # the read ends inside the password, after ``cut`` characters
    message, _ = read_error_body(body, content_type, Redactor(password).scrub)
    assert message is not None
    assert "wrong password" in message
    assert password[:cut] not in message


@PROPERTY
@given(secret=secrets, text=st.text(max_size=200))
def test_text_without_a_secret_is_left_alone(secret: str, text: str) -> None:
    assume(not any(form in text for form in encoded_forms(secret)))
    assert Redactor(secret).scrub(text) == text


# --- redact_url -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://svc:S3cr3t-PW@vbo01:4443", "https://***@vbo01:4443"),
        ("https:/svc:S3cr3t-PW@vbo01:4443", "https:/***@vbo01:4443"),
        ("https:svc:S3cr3t-PW@vbo01:4443", "https:***@vbo01:4443"),
        ("https:///svc:S3cr3t-PW@vbo01", "https:///***@vbo01"),
        ("https:\\\\svc:S3cr3t-PW@vbo01", "https:\\\\***@vbo01"),
        ("svc:S3cr3t-PW@vbo01:4443", "svc:***@vbo01:4443"),
        ("//svc:S3cr3t-PW@vbo01", "//***@vbo01"),
        ("https://svc:S3cr3t/PW@vbo01/v1", "https://***@vbo01/v1"),
        ("https://svc:S3cr@t-PW@vbo01", "https://***@vbo01"),
        ("https://vbo01:4443/v1", "https://vbo01:4443/v1"),
        ("", ""),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@PROPERTY
@given(
    scheme=st.sampled_from(["https:", "http:", "HTTPS:", "", "ftp:", "https:\\"]),
    slashes=st.sampled_from(["", "/", "//", "///", "\\\\"]),
    user=st.text(max_size=10).filter(lambda text: "@" not in text),
    password=st.text(min_size=4, max_size=20),
    host=st.text(max_size=20).filter(lambda text: "@" not in text),
)
def test_redact_url_never_echoes_a_password(
    scheme: str, slashes: str, user: str, password: str, host: str
) -> None:
    assume(password not in scheme + slashes + user and password not in host)
    assert password not in redact_url(f"{scheme}{slashes}{user}:{password}@{host}")


# --- ConfigError for base URLs --------------------------------------------------------------------

MALFORMED = [
    "https:/svc:S3cr3t-PW@vbo01:4443",
    "https:///svc:S3cr3t-PW@vbo01:4443",
    "svc:S3cr3t-PW@vbo01:4443",
    "https://svc:S3cr3t-PW/x@vbo01:4443",
    "https://svc:S3cr3t-PW@vbo01:4443",
    "https://svc:S3cr3t-PW@",
    "ftp://svc:S3cr3t-PW@vbo01",
    "https://svc:S3cr3t-PW@vbo01:4443/../x",
]


@pytest.mark.parametrize("url", MALFORMED)
def test_a_base_url_error_never_echoes_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ApiRoot(url, "v1")
    error = caught.value
    for shown in (str(error), repr(error), repr(error.args), error.message):
        assert "S3cr3t" not in shown
    assert b"S3cr3t" not in pickle.dumps(error)
    assert "S3cr3t" not in str(pickle.loads(pickle.dumps(error)))


# --- Secret ---------------------------------------------------------------------------------------


def test_a_secret_never_pickles_its_value() -> None:
    secret = Secret(PASSWORD)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(secret, protocol=protocol)
        assert PASSWORD.encode() not in data
        restored = pickle.loads(data)
        assert isinstance(restored, Secret)
        assert repr(restored) == "Secret('***')"
        with pytest.raises(ConfigError, match="never pickled"):
            restored.reveal()


def test_a_secret_inside_a_pickled_error_stays_out() -> None:
    error = ValueError("login failed", Secret(PASSWORD))
    data = pickle.dumps(error)
    assert PASSWORD.encode() not in data
    assert PASSWORD not in str(pickle.loads(data))


def test_a_secret_still_copies() -> None:
    secret = Secret(PASSWORD)
    assert copy.copy(secret).reveal() == PASSWORD
    assert copy.deepcopy(secret).reveal() == PASSWORD
    assert copy.deepcopy({"password": secret})["password"].reveal() == PASSWORD
    assert PASSWORD not in str(secret) + repr(secret)


def test_scrub_error_scrubs_the_url_an_error_names_in_place() -> None:
    scrub = Redactor(PASSWORD, ACCESS).scrub
    url = f"https://vbo01/v1/BackupRepositories/r1?sig={quote(ACCESS, safe='')}"
    error = NotFoundError(f"no repository at {url}", status_code=404, method="GET", url=url)
    scrub_error(error, scrub)
    assert error.url == "https://vbo01/v1/BackupRepositories/r1?sig=***"
    assert error.args == (error.message,)
    assert error.message == f"no repository at {error.url}"
    assert quote(ACCESS, safe="") not in str(error) + repr(error.args)


def test_scrub_error_leaves_an_error_whose_url_holds_none_untouched() -> None:
    scrub = Redactor("a").scrub  # a degenerate secret: a scrubbed message would lose every "a"
    error = NotFoundError("Job was not found", status_code=404, method="GET", url="https://vbo01/v1/Jobs/j1")
    scrub_error(error, scrub)
    assert str(error) == "HTTP 404: Job was not found (GET https://vbo01/v1/Jobs/j1)"


# --- short secrets: masked where they stand alone, never inside other words --------------------


@pytest.mark.parametrize(
    ("password", "text"),
    [
        ("v8", "HTTP 500: the database is busy (GET https://vbo01:4443/v8/Jobs?offset=0)"),
        ("Jobs", "HTTP 500: the database is busy (GET https://vbo01:4443/v8/Jobs?offset=0)"),
        ("Jobs", "href '/v8/Jobs/j1' names no resource"),
        ("admin", "the administrator account is locked (GET https://vbo01/v8/Organizations)"),
        ("a", "the database is busy; try again later"),
        ("pw", "HTTP 503: the service is paused (GET https://vbo01/v8/Jobs/pw1x)"),
        ("8", "GET https://vbo01:4443/v8/Jobs: HTTP 408"),
    ],
)
def test_a_short_password_leaves_the_words_it_is_part_of_alone(password: str, text: str) -> None:
    """A password of a few characters, or a common word, is found inside many unrelated words and
    URLs; masking it there made messages useless ("GET https://vbo01:4443/***/Jobs",
    "the ***dministr***tor") while hiding nothing."""
    assert Redactor(password).scrub(text) == text


@pytest.mark.parametrize(
    ("password", "echo", "expected"),
    [
        (
            "admin",
            "grant_type=password&username=svc&password=admin",
            "grant_type=password&username=svc&password=***",
        ),
        ("admin", "password=admin&client_id=x", "password=***&client_id=x"),
        ("a", "password=a", "password=***"),
        ("a", 'bad form {"password":"a","username":"svc"}', 'bad form {"password":"***","username":"svc"}'),
        ("v8", "Authorization: Bearer v8", "Authorization: Bearer ***"),
        ("admin", "wrong password admin", "wrong password ***"),
        ("admin", "wrong password 'admin'.", "wrong password '***'."),
        ("admin", "<td>password</td><td>admin</td>", "<td>password</td><td>***</td>"),
        (
            "admin",
            "{\\u0022password\\u0022:\\u0022admin\\u0022}",
            "{\\u0022password\\u0022:\\u0022***\\u0022}",
        ),
        (
            "admin",
            "returnUrl=%2Flogin%3Fpassword%3Dadmin%26x%3D1",
            "returnUrl=%2Flogin%3Fpassword%3D***%26x%3D1",
        ),
        ("admin", "form: password=\\nadmin", "form: password=\\n***"),
        ("p w", "password=p+w&x=1", "password=***&x=1"),
        ("pä", "password=p%C3%A4", "password=***"),
        ("Jobs", "t=Bearer%20tok%7CJobs%7Cref", "t=Bearer%20tok%7C***%7Cref"),
        ("ab", "abab ab", "*** ***"),
        ("0000", "t=x%7C0000%7Cy", "t=x%7***%7Cy"),  # with the secret "C" too (below)
        ("admin", "login svc/admin failed", "login svc/*** failed"),
        ("admin", "see https://svc:admin@vbo01/v8/Jobs", "see https://svc:***@vbo01/v8/Jobs"),
        ("admin", "see //svc:admin@vbo01/v8/Jobs", "see //svc:***@vbo01/v8/Jobs"),
        ("admin", "GET https://vbo01/v8/Jobs?next=/v8/admin", "GET https://vbo01/v8/Jobs?next=/v8/***"),
        ("admin", "GET https://vbo01/v8/Jobs?t=admin#admin", "GET https://vbo01/v8/Jobs?t=***#***"),
        ("v8", "GET https://vbo01/v8/Jobs?api=v8", "GET https://vbo01/v8/Jobs?api=***"),
    ],
)
def test_a_short_password_echoed_where_it_stands_alone_is_masked(
    password: str, echo: str, expected: str
) -> None:
    assert Redactor(password, "C" if password == "0000" else None).scrub(echo) == expected


def test_a_long_secret_is_masked_even_inside_other_text() -> None:
    """Eight characters or more: no coincidence, wherever it stands."""
    redactor = Redactor(PASSWORD, ACCESS)
    assert redactor.scrub(f"x{PASSWORD}y /v8/{ACCESS}/z") == "x***y /v8/***/z"


@PROPERTY
@given(
    secret=st.text(min_size=1, max_size=7)
    | st.text(alphabet=st.sampled_from("aZ9%+*'\"\\/&<>=?#@ é"), min_size=1, max_size=7),
    left=st.sampled_from(SEPARATORS),
    right=st.sampled_from(SEPARATORS),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
    pick=st.integers(min_value=0, max_value=10_000),
)
def test_a_short_secret_standing_alone_in_any_form_is_masked(
    secret: str, left: str, right: str, before: str, after: str, pick: int
) -> None:
    assume("*" not in secret)  # the mask itself (see the test of secrets made of asterisks)
    forms = sorted(reference_forms(secret) | encoded_forms(secret))
    form = forms[pick % len(forms)]
    scrubbed = Redactor(secret).scrub(before + left + form + right + after)
    assert left + form + right not in scrubbed


def naive_in_path(text: str, start: int) -> bool:
    """The URL-path rule of `_redact`, read backwards from ``start`` each time (quadratic)."""
    begin = start
    while begin > 0 and not re.match(r"[\s\"'`<>(){}|,;]", text[begin - 1]):
        begin -= 1
    run = text[begin:start]
    if "?" in run or "#" in run:
        return False
    scheme = run.find("://")
    if scheme >= 0:
        return "/" in run[scheme + 3 :]
    return run.startswith("/") and not run.startswith("//")


@PROPERTY
@given(text=st.text(alphabet=st.sampled_from("ab/:?#= '\"|\n"), max_size=60))
def test_the_url_paths_of_a_text_are_read_in_one_pass_as_read_backwards(text: str) -> None:
    runs = _UrlRuns(text)
    for start in range(1, len(text) + 1):
        if text[start - 1] == "/":
            assert runs.in_path(start) == naive_in_path(text, start), (text, start)


def test_a_body_of_many_short_password_occurrences_is_scrubbed_whole() -> None:
    """256 KB of ``/a``, ``x/a`` or ``a `` with the password ``a``: every standalone occurrence
    masked, every other kept. Before the URL paths were read in one pass, the first took over a
    minute (each occurrence read the text back to its start)."""
    redactor = Redactor("a")
    assert redactor.scrub("/a" * 131_072) == "/a" * 131_072  # segments of a URL path
    assert redactor.scrub("x/a" * 87_381) == "x/a" * 87_380 + "x/***"
    assert redactor.scrub("a " * 131_072) == "*** " * 131_072


# --- what a server or a proxy makes of a secret it echoes: mojibake, entities, legacy form encodings ---


def misread(text: str, encoding: str) -> str:
    """``text``'s UTF-8 bytes read in a single-byte encoding (mojibake: ``ä`` is ``Ã¤``), as a
    servlet container reading a form as ISO-8859-1 (Tomcat's default) or a Windows program
    reading it as its code page writes the value back; a byte Windows-1252 leaves undefined is
    read as Latin-1 reads it (as .NET and Windows do)."""
    return "".join(bytes([byte]).decode(encoding, "ignore") or chr(byte) for byte in text.encode("utf-8"))


def named_entities(text: str) -> str:
    """HTML as PHP's ``htmlentities`` writes it: ``&auml;`` where HTML has a name for it."""
    names = html.entities.codepoint2name
    return "".join(
        c if c.isascii() or ord(c) not in names else f"&{names[ord(c)]};" for c in html.escape(text)
    )


def legacy_form(text: str, encoding: str) -> str:
    """``text`` form-encoded from a single-byte encoding (``%E4`` for ``ä``); as UTF-8 where it
    has no such byte."""
    try:
        return quote_plus(text, encoding=encoding)
    except UnicodeEncodeError:
        return quote_plus(text)


ECHO_ENCODINGS = {
    "as sent in the token form": lambda s: urlencode({"password": s}).removeprefix("password="),
    "UTF-8 read as Latin-1": lambda s: misread(s, "latin-1"),
    "UTF-8 read as Windows-1252": lambda s: misread(s, "cp1252"),
    "Latin-1 mojibake, JSON (ASCII escapes)": lambda s: json.dumps(misread(s, "latin-1"))[1:-1],
    "Windows-1252 mojibake, JSON (UTF-8)": lambda s: json.dumps(misread(s, "cp1252"), ensure_ascii=False)[
        1:-1
    ],
    "Latin-1 mojibake, HTML": lambda s: html.escape(misread(s, "latin-1")),
    "Windows-1252 mojibake, HTML numeric": lambda s: "".join(
        c if c.isascii() else f"&#{ord(c)};" for c in html.escape(misread(s, "cp1252"))
    ),
    "JSON \\u escapes": lambda s: json.dumps(s)[1:-1],
    "HTML hex entities": lambda s: "".join(c if c.isascii() else f"&#x{ord(c):x};" for c in html.escape(s)),
    "HTML hex entities, capitals": lambda s: "".join(
        c if c.isascii() else f"&#x{ord(c):X};" for c in html.escape(s)
    ),
    "HTML named entities": named_entities,
    "form-encoded from Latin-1": lambda s: legacy_form(s, "latin-1"),
    "form-encoded from Windows-1252": lambda s: legacy_form(s, "cp1252"),
}
"""How a server or a proxy in front of it may echo a value it got in the token form: as the
client sent it, read in the wrong single-byte encoding (and then JSON- or HTML-escaped), with
HTML's other entities, or form-encoded again from a legacy encoding. Not base64 (``Basic``
credentials): the client never sends any, so no server can echo them."""

non_ascii_secrets = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20
) | st.text(alphabet=st.sampled_from("aZ9-+/&'\"äéøß€✓😀 "), min_size=1, max_size=14)


@PROPERTY
@given(secret=non_ascii_secrets, encoding=st.sampled_from(sorted(ECHO_ENCODINGS)))
@example(secret="S3cr3t-PWä", encoding="UTF-8 read as Latin-1")
@example(secret="pässwörd✓", encoding="UTF-8 read as Windows-1252")
@example(secret="Grüße-2024", encoding="HTML named entities")
def test_a_secret_echoed_in_any_plausible_encoding_is_masked(secret: str, encoding: str) -> None:
    """Whatever the secret, its echo in each of `ECHO_ENCODINGS`, between spaces, is masked."""
    echoed = ECHO_ENCODINGS[encoding](secret)
    assume(echoed.strip() == echoed and echoed)
    scrubbed = Redactor(secret).scrub(f"wrong password {echoed} given")
    assert f" {echoed} " not in scrubbed


@PROPERTY
@given(
    password=st.sampled_from(ECHOED_PASSWORDS),
    encoding=st.sampled_from(sorted(ECHO_ENCODINGS)),
    body=st.sampled_from(sorted(BODIES)),
)
def test_an_error_body_echoing_the_password_misencoded_shows_none_of_it(
    password: str, encoding: str, body: str
) -> None:
    """From the body to the message (JSON, HTML title, whitespace, control characters written
    out): the password's ASCII prefix never shows, so no part of it is left."""
    content_type, raw = BODIES[body](f"wrong password {ECHO_ENCODINGS[encoding](password)}")
    message, code = read_error_body(raw, content_type, Redactor(password).scrub)
    # Read with a NUL between its characters (UTF-16 as UTF-8), shown as "\x00": no less a leak.
    assert ECHO_PREFIX not in f"{message} {code}".replace("\\x00", "")


@pytest.mark.parametrize("encoding", sorted(ECHO_ENCODINGS))
def test_the_tokens_echoed_in_any_plausible_encoding_are_masked(encoding: str) -> None:
    """The access and refresh tokens (the refresh token travels in the token form too)."""
    redactor = Redactor(PASSWORD, ACCESS, REFRESH)
    for token in (ACCESS, REFRESH):
        echoed = ECHO_ENCODINGS[encoding](token)
        assert redactor.scrub(f"refused {echoed} here") == "refused *** here", echoed
