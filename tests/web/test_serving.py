"""How the app serves the page: a self-only Content-Security-Policy, revalidated caching, no path escapes,
nothing in the OpenAPI document, and every module the page imports present."""

from __future__ import annotations

import importlib
import re

import httpx
import pytest

from api.web.site import STATIC_DIR

from .conftest import Engine

pytestmark = pytest.mark.e2e

_HTML_SINK = re.compile(r"\.(?:inner|outer)HTML\s*=|insertAdjacentHTML|document\.write")
_IMPORT = re.compile(r"""^import\s[^;]*?from\s+"(\./[a-z]+\.js)";""", re.MULTILINE)


def test_page_and_assets_carry_security_and_cache_headers(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url, timeout=10) as c:
        page = c.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
        assert page.headers["cache-control"] == "no-cache"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        etag = page.headers["etag"]
        again = c.get("/", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        head = c.head("/")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(page.content)

        for path, media in [
            ("/web/app.css", "text/css; charset=utf-8"),
            ("/web/js/main.js", "text/javascript; charset=utf-8"),
            ("/web/icon.svg", "image/svg+xml"),
        ]:
            r = c.get(path)
            assert r.status_code == 200 and r.headers["content-type"] == media, path
            assert r.headers["content-security-policy"] == csp and r.headers["cache-control"] == "no-cache"

        for path in [
            "/web/../up.py",
            "/web/%2e%2e/site.py",
            "/web/.hidden.js",
            "/web/js/missing.js",
            "/web/x.py",
        ]:
            r = c.get(path)
            assert r.status_code == 404, path
            assert r.headers["content-type"] == "application/problem+json"


def test_page_is_not_part_of_the_api_document(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url, timeout=10) as c:
        paths = c.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not [p for p in paths if p.startswith("/web")]


def test_markup_has_no_inline_code_and_every_import_exists(engine: Engine) -> None:
    html = (STATIC_DIR / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline <script> (the CSP would block it)"
    assert " style=" not in html and "<style" not in html
    assert not re.search(r"""\son[a-z]+=""", html), "inline event handler attribute"
    modules = sorted((STATIC_DIR / "js").glob("*.js"))
    with httpx.Client(base_url=engine.url, timeout=10) as c:
        for module in modules:
            for imported in _IMPORT.findall(module.read_text()):
                r = c.get(f"/web/js/{imported.removeprefix('./')}")
                assert r.status_code == 200, f"{module.name} imports {imported}: {r.status_code}"
            assert not _HTML_SINK.search(module.read_text()), f"{module.name} builds markup from strings"


@pytest.mark.parametrize("module", ["api.web", "api.web.site"])
def test_exports_exist_and_modules_say_why(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__doc__ and mod.__doc__.strip()
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names missing {name!r}"
