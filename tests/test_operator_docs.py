"""Issue #12.6 and #12.9: the operator's documents say what the code does. Every variable the service reads
(its settings, and any NOCERT_ name the code spells out) is in the README's table, in deploy/nocert.env and
in ``nocert --help``; the contract in the repo is the shared one, byte for byte; every relative link of the
README and deploy/README.md names a file of the clone; the systemd unit and the nginx example are accepted
by systemd-analyze and nginx; the unit and the proxy hold what the issue asks of them."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from api.settings import variables

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("domain", "signing", "store", "projections", "audit", "witness", "api")
NAME = re.compile(r"NOCERT_[A-Z0-9_]*[A-Z0-9]")
SHARED_CONTRACT = Path("/work/shared/API.md")
NOCERT = str(Path(sys.executable).with_name("nocert"))


def spelled_out(paths: list[Path]) -> set[str]:
    """NOCERT_ names that are a whole string constant of the code (what it reads), not words in its prose."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value):
                names.add(node.value)
    return names


def service_variables() -> set[str]:
    files = [path for package in PACKAGES for path in (ROOT / package).glob("**/*.py")]
    return {name for name, _ in variables()} | spelled_out(files)


def test_variables_are_read_from_the_settings_and_the_code() -> None:
    found = service_variables()
    assert {"NOCERT_DATABASE_URL", "NOCERT_KEY_PASSPHRASE", "NOCERT_UI_IDLE_MINUTES"} <= found
    assert "NOCERT_TEST_DATABASE_URL" not in found  # tests only


def test_readme_table_lists_every_variable() -> None:
    table = set(re.findall(r"^\| `(NOCERT_[A-Z0-9_]+)` \|", (ROOT / "README.md").read_text(), re.M))
    tests_only = spelled_out(list((ROOT / "tests").glob("**/*.py"))) | {"NOCERT_REQUIRE_BROWSER"}
    assert service_variables() <= table, f"missing from README: {sorted(service_variables() - table)}"
    assert table - service_variables() <= tests_only, f"README lists what nothing reads: {sorted(table - service_variables() - tests_only)}"


def test_env_file_documents_every_variable() -> None:
    text = (ROOT / "deploy" / "nocert.env").read_text()
    listed = set(re.findall(r"^#?(NOCERT_[A-Z0-9_]+)=", text, re.M))
    assert listed == service_variables()
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^#?NOCERT_", line):  # each setting is explained by the comment above it
            above = next(previous for previous in reversed(lines[:index]) if not re.match(r"^#?NOCERT_", previous))
            assert above.startswith("# ") and len(above) > 10, line


def test_help_lists_every_variable() -> None:
    result = subprocess.run([NOCERT, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for name in service_variables():
        assert name in result.stdout, name


def test_the_contract_is_the_shared_one_byte_for_byte() -> None:
    copy = ROOT / "docs" / "API.md"
    assert copy.is_file()
    if not SHARED_CONTRACT.exists():
        pytest.skip(f"{SHARED_CONTRACT} is not on this machine; the copy is docs/API.md")
    assert copy.read_bytes() == SHARED_CONTRACT.read_bytes()


@pytest.mark.parametrize("document", ["README.md", "deploy/README.md"])
def test_relative_links_name_files_of_the_clone(document: str) -> None:
    path = ROOT / document
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert relative
    for link in relative:
        assert (path.parent / link).exists(), f"{document} links {link}, which is not in the clone"


def test_readme_operator_section_links_the_kit() -> None:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Operating it") :]
    for target in ("deploy/nocert.service", "deploy/nginx.conf", "deploy/nocert.env", "deploy/README.md", "constraints.txt"):
        assert f"]({target}" in section, target


UNIT = ROOT / "deploy" / "nocert.service"


def test_unit_runs_as_a_dedicated_user_with_hardening() -> None:
    unit = UNIT.read_text()
    for directive in (
        "User=nocert", "Environment=MALLOC_ARENA_MAX=2", "EnvironmentFile=/etc/nocert/nocert.env", "NoNewPrivileges=yes",
        "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n", "RestrictAddressFamilies=",
        "SystemCallFilter=@system-service", "UMask=0077", "StateDirectoryMode=0700",
    ):
        assert directive in unit, directive
    sysusers = (ROOT / "deploy" / "nocert.sysusers.conf").read_text()
    assert re.search(r"^u nocert ", sysusers, re.M)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # The unit as installed, with this checkout's nocert, root (no nocert user here) and the example env file.
    unit = UNIT.read_text().replace("/opt/nocert/venv/bin/nocert", NOCERT)
    unit = unit.replace("User=nocert", "User=root").replace("Group=nocert", "Group=root")
    unit = unit.replace("/etc/nocert/nocert.env", str(ROOT / "deploy" / "nocert.env"))
    (tmp_path / "nocert.service").write_text(unit)
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "nocert.service")], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "nocert.service" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


NGINX = ROOT / "deploy" / "nginx.conf"


def test_proxy_has_the_timeouts_uvicorn_lacks() -> None:
    text = NGINX.read_text()
    for directive in ("client_header_timeout", "client_body_timeout", "send_timeout", "proxy_read_timeout"):
        assert re.search(rf"^\s*{directive} \d+s;", text, re.M), directive
    assert re.search(r"^\s*client_max_body_size 64k;", text, re.M)
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "proxy_set_header X-Request-Id $request_id;" in text


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_accepts_the_proxy(tmp_path: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ed25519", "-nodes", "-days", "1", "-subj", "/CN=nocert.test",
         "-keyout", str(tmp_path / "tls.key"), "-out", str(tmp_path / "tls.crt")],
        check=True, capture_output=True, timeout=60,
    )
    site = NGINX.read_text().replace("/etc/nginx/tls/nocert.crt", str(tmp_path / "tls.crt"))
    site = site.replace("/etc/nginx/tls/nocert.key", str(tmp_path / "tls.key")).replace("/var/log/nginx/", f"{tmp_path}/")
    (tmp_path / "site.conf").write_text(site)
    temp = " ".join(f"{kind}_temp_path {tmp_path};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "main.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n{temp}\ninclude {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(["nginx", "-t", "-c", str(tmp_path / "main.conf"), "-p", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
