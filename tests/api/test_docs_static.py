"""/docs, /redoc and /static over HTTP: only this origin's assets, their media types and caching, their
policies, and nothing served that is not a file under api/static."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.assets import IMMUTABLE, REVALIDATE
from api.csp import STATIC_POLICY, inline_sources, policy
from api.docs import REDOC, SWAGGER_UI
from tests.api.conftest import build_services


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = tmp_path_factory.mktemp("store")
    services = build_services(f"sqlite:///{store}/nocert.db", store / "keys")
    try:
        with TestClient(create_app(services, start_views=False)) as test_client:
            yield test_client
    finally:
        services.close()


def _urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_load_only_this_origins_files(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = _urls(page.text)
    assert urls and all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "fonts.googleapis" not in page.text and "cdn." not in page.text
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert client.get("/openapi.json").status_code == 200


def test_swagger_ui_s_inline_start_is_allowed_by_its_hash_and_has_no_validator(client: TestClient) -> None:
    page = client.get("/docs")
    [start] = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(start.encode()).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}'" in page.headers["content-security-policy"]
    assert '"validatorUrl": null' in start
    assert f"{SWAGGER_UI}/swagger-ui-bundle.js" in page.text


def test_redoc_gets_a_new_nonce_every_time(client: TestClient) -> None:
    first, second = client.get("/redoc"), client.get("/redoc")
    nonces = [re.search(r'nonce="([^"]+)"', page.text).group(1) for page in (first, second)]  # type: ignore[union-attr]
    assert nonces[0] != nonces[1] and len(nonces[0]) >= 24
    for page, nonce in zip((first, second), nonces, strict=True):
        assert f"'nonce-{nonce}'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
    assert f"{REDOC}/redoc.standalone.js" in first.text


@pytest.mark.parametrize(
    ("path", "media_type", "cache"),
    [
        (f"{SWAGGER_UI}/swagger-ui-bundle.js", "text/javascript; charset=utf-8", IMMUTABLE),
        (f"{SWAGGER_UI}/swagger-ui.css", "text/css; charset=utf-8", IMMUTABLE),
        (f"{SWAGGER_UI}/favicon-32x32.png", "image/png", IMMUTABLE),
        (f"{SWAGGER_UI}/LICENSE", "text/plain; charset=utf-8", IMMUTABLE),
        (f"{REDOC}/redoc.standalone.js", "text/javascript; charset=utf-8", IMMUTABLE),
        ("/static/workbench.css", "text/css; charset=utf-8", REVALIDATE),
        ("/static/docs/redoc-start.js", "text/javascript; charset=utf-8", REVALIDATE),
    ],
)
def test_static_files_have_their_media_type_caching_and_policy(client: TestClient, path: str, media_type: str, cache: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == media_type
    assert answer.headers["cache-control"] == cache
    assert answer.headers["content-security-policy"] == STATIC_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"
    again = client.get(path, headers={"if-none-match": answer.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["cache-control"] == cache


@pytest.mark.parametrize(
    "path",
    [
        "/static/nothing.css",
        "/static/vendor/",
        "/static/vendor",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/static/vendor/swagger-ui-dist-5.35.0/../../../settings.py",
    ],
)
def test_nothing_but_files_under_static_is_served(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_static_files_are_read_only(client: TestClient) -> None:
    answer = client.post("/static/workbench.css", content=b"x")
    assert answer.status_code == 405


def test_inline_sources_hash_each_inline_script_and_style_exactly() -> None:
    html = '<script src="/a.js"></script><script>let a = 1;\n</script><style> b { c: d } </style><script>x</script>'
    scripts, styles = inline_sources(html)

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert scripts == (digest("let a = 1;\n"), digest("x"))
    assert styles == (digest(" b { c: d } "),)


def test_a_policy_starts_from_nothing_and_adds_what_it_is_given() -> None:
    value = policy(script_src=("'self'",))
    assert value.split("; ") == [
        "default-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "script-src 'self'",
    ]


def test_the_api_keeps_its_own_policy(client: TestClient) -> None:
    answer: Any = client.get("/v1/trust/root")
    assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
