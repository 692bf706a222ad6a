"""DESIGN.md: domain/ depends on nothing of ours and on no infrastructure library; what it needs from
outside it receives through domain/ports.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
FORBIDDEN = (
    "fastapi", "starlette", "cryptography", "psycopg", "psycopg_pool", "jsonschema", "rfc8785",
    "api", "audit", "projections", "signing", "store",
)


def imported_modules(path: Path) -> list[str]:
    """Every module an import statement names, with relative imports resolved inside the package."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.append("domain" + (f".{node.module}" if node.module else ""))
            else:
                names.append(node.module or "")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
            "import_module",
            "__import__",
        ):
            names += [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
    return names


def domain_files() -> list[Path]:
    files = sorted(DOMAIN.glob("**/*.py"))
    assert len(files) >= 11, files  # errors, identifiers, department, category, directory, check, ...
    return files


@pytest.mark.parametrize("path", domain_files(), ids=lambda path: path.name)
def test_domain_imports_no_infrastructure_and_nothing_of_ours(path):
    offending = [
        name for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN
    ]
    assert offending == [], f"{path.name} imports {offending}"


def test_the_import_walker_sees_every_kind_of_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import signing.jws\nfrom api import settings\nimport os, psycopg as pg\n"
        "def f():\n    from jsonschema import validate\n    importlib.import_module('projections.ledger')\n"
    )
    found = imported_modules(sample)
    assert sorted(name for name in found if name.split(".")[0] in FORBIDDEN) == sorted(
        ["signing.jws", "api", "psycopg", "jsonschema", "projections.ledger"]
    )
