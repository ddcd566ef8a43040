"""The web pages: HTML shells whose scripts talk to the JSON API, and the static files.

Pages get a strict Content-Security-Policy (scripts only from this origin, no inline script),
so user text can never run as code even if it slipped into the DOM as HTML. The shells live in
static/pages/ and are served only here, by their page handler (with those headers and the login
check): the static file handler refuses them.
"""

from __future__ import annotations

import functools
import html
import re
from pathlib import Path
from urllib.parse import quote, urlsplit

import tornado.web

from dispatch.access.auth import SESSION_COOKIE
from dispatch.handlers.base import AllowOn405

STATIC = Path(__file__).resolve().parent.parent.parent / "static"
SHELLS = STATIC / "pages"

PAGES = {"login": "login.html", "report": "report.html", "hotline": "hotline.html",
         "dept": "dept.html", "command": "command.html", "catalogue": "catalogue.html", "admin": "admin.html"}

# Where each role lands after logging in.
HOME_OF_ROLE = {"grid_worker": "/report", "operator": "/hotline", "department": "/dept",
                "dispatcher": "/command", "commander": "/command", "admin": "/admin"}

# The pages a login may continue to (?next=): the ones that need a session.
NEXT_PAGES = frozenset(f"/{name}" for name in PAGES if name != "login")


def safe_next(value: str | None) -> str:
    r"""The page path to continue to after logging in, or "" for the role's home page.

    Judged the way the browser will read it: its URL parser drops ASCII tab/CR/LF anywhere and
    treats "\" as "/", so "/\evil.example" and "/<tab>/evil.example" both mean "//evil.example",
    another host. Only a path of one of our pages (plus query or fragment) passes.
    """
    text = re.sub(r"[\t\r\n]", "", value or "")
    if not text.startswith("/") or text[1:2] in ("/", "\\") or "\\" in text:
        return ""
    path = re.split(r"[?#]", text, maxsplit=1)[0]
    return text if path in NEXT_PAGES else ""


def tile_source(url: str) -> str | None:
    """The CSP source of a tile URL template: its scheme and host, a host label holding the
    subdomain placeholder {s} ("t{s}.tianditu.gov.cn") widened to "*"."""
    parts = urlsplit(url.replace("{s}", "a"))
    if not (parts.scheme and parts.netloc):
        return None
    host = urlsplit(url.replace("{s}", "_s_")).netloc
    if "_s_" in host:
        labels = host.split(".")
        host = ".".join("*" if "_s_" in label else label for label in labels)
        if not host.startswith("*"):  # CSP allows a wildcard only as the first label
            host = "*." + host.split("*.", 1)[-1]
    return f"{parts.scheme}://{host}"


def content_security_policy(tile_url: str, overlay_url: str = "") -> str:
    img = "'self' data: blob:"
    for url in (tile_url, overlay_url):
        source = tile_source(url) if url else None
        if source:
            img += f" {source}"
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # Leaflet positions its panes with style attributes
        f"img-src {img}",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


# A page's module script, and the modules a module imports (static imports of this folder).
ENTRY_MODULE = re.compile(rb'<script type="module" src="/static/js/([\w-]+\.js)"></script>')
IMPORTED = re.compile(r'(?:\bfrom|^\s*import)\s*"\./([\w-]+\.js)"', re.M)


@functools.cache  # (imports change with a release, and a server restarts with one)
def module_graph(entry: str) -> tuple[str, ...]:
    """Every module `entry` (a file of static/js/) imports, directly or not, in the order found."""
    found: list[str] = []
    todo = [entry]
    while todo:
        name = todo.pop(0)
        for imported in IMPORTED.findall((STATIC / "js" / name).read_text(encoding="utf-8")):
            if imported != entry and imported not in found:
                found.append(imported)
                todo.append(imported)
    return tuple(found)


def with_module_preloads(shell: bytes) -> bytes:
    """The shell with a `modulepreload` link for each module its module script imports, so the
    browser fetches them all at once: found import by import, the command centre's four levels of
    imports cost ~0.5 s before its first request for data."""
    match = ENTRY_MODULE.search(shell)
    if match is None:
        return shell
    links = b"".join(b'<link rel="modulepreload" href="/static/js/%s">\n  ' % name.encode()
                     for name in module_graph(match.group(1).decode()))
    return shell[:match.start()] + links + shell[match.start():]


class PageHandler(AllowOn405, tornado.web.RequestHandler):
    access = {"GET": ("page", "view")}

    def initialize(self, page: str):
        self.page = page

    def set_default_headers(self):
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Cache-Control", "no-store")

    def get(self):
        ctx = self.application.ctx
        if self.page != "login" and not ctx.tokens.verify(self.get_cookie(SESSION_COOKIE) or ""):
            self.redirect("/login?next=" + quote(self.request.uri, safe=""))
            return
        self.set_header("Content-Security-Policy", content_security_policy(ctx.config["map"].get("tile_url") or "",
                                                                   ctx.config["map"].get("overlay_url") or ""))
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(self.shell())

    def shell(self) -> bytes:
        return with_module_preloads((SHELLS / PAGES[self.page]).read_bytes())


class LoginPageHandler(PageHandler):
    """The login form, told by the server where to continue: login.js reads data-next and never
    the query string, so this check is the only one."""

    def shell(self) -> bytes:
        next_path = safe_next(self.get_argument("next", "", strip=False))
        return super().shell().replace(b'data-next=""', f'data-next="{html.escape(next_path)}"'.encode(), 1)


class StaticFiles(AllowOn405, tornado.web.StaticFileHandler):
    """/static/: scripts, styles, images, all with nosniff (a file is only ever what its type
    says). Page shells are refused here (404) so that they are reached only through their page
    handler, with its CSP, frame and login rules."""
    access = {"GET": ("page", "view"), "HEAD": ("page", "view")}  # for `Allow` on a 405

    def set_default_headers(self):
        self.set_header("X-Content-Type-Options", "nosniff")

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        path = super().validate_absolute_path(root, absolute_path)
        if path and (Path(path).suffix.lower() in (".html", ".htm") or Path(path).relative_to(root).parts[:1] == ("pages",)):
            raise tornado.web.HTTPError(404)
        return path


class RootHandler(AllowOn405, tornado.web.RequestHandler):
    access = {"GET": ("page", "view")}

    async def get(self):
        ctx = self.application.ctx
        username = ctx.tokens.verify(self.get_cookie(SESSION_COOKIE) or "")
        doc = await ctx.users.get(username) if username else None
        self.redirect(HOME_OF_ROLE.get(doc["role"], "/login") if doc else "/login")


class FaviconHandler(AllowOn405, tornado.web.RequestHandler):
    access = {"GET": ("page", "view")}

    def get(self):
        self.set_header("Content-Type", "image/svg+xml")
        self.set_header("Cache-Control", "public, max-age=86400")
        self.finish((STATIC / "img" / "favicon.svg").read_bytes())


class ServiceWorkerHandler(AllowOn405, tornado.web.RequestHandler):
    """The grid worker page's service worker (offline start-up). Served from the site root,
    not /static/, so that it may control /report."""
    access = {"GET": ("page", "view")}

    def get(self):
        self.set_header("Content-Type", "text/javascript; charset=UTF-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish((STATIC / "js" / "report-sw.js").read_bytes())


routes = [(r"/", RootHandler), (r"/favicon\.ico", FaviconHandler), (r"/report-sw\.js", ServiceWorkerHandler)] + [
    (rf"/{name}", LoginPageHandler if name == "login" else PageHandler, {"page": name}) for name in PAGES]
