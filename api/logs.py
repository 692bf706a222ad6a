"""Logging: one JSON access line per request on stdout; everything else on stderr."""

from __future__ import annotations

import logging
import sys

_configured: list[bool] = []


def configure_logging() -> None:
    if _configured:
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    access = logging.getLogger("nocert.access")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.propagate = False
    _configured.append(True)
