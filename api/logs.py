"""Logging: one JSON access line per request on stdout; everything else on stderr."""

from __future__ import annotations

import logging
import sys


def configure_logging() -> None:
    if getattr(configure_logging, "done", False):
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    access = logging.getLogger("nocert.access")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.propagate = False
    configure_logging.done = True  # type: ignore[attr-defined]
