"""/docs (Swagger UI) and /redoc (ReDoc) from the vendored assets: they work on a closed network.

Both pages allow only this origin. Swagger UI's page is FastAPI's, built once; its one inline script (the
start of Swagger UI) is allowed by its hash, and the validator badge, which would call a public validator,
is off. ReDoc writes its styles into the page as ``<style>`` elements: they are allowed by a nonce new for
every answer, which ReDoc is given by api/static/docs/redoc-start.js (FastAPI's ReDoc page has no place for
one, hence the small page below). ReDoc's sidebar shows its vendor's logo from the vendor's site: the policy
blocks it (nothing is requested), and ReDoc then hides the image.
"""

from __future__ import annotations

import html
import secrets

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from api.assets import VENDOR_PATH, url
from api.csp import inline_sources, policy

SWAGGER_UI = f"{VENDOR_PATH}/swagger-ui-dist-5.35.0"
REDOC = f"{VENDOR_PATH}/redoc-2.5.4"
FAVICON = f"{SWAGGER_UI}/favicon-32x32.png"

#: The two ``<style>`` elements ReDoc 2.5.4 writes when its bundle loads, before it knows the nonce: the
#: perfect-scrollbar styles and an empty one (the browser names both hashes when it blocks them).
REDOC_LOAD_STYLES = (
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
)

#: What both pages need besides their scripts and styles.
_SHARED = {
    "img_src": ("'self'", "data:"),  # both libraries draw icons as data: SVG
    "connect_src": ("'self'",),  # the OpenAPI document, and Swagger UI's "Try it out"
}

_REDOC_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{favicon}">
<link rel="stylesheet" href="{css}">
</head>
<body>
<noscript>ReDoc needs JavaScript; the OpenAPI document itself is at <a href="{spec}">{spec}</a>.</noscript>
<div id="redoc" data-spec-url="{spec}"></div>
<script src="{redoc}"></script>
<script src="{start}" nonce="{nonce}"></script>
</body>
</html>
"""


def router(openapi_url: str, title: str) -> APIRouter:
    """The two documentation pages of the OpenAPI document at ``openapi_url``."""
    swagger_html = bytes(
        get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=FAVICON,
            oauth2_redirect_url=None,
            swagger_ui_parameters={"validatorUrl": None},
        ).body
    ).decode()
    scripts, styles = inline_sources(swagger_html)
    swagger_headers = {
        "content-security-policy": policy(script_src=("'self'", *scripts), style_src=("'self'", *styles), **_SHARED),
        "cache-control": "no-cache",
    }
    redoc_fields = {
        name: html.escape(value)
        for name, value in {
            "title": f"{title} - ReDoc",
            "favicon": FAVICON,
            "css": url("docs/redoc.css"),
            "spec": openapi_url,
            "redoc": f"{REDOC}/redoc.standalone.js",
            "start": url("docs/redoc-start.js"),
        }.items()
    }
    pages = APIRouter(include_in_schema=False)

    @pages.get("/docs")
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger_html, headers=swagger_headers)

    @pages.get("/redoc")
    def redoc() -> HTMLResponse:
        nonce = secrets.token_urlsafe(18)
        headers = {
            "content-security-policy": policy(
                script_src=("'self'",),
                style_src=("'self'", *REDOC_LOAD_STYLES, f"'nonce-{nonce}'"),
                worker_src=("blob:",),  # ReDoc's search index runs in a worker built from its bundle
                **_SHARED,
            ),
            "cache-control": "no-store",  # the nonce must never be served twice
        }
        return HTMLResponse(_REDOC_PAGE.format(nonce=nonce, **redoc_fields), headers=headers)

    return pages
