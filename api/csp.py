"""The Content-Security-Policy of each kind of page nocert serves outside /v1 (the gateway sets the API's).

Every policy starts from ``default-src 'none'`` and allows only the origin itself ('self') for what a page
needs; no page may load anything from another origin. An inline script or style that a library writes into
its page (FastAPI's Swagger UI page starts Swagger UI with an inline script) is allowed by the SHA-256 of its
exact text, never by ``'unsafe-inline'`` for scripts.
"""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser

#: Directives every page shares: nothing by default, no <base>, no framing, forms post only here.
_BASE: dict[str, tuple[str, ...]] = {
    "default-src": ("'none'",),
    "base-uri": ("'none'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
}


def policy(**directives: tuple[str, ...]) -> str:
    """A policy header value: the shared directives, then ``directives`` (``script_src`` → ``script-src``)."""
    merged = dict(_BASE)
    merged.update({name.replace("_", "-"): sources for name, sources in directives.items()})
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in merged.items())


#: Files under /static: served as subresources, never meant to run anything as a document of their own.
STATIC_POLICY = policy(sandbox=())

#: The workbench (/ui): plain HTML forms and the site's own style sheet and images; no script at all.
WORKBENCH_POLICY = policy(style_src=("'self'",), img_src=("'self'",))


class _InlineCollector(HTMLParser):
    """Collects the text of every ``<script>`` without ``src`` and every ``<style>`` element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and not any(name == "src" for name, _ in attrs):
            self.scripts.append("")
            self._open = self.scripts
        elif tag == "style":
            self.styles.append("")
            self._open = self.styles

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._open = None


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def inline_sources(html: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The hash sources of the inline scripts and of the inline styles of ``html``, in that order."""
    collector = _InlineCollector()
    collector.feed(html)
    collector.close()
    return tuple(map(_digest, collector.scripts)), tuple(map(_digest, collector.styles))
