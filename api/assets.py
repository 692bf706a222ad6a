"""The files nocert serves itself under /static: the workbench's style sheet and the vendored front-end
libraries (api/static/vendor/VENDORED.md), so that no page needs another origin.

A vendored file's directory names its version, so its URL never changes meaning: browsers may keep it a
year without asking again. nocert's own files may change with any release: browsers revalidate them
(``no-cache`` with the ETag and Last-Modified that Starlette sets).
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

from api.csp import STATIC_POLICY

STATIC_DIR = Path(__file__).with_name("static")
STATIC_PATH = "/static"
VENDOR_PATH = f"{STATIC_PATH}/vendor"

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

#: Stated rather than guessed: the platform's MIME table differs between systems and Python versions.
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    "": "text/plain; charset=utf-8",  # LICENSE, NOTICE
}


def media_type(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(str(path))[0] or "application/octet-stream"


def url(relative: str) -> str:
    """The URL of a file under api/static, e.g. ``url("workbench.css")``."""
    return f"{STATIC_PATH}/{relative}"


class Assets(StaticFiles):
    """Starlette's static files with stated media types, caching by kind of file and a policy that lets
    a file run nothing when opened on its own."""

    def __init__(self) -> None:
        super().__init__(directory=STATIC_DIR, follow_symlink=False)

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        vendored = Path(full_path).resolve().is_relative_to((STATIC_DIR / "vendor").resolve())
        headers = {
            "cache-control": IMMUTABLE if vendored else REVALIDATE,
            "content-security-policy": STATIC_POLICY,
        }
        response = FileResponse(
            full_path, status_code=status_code, stat_result=stat_result, media_type=media_type(full_path), headers=headers
        )
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response
