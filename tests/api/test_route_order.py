"""The router tries the checks' routes first (they take nearly all the traffic), which changes no answer:
no path matches routes of two modules, so which module is tried first decides nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Match

from api.app import create_app
from api.bootstrap import build
from api.routers import checks
from tests.api.conftest import settings_for


def test_the_checks_are_tried_first_and_no_path_matches_two_modules(tmp_path: Path) -> None:
    services = build(settings_for(f"sqlite:///{tmp_path}/nocert.db", tmp_path / "keys"))
    try:
        app = create_app(services, start_views=False)
    finally:
        services.close()
    included = [route for route in app.router.routes if getattr(route, "original_router", None) is not None]
    assert included[0].original_router is checks.router  # type: ignore[attr-defined]
    routes = app.state.routes
    for route in routes:
        path = re.sub(r"\{[^}]+\}", "x1", route.path)
        for method in route.methods:
            scope = {"type": "http", "path": path, "method": method, "root_path": ""}
            matching = [other.path for other in routes if other.matches(scope)[0] == Match.FULL]
            assert matching == [route.path], (method, path, matching)
