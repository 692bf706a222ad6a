"""Every file nocert serves from the api package (static files, templates) is package data of the wheel,
so that an installed nocert serves the same pages as a checkout."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVED = [ROOT / "api" / "static", ROOT / "api" / "workbench" / "templates"]


def test_every_served_file_is_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["api"]
    files = [path.relative_to(ROOT / "api").as_posix() for folder in SERVED for path in folder.rglob("*") if path.is_file()]
    assert len(files) > 15
    # setuptools' "*" does not cross "/", unlike fnmatch's: compare part by part.
    def matches(name: str, pattern: str) -> bool:
        parts, wanted = name.split("/"), pattern.split("/")
        return len(parts) == len(wanted) and all(fnmatch(p, w) for p, w in zip(parts, wanted, strict=True))

    missing = [name for name in files if not any(matches(name, pattern) for pattern in patterns)]
    assert missing == [], f"not in [tool.setuptools.package-data] of pyproject.toml: {missing}"
