"""The vendored front-end files are exactly those their manifests list, with the listed SHA-256, and each
package directory holds its licence (api/static/vendor/VENDORED.md, tests/ui/vendor/VENDORED.md)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIRS = [ROOT / "api" / "static" / "vendor", ROOT / "tests" / "ui" / "vendor"]
ROW = re.compile(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", re.MULTILINE)


@pytest.mark.parametrize("vendor", VENDOR_DIRS, ids=lambda path: str(path.relative_to(ROOT)))
def test_vendored_files_match_their_manifest(vendor: Path) -> None:
    listed = dict(ROW.findall((vendor / "VENDORED.md").read_text()))
    present = {
        str(path.relative_to(vendor)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in vendor.rglob("*")
        if path.is_file() and path.name != "VENDORED.md"
    }
    expected_rows = "\n".join(f"| `{name}` | `{digest}` |" for name, digest in sorted(present.items()))
    assert listed == present, f"VENDORED.md does not match the files; their rows are:\n{expected_rows}"


@pytest.mark.parametrize("vendor", VENDOR_DIRS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_vendored_package_has_its_licence(vendor: Path) -> None:
    packages = [path for path in vendor.iterdir() if path.is_dir()]
    assert packages
    for package in packages:
        assert (package / "LICENSE").is_file(), f"{package.name} has no LICENSE"
        name, version = package.name.rsplit("-", 1)
        assert f"| {name} | {version} |" in (vendor / "VENDORED.md").read_text(), f"{package.name} is not described"
