"""The direction of imports between nocert's packages (README, Layout): each package imports only the
packages inside it, so the domain stays pure and storage, signing, views and audit never reach for HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.domain.test_purity import imported_modules

ROOT = Path(__file__).resolve().parents[1]
OURS = ("domain", "signing", "store", "privacy", "projections", "witness", "audit", "escalation", "delivery", "api", "bench", "deploy", "tests")
ALLOWED = {
    "domain": {"domain"},
    "signing": {"signing", "domain"},
    "store": {"store", "domain"},
    "privacy": {"privacy", "domain"},
    "projections": {"projections", "store", "signing", "domain"},
    "witness": {"witness", "signing", "domain"},
    "audit": {"audit", "witness", "privacy", "projections", "store", "signing", "domain"},
    "escalation": {"escalation", "projections", "store", "signing", "domain"},
    "delivery": {"delivery", "store", "signing", "domain"},
    "api": {"api", "audit", "witness", "privacy", "escalation", "delivery", "projections", "store", "signing", "domain"},
    # The dependency audit (make audit-deps) is a tool of the repository: it imports none of nocert.
    "deploy": {"deploy"},
}


def package_files() -> list[tuple[str, Path]]:
    files = [(package, path) for package in ALLOWED for path in sorted((ROOT / package).glob("**/*.py"))]
    assert {package for package, _ in files} == set(ALLOWED), "a package of the layout has no module"
    return files


@pytest.mark.parametrize(("package", "path"), package_files(), ids=lambda value: str(value).rpartition("/")[2])
def test_a_package_imports_only_the_packages_inside_it(package: str, path: Path) -> None:
    ours = {name.split(".")[0] for name in imported_modules(path)} & set(OURS)
    assert ours <= ALLOWED[package], f"{path.relative_to(ROOT)} imports {sorted(ours - ALLOWED[package])}"


def test_the_layer_check_sees_a_wrong_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from api.settings import Settings\nimport projections.views\n")
    ours = {name.split(".")[0] for name in imported_modules(sample)} & set(OURS)
    assert not ours <= ALLOWED["store"] and not ours <= ALLOWED["projections"] and ours <= ALLOWED["api"]
