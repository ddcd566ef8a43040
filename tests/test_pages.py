"""Page shells, static files and the login redirect (dispatch/handlers/pages.py).

* The HTML shells are reached only through their page handlers, which send the CSP, the frame
  and nosniff headers and check the login; /static/ does not serve them.
* Static files carry nosniff.
* /login?next=… continues only to one of our pages: the server approves the value (data-next
  on the login form) and login.js uses nothing else. Each hostile value is judged as the browser
  would read it after the login.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote, urljoin, urlsplit

import pytest
import tornado.httpclient

from support import login_as

PAGE_NAMES = ["login", "report", "hotline", "dept", "command", "catalogue"]
OUR_PAGES = {"/report", "/hotline", "/dept", "/command", "/catalogue"}

# What an attacker puts after ?next= in a link (already URL-encoded where a browser would be).
OPEN_REDIRECTS = [
    "/%5Cevil.example/phish",  # "/\evil.example": the browser reads "\" as "/"
    "/%09/evil.example/phish",  # "/<tab>/evil.example": the URL parser drops the tab
    "//evil.example",  # protocol-relative
    "https://evil.example",
    "/%5C%5Cevil.example",
    "/%0A/evil.example",
    "%2F%2Fevil.example",  # "//evil.example" once decoded
    "%252F%252Fevil.example",  # double-encoded
    "javascript:alert(1)",
    "%20//evil.example",
    "/dept/../%5Cevil.example",
]


async def fetch(client, path: str, cookie: str | None = None) -> tornado.httpclient.HTTPResponse:
    headers = {"Cookie": f"session={cookie}"} if cookie else {}
    return await client.http.fetch(client.base + path, headers=headers, follow_redirects=False,
                                   raise_error=False, request_timeout=30)


def approved_next(page_html: str) -> str:
    match = re.search(r'<form id="login-form" data-next="([^"]*)"', page_html)
    assert match, "the login form carries no server-approved data-next"
    return html.unescape(match.group(1))


def where_the_browser_goes(base: str, href: str) -> str:
    """`location.href = href` as a browser resolves it: tab/CR/LF dropped, leading and trailing
    spaces/controls trimmed, backslash read as a slash (http and https are special schemes)."""
    href = re.sub(r"[\t\r\n]", "", href).strip("\x00- ")
    return urljoin(base, href.replace("\\", "/"))


# -- page shells --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PAGE_NAMES)
async def test_shells_are_not_static_files(demo, name):
    for path in (f"/static/{name}.html", f"/static/pages/{name}.html", f"/static/pages/../pages/{name}.html"):
        response = await fetch(demo, path)
        assert response.code == 404, (path, response.code)
        assert b"<script" not in (response.body or b""), path


def test_shells_have_no_inline_script_or_handlers():
    """The CSP refuses inline script anyway; the shells must not need it."""
    from dispatch.handlers.pages import PAGES, SHELLS

    for name, file in PAGES.items():
        text = (SHELLS / file).read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text, re.I):
            assert "src=" in tag, (name, tag)
        assert not re.search(r"\son[a-z]+\s*=", text, re.I), name
        assert "javascript:" not in text.lower(), name


async def test_pages_send_their_security_headers(demo):
    dispatcher = await login_as(demo, "dispatcher")
    for name in PAGE_NAMES:
        response = await fetch(demo, f"/{name}", cookie=dispatcher.token)
        assert response.code == 200, name
        assert b'<script type="module"' in response.body, name
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, name
        assert response.headers["X-Frame-Options"] == "DENY", name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name


async def test_pages_need_a_login(demo):
    response = await fetch(demo, "/dept")
    assert response.code == 302
    assert response.headers["Location"] == "/login?next=%2Fdept"


@pytest.mark.parametrize("path", ["/static/js/api.js", "/static/js/dom.js", "/static/css/app.css",
                                  "/static/img/favicon.svg", "/static/no-such-file.js"])
async def test_static_files_are_nosniff(demo, path):
    response = await fetch(demo, path)
    assert response.code == (404 if "no-such" in path else 200), path
    assert response.headers.get("X-Content-Type-Options") == "nosniff", path


# -- the login redirect -------------------------------------------------------------------------


@pytest.mark.parametrize("payload", OPEN_REDIRECTS)
async def test_login_never_continues_off_site(demo, payload):
    response = await fetch(demo, "/login?next=" + payload)
    assert response.code == 200
    approved = approved_next(response.body.decode())
    assert approved == "", f"{payload!r} approved as {approved!r}"
    # After logging in, login.js goes to data-next, or (empty) to the role's home page.
    landing = urlsplit(where_the_browser_goes(demo.base + "/login", approved or "/report"))
    assert f"{landing.scheme}://{landing.netloc}" == demo.base
    assert landing.path in OUR_PAGES


@pytest.mark.parametrize("value", ["/\t/evil.example", "/\\evil.example", "\t//evil.example", "/\r\n/evil.example"])
async def test_login_next_with_raw_whitespace_and_backslash(demo, value):
    response = await fetch(demo, "/login?next=" + quote(value, safe=""))
    assert approved_next(response.body.decode()) == ""


@pytest.mark.parametrize("wanted", ["/dept", "/command?tab=overdue", "/report#check", "/hotline"])
async def test_login_continues_to_our_pages(demo, wanted):
    response = await fetch(demo, "/login?next=" + quote(wanted, safe=""))
    assert approved_next(response.body.decode()) == wanted


async def test_approved_next_is_escaped_in_the_page(demo):
    response = await fetch(demo, "/login?next=" + quote('/dept?"><img src=x>', safe=""))
    body = response.body.decode()
    assert "<img src=x>" not in body
    assert approved_next(body) == '/dept?"><img src=x>'  # same-origin, harmless once escaped


async def test_a_page_names_every_module_it_imports_for_preloading(demo):
    """The browser fetches a page's modules at once (modulepreload) instead of finding them one
    level of imports at a time: /command's reach four levels deep (command.js → command-panel.js
    → case-detail.js … → form-fields.js)."""
    from dispatch.handlers.pages import STATIC

    dispatcher = await login_as(demo, "dispatcher")
    response = await fetch(demo, "/command", cookie=dispatcher.token)
    body = response.body.decode()
    preloaded = re.findall(r'<link rel="modulepreload" href="/static/js/([\w-]+\.js)">', body)
    assert {"command-model.js", "case-detail.js", "form-fields.js", "api.js"} <= set(preloaded)
    assert len(preloaded) == len(set(preloaded)) and "command.js" not in preloaded
    assert body.index("modulepreload") < body.index('<script type="module" src="/static/js/command.js">')
    for name in preloaded:  # each one a module the page's graph really holds
        assert (STATIC / "js" / name).is_file(), name
        assert any(f'"./{name}"' in (STATIC / "js" / other).read_text(encoding="utf-8")
                   for other in ["command.js", *preloaded]), name
    for name in PAGE_NAMES:
        page = (await fetch(demo, f"/{name}", cookie=dispatcher.token)).body.decode()
        for href in re.findall(r'<link rel="modulepreload" href="(/static/js/[\w-]+\.js)">', page):
            assert (await fetch(demo, href)).code == 200, (name, href)
