"""deploy/dependency_audit.py (`make audit-deps`, #12.8) against a fake PyPI mounted as the transport: no
network. The adapter answers pip-audit's per-release query with the per-project document only when the
project's latest release is the pin; every other pin is named as not audited, and CI tolerates only the
transient ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from deploy.dependency_audit import CLEAN, NOT_AUDITED, VULNERABLE, ProjectFallbackAdapter, main

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
RECENT = "2026-12-01T09:00:00Z"  # two days before NOW: within the grace of a week
OLD = "2026-10-01T09:00:00Z"  # two months before NOW
MADE_UP = {
    "id": "PYSEC-2099-1",
    "aliases": ["CVE-2099-0001", "GHSA-xxxx-yyyy-zzzz"],
    "details": "a made-up vulnerability of the test",
    "summary": None,
    "fixed_in": ["1.1"],
    "withdrawn": None,
    "link": "https://osv.dev/vulnerability/PYSEC-2099-1",
    "source": "osv",
}


def project(latest: str, *, vulnerabilities: list[dict[str, Any]] | None = None, older: tuple[str, ...] = (), uploaded: str = OLD) -> dict[str, Any]:
    """PyPI's per-project JSON: `vulnerabilities` are those of `info.version`, `urls` its files."""
    return {
        "info": {"version": latest},
        "releases": {version: [] for version in (*older, latest)},
        "urls": [{"filename": f"pkg-{latest}.tar.gz", "upload_time_iso_8601": uploaded}],
        "vulnerabilities": vulnerabilities or [],
    }


class FakePyPI:
    """A transport answering like PyPI from dicts: per-release documents (absent: 404, as the proxy answers)
    and per-project documents; `down` makes every request fail as a refused connection."""

    def __init__(self, releases: dict[tuple[str, str], dict[str, Any]] | None = None, projects: dict[str, dict[str, Any]] | None = None, *, down: bool = False) -> None:
        self.releases = releases or {}
        self.projects = projects or {}
        self.down = down
        self.asked: list[str] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        url = str(request.url)
        self.asked.append(url)
        if self.down:
            raise requests.ConnectionError(f"refused: {url}")
        parts = url.removeprefix("https://pypi.org/pypi/").removesuffix("/json").split("/")
        document = self.releases.get((parts[0], parts[1])) if len(parts) == 2 else self.projects.get(parts[0])
        response = requests.Response()
        response.status_code, response.reason = (200, "OK") if document is not None else (404, "Not Found")
        response._content = json.dumps(document).encode() if document is not None else b"Not Found"
        response.headers["Content-Type"] = "application/json"
        response.url, response.request = url, request
        return response

    def close(self) -> None:
        pass


def release_request(name: str, version: str) -> Any:
    return requests.Request("GET", f"https://pypi.org/pypi/{name}/{version}/json").prepare()


def test_a_per_release_answer_passes_through_without_asking_the_project() -> None:
    pypi = FakePyPI(releases={("alpha", "1.0"): {"vulnerabilities": [MADE_UP]}}, projects={"alpha": project("1.0")})
    response = ProjectFallbackAdapter(pypi, now=NOW).send(release_request("alpha", "1.0"))
    assert response.status_code == 200 and response.json() == {"vulnerabilities": [MADE_UP]}
    assert pypi.asked == ["https://pypi.org/pypi/alpha/1.0/json"]


def test_a_404_for_the_latest_release_is_answered_with_the_project_document() -> None:
    document = project("1.0", vulnerabilities=[MADE_UP], older=("0.9",))
    adapter = ProjectFallbackAdapter(FakePyPI(projects={"alpha": document}), now=NOW)
    response = adapter.send(release_request("alpha", "1.0"))
    assert response.status_code == 200 and response.json() == document
    assert adapter.from_project == {("alpha", "1.0")} and adapter.unaudited == {}


def test_a_404_for_a_release_behind_the_latest_stays_404_and_is_recorded() -> None:
    adapter = ProjectFallbackAdapter(FakePyPI(projects={"alpha": project("1.1", older=("1.0",), uploaded=RECENT)}), now=NOW)
    response = adapter.send(release_request("alpha", "1.0"))
    assert response.status_code == 404 and adapter.from_project == set()
    (unaudited,) = adapter.unaudited.values()
    assert (unaudited.name, unaudited.version, unaudited.transient) == ("alpha", "1.0", True)
    assert "the latest release is 1.1" in unaudited.reason and "2 days ago" in unaudited.reason


def requirements(tmp_path: Path, *pins: str) -> str:
    path = tmp_path / "requirements.txt"
    path.write_text("# pinned\n" + "".join(f"{pin}\n" for pin in pins))
    return str(path)


def run(tmp_path: Path, pypi: FakePyPI, *argv: str) -> int:
    return main([*argv, "--cache-dir", str(tmp_path / "cache")], transport=pypi, now=NOW)


def test_every_pin_the_latest_release_and_clean_exits_0_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pypi = FakePyPI(projects={"alpha": project("1.0"), "beta-pkg": project("2.0")})
    assert run(tmp_path, pypi, requirements(tmp_path, "alpha==1.0", "Beta_Pkg==2.0")) == CLEAN
    assert capsys.readouterr().out == "2 dependencies audited, no known vulnerabilities\n"
    assert "https://pypi.org/pypi/beta-pkg/json" in pypi.asked


def test_a_vulnerability_in_the_project_document_exits_1_with_pip_audits_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # PyPI lists an advisory once per database; the table shows it once.
    ghsa = {**MADE_UP, "id": "GHSA-xxxx-yyyy-zzzz", "aliases": ["CVE-2099-0001", "PYSEC-2099-1"]}
    pypi = FakePyPI(projects={"alpha": project("1.0", vulnerabilities=[MADE_UP, ghsa]), "beta": project("2.0")})
    assert run(tmp_path, pypi, requirements(tmp_path, "alpha==1.0", "beta==2.0"), "--tolerate-transient") == VULNERABLE
    out = capsys.readouterr().out
    assert out.startswith("Found 1 known vulnerability in 1 package\nName  Version ID")
    (row,) = [line for line in out.splitlines() if line.startswith("alpha")]
    assert row.split()[:4] == ["alpha", "1.0", "PYSEC-2099-1", "1.1"] and "CVE-2099-0001" in row


def test_the_per_release_answer_is_preferred_to_the_project_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pypi = FakePyPI(releases={("alpha", "1.0"): {"vulnerabilities": [MADE_UP]}}, projects={"alpha": project("1.0")})
    assert run(tmp_path, pypi, requirements(tmp_path, "alpha==1.0")) == VULNERABLE
    assert "PYSEC-2099-1" in capsys.readouterr().out


def test_a_pin_behind_a_recent_release_is_named_and_only_tolerated_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pypi = FakePyPI(projects={"alpha": project("1.0"), "beta": project("2.1", older=("2.0",), uploaded=RECENT)})
    pins = requirements(tmp_path, "alpha==1.0", "beta==2.0")
    assert run(tmp_path, pypi, pins) == NOT_AUDITED
    first = capsys.readouterr().out.splitlines()
    assert first[0].startswith("not audited: beta==2.0: PyPI's per-release JSON does not answer here and the latest release is 2.1")
    assert first[1] == "dependency-audit: 1 dependencies audited, no known vulnerabilities; 1 NOT audited (above)"
    assert run(tmp_path, pypi, pins, "--tolerate-transient") == CLEAN
    second = capsys.readouterr().out.splitlines()
    assert second[0] == first[0] and second[1].endswith(", tolerated: PyPI did not answer or their newer releases are recent")


def test_a_pin_behind_a_release_older_than_the_grace_fails_even_in_ci(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pypi = FakePyPI(projects={"alpha": project("1.1", older=("1.0",), uploaded=OLD)})
    assert run(tmp_path, pypi, requirements(tmp_path, "alpha==1.0"), "--tolerate-transient") == NOT_AUDITED
    out = capsys.readouterr().out
    assert "not audited: alpha==1.0:" in out and "63 days ago" in out and "tolerated" not in out


def test_a_pin_that_is_no_release_on_pypi_is_never_tolerated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pypi = FakePyPI(projects={"alpha": project("1.1", uploaded=RECENT)})
    assert run(tmp_path, pypi, requirements(tmp_path, "alpha==7.0"), "--tolerate-transient") == NOT_AUDITED
    assert "not audited: alpha==7.0: not a release on PyPI (its latest is 1.1)" in capsys.readouterr().out


def test_a_vulnerability_beside_an_unaudited_pin_exits_1_and_names_both(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pypi = FakePyPI(projects={"alpha": project("1.0", vulnerabilities=[MADE_UP]), "beta": project("2.1", older=("2.0",), uploaded=RECENT)})
    assert run(tmp_path, pypi, requirements(tmp_path, "alpha==1.0", "beta==2.0"), "--tolerate-transient") == VULNERABLE
    out = capsys.readouterr().out
    assert "PYSEC-2099-1" in out and "not audited: beta==2.0:" in out


def test_pypi_unreachable_is_one_line_tolerated_only_in_ci_and_stops_asking(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pins = requirements(tmp_path, *(f"pkg{number}==1.0" for number in range(6)))
    pypi = FakePyPI(down=True)
    assert run(tmp_path, pypi, pins) == NOT_AUDITED
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("dependency-audit: NOT DONE: PyPI unreachable (ConnectionError: refused:") and line.endswith("none of the 6 pins audited")
    assert len(pypi.asked) == 3  # three pins in a row failed: the other three were not asked
    assert run(tmp_path, FakePyPI(down=True), pins, "--tolerate-transient") == CLEAN
    assert capsys.readouterr().out.rstrip().endswith("none of the 6 pins audited, tolerated")


def test_an_unpinned_requirement_is_invalid_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, FakePyPI(), requirements(tmp_path, "alpha>=1.0")) == 2
    assert "dependency-audit:" in capsys.readouterr().out
