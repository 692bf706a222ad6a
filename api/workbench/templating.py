"""The workbench's Jinja2 environment (autoescaping on, undefined names fail) and its HTML responses.

Every page is rendered with the language's translator ``t``, the language switch and ``static()`` for the
URLs of api/static; it is answered with the workbench's policy (no script, only this origin) and never
cached, since a page may show personal data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi.responses import HTMLResponse

from api.assets import url
from api.csp import WORKBENCH_POLICY
from api.workbench.charts import bar_chart
from api.workbench.i18n import LANGUAGES, NAMES, translator

TEMPLATES = Path(__file__).with_name("templates")

environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.globals.update(static=url, languages=LANGUAGES, language_names=NAMES, bar_chart=bar_chart)

PAGE_HEADERS = {"content-security-policy": WORKBENCH_POLICY, "cache-control": "no-store"}


def render(template: str, *, lang: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The page ``template`` in ``lang``."""
    html = environment.get_template(template).render(lang=lang, t=translator(lang), **context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
