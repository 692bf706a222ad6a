"""Known vulnerabilities in pinned dependencies (`make audit-deps`, run by .ci/run): pip-audit's own engine
(its requirements parser, PyPI service and table), run in-process over a fully pinned file (constraints.txt).

pip-audit asks PyPI's per-release JSON (pypi.org/pypi/<name>/<version>/json) for each pin and reads its
`vulnerabilities`. Behind a package proxy that URL may answer 404 while the per-project JSON
(pypi.org/pypi/<name>/json) answers; that document's `vulnerabilities` are those of the project's latest
release. So a transport adapter is mounted on pip-audit's session: the per-release answer is used whenever
there is one (a connected machine); on a 404 the adapter fetches the per-project document and answers with it
only when its `info.version` is the pinned version, since only then are its vulnerabilities the pin's.
Otherwise the 404 stands, pip-audit skips the pin, and this module names it as not audited. It never reports
an audit it did not make.

Exit codes and output (stdout):
  0  "N dependencies audited, no known vulnerabilities".
  1  a known vulnerability: pip-audit's summary and table (and the pins not audited, if any).
  2  invalid arguments or requirements file.
  3  some pins not audited (one line each, naming them and why), no vulnerability in those audited; or PyPI
     unreachable (one line).

CI (`--tolerate-transient`, as .ci/run calls it): a found vulnerability fails CI. A pin not audited for a
transient reason does not, so a network blip or a release published during CI does not turn CI red: PyPI
did not answer, or the release newer than the pin is less than GRACE_DAYS old. The pins are still named and
the run ends "... NOT audited, tolerated". A pin left behind by a release GRACE_DAYS or more old still exits
3 and fails CI: new releases are how fixes for vulnerabilities arrive, so a pin that is no longer the latest
release is exactly the one this network cannot audit; `make constraints` (pins the latest releases) or an
audit on a connected machine settles it. A pin that is no release on PyPI (or unaudited for another reason)
is never tolerated.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import requests
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pip_audit._audit import Auditor  # type: ignore[import-untyped]
from pip_audit._dependency_source import RequirementSource  # type: ignore[import-untyped]
from pip_audit._dependency_source.interface import DependencySourceError  # type: ignore[import-untyped]
from pip_audit._format import ColumnsFormat  # type: ignore[import-untyped]
from pip_audit._service import PyPIService, ServiceError, SkippedDependency  # type: ignore[import-untyped]

PYPI_JSON = "https://pypi.org/pypi/"
RELEASE_URL = re.compile(r"https://pypi\.org/pypi/(?P<name>[^/?#]+)/(?P<version>[^/?#]+)/json")
GRACE_DAYS = 7
TIMEOUT_SECONDS = 20
# After this many pins in a row whose query failed on the network, the rest are not asked (PyPI unreachable).
UNREACHABLE_AFTER = 3
CLEAN, VULNERABLE, INVALID, NOT_AUDITED = 0, 1, 2, 3


class Transport(Protocol):
    """What `requests` asks of an adapter mounted on a session (requests.adapters.BaseAdapter's interface)."""

    def send(self, request: Any, **kwargs: Any) -> Any: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Unaudited:
    name: str
    version: str
    reason: str
    transient: bool
    network: bool = False  # the query failed on the network (or PyPI's 5xx): PyPI did not answer

    def line(self) -> str:
        return f"not audited: {self.name}=={self.version}: {self.reason}"


def _key(name: str, version: str) -> tuple[str, str]:
    try:
        return canonicalize_name(name), str(Version(version))
    except InvalidVersion:
        return canonicalize_name(name), version


class ProjectFallbackAdapter:
    """Answers pip-audit's per-release query with the per-project document when the per-release JSON is 404 and
    the project's latest release is the one asked for; keeps the 404 otherwise and records why in `unaudited`."""

    def __init__(self, inner: Transport, *, now: datetime | None = None, grace: timedelta = timedelta(days=GRACE_DAYS)) -> None:
        self.inner = inner
        self.now = now
        self.grace = grace
        self.unaudited: dict[tuple[str, str], Unaudited] = {}
        self.from_project: set[tuple[str, str]] = set()

    def send(self, request: Any, **kwargs: Any) -> Any:
        response = self.inner.send(request, **kwargs)
        match = RELEASE_URL.fullmatch(str(request.url))
        if match is None or response.status_code != 404:
            return response
        name, version = match["name"], match["version"]
        project_request = request.copy()
        project_request.prepare_url(f"{PYPI_JSON}{name}/json", None)
        project = self.inner.send(project_request, **kwargs)
        key = _key(name, version)
        if project.status_code != 200:
            self.unaudited[key] = Unaudited(name, version, f"PyPI answers {response.status_code} for the release and {project.status_code} for the project", transient=project.status_code >= 500)
            return response
        document = project.json()
        latest = str(document.get("info", {}).get("version", ""))
        if _key(name, latest) == key:
            self.from_project.add(key)
            return project
        self.unaudited[key] = self._left_behind(name, version, latest, document)
        return response

    def _left_behind(self, name: str, version: str, latest: str, document: Mapping[str, Any]) -> Unaudited:
        releases = {_key(name, release)[1] for release in document.get("releases", {})}
        if _key(name, version)[1] not in releases:
            return Unaudited(name, version, f"not a release on PyPI (its latest is {latest})", transient=False)
        uploads = [datetime.fromisoformat(file["upload_time_iso_8601"]) for file in document.get("urls", []) if file.get("upload_time_iso_8601")]
        why = f"PyPI's per-release JSON does not answer here and the latest release is {latest}"
        if not uploads:
            return Unaudited(name, version, f"{why} (upload time unknown)", transient=False)
        uploaded = min(uploads)
        age = (self.now or datetime.now(UTC)) - uploaded
        return Unaudited(name, version, f"{why}, uploaded {uploaded:%Y-%m-%d %H:%M} UTC ({age.days} days ago)", transient=age < self.grace)

    def close(self) -> None:
        self.inner.close()


class TolerantService:
    """pip-audit's PyPI service, one pin at a time: a pin whose query fails (network, PyPI's 5xx, a body that is
    no JSON) is skipped and recorded as not audited instead of ending the whole audit."""

    def __init__(self, service: Any, adapter: ProjectFallbackAdapter) -> None:
        self.service = service
        self.adapter = adapter
        self.unreachable: str | None = None

    def query_all(self, specs: Iterator[Any]) -> Iterator[tuple[Any, list[Any]]]:
        failures_in_a_row = 0
        for spec in specs:
            if spec.is_skipped():
                yield spec, []
                continue
            version = str(spec.version)
            if failures_in_a_row >= UNREACHABLE_AFTER:
                reason = f"not asked: PyPI unreachable ({self.unreachable})"
                self.adapter.unaudited[_key(spec.name, version)] = Unaudited(spec.name, version, reason, transient=True, network=True)
                yield SkippedDependency(name=spec.name, skip_reason=reason), []
                continue
            try:
                answer = self.service.query(spec)
            except (ServiceError, requests.RequestException) as error:
                failures_in_a_row += 1
                self.unreachable = f"{type(error).__name__}: {error}"
                reason = f"PyPI did not answer ({self.unreachable})"
                self.adapter.unaudited[_key(spec.name, version)] = Unaudited(spec.name, version, reason, transient=True, network=True)
                yield SkippedDependency(name=spec.name, skip_reason=reason), []
                continue
            failures_in_a_row = 0
            yield answer


def _one_per_id(vulns: list[Any]) -> list[Any]:
    """PyPI lists an advisory once per database (PYSEC-..., GHSA-...); pip-audit names each by its preferred id
    and keeps both when both are named PYSEC (ecdsa 0.19.2 showed CVE-2024-23342 twice). One row per id."""
    first: dict[str, Any] = {}
    for vuln in vulns:
        first.setdefault(vuln.id, vuln)
    return list(first.values())


@dataclass(frozen=True)
class Outcome:
    audited: int
    vulnerable: dict[Any, list[Any]]
    unaudited: list[Unaudited]
    from_project: int
    unreachable: str | None


def audit(requirements: Path, *, transport: Transport | None = None, cache_dir: Path | None = None, now: datetime | None = None) -> Outcome:
    """Audits the pins of `requirements` (no install, no resolution: every line must pin `==`). `transport`
    replaces the network (tests); by default the adapter wraps the one pip-audit's caching session uses."""
    service = PyPIService(cache_dir=cache_dir, timeout=TIMEOUT_SECONDS)
    adapter = ProjectFallbackAdapter(transport or service.session.get_adapter(PYPI_JSON), now=now)
    service.session.mount(PYPI_JSON, adapter)
    tolerant = TolerantService(service, adapter)
    source = RequirementSource([requirements], no_deps=True, disable_pip=True)
    results = dict(Auditor(tolerant).audit(source))
    unaudited: list[Unaudited] = []
    for spec in results:
        if spec.is_skipped():
            known = [u for key, u in adapter.unaudited.items() if key[0] == canonicalize_name(spec.name)]
            unaudited.extend(known or [Unaudited(spec.name, "?", spec.skip_reason, transient=False)])
    audited = [spec for spec in results if not spec.is_skipped()]
    everything_failed = bool(unaudited) and not audited and all(u.network for u in unaudited)
    return Outcome(
        audited=len(audited),
        vulnerable={spec: _one_per_id(results[spec]) for spec in audited if results[spec]},
        unaudited=sorted(unaudited, key=lambda u: canonicalize_name(u.name)),
        from_project=len(adapter.from_project),
        unreachable=tolerant.unreachable if everything_failed else None,
    )


def report(outcome: Outcome, *, tolerate_transient: bool) -> tuple[int, list[str]]:
    """The exit code and the lines to print (module docstring)."""
    lines: list[str] = []
    if outcome.vulnerable:
        count = sum(len(vulns) for vulns in outcome.vulnerable.values())
        packages = len(outcome.vulnerable)
        lines.append(f"Found {count} known {'vulnerability' if count == 1 else 'vulnerabilities'} in {packages} {'package' if packages == 1 else 'packages'}")
        lines.append(ColumnsFormat(False, True).format(outcome.vulnerable, []))
    tolerated = tolerate_transient and all(u.transient for u in outcome.unaudited)
    if outcome.unreachable is not None:
        lines.append(f"dependency-audit: NOT DONE: PyPI unreachable ({outcome.unreachable}); none of the {len(outcome.unaudited)} pins audited" + (", tolerated" if tolerated else ""))
    elif outcome.unaudited:
        lines.extend(u.line() for u in outcome.unaudited)
        if not outcome.vulnerable:
            lines.append(
                f"dependency-audit: {outcome.audited} dependencies audited, no known vulnerabilities; {len(outcome.unaudited)} NOT audited (above)"
                + (", tolerated: PyPI did not answer or their newer releases are recent" if tolerated else "")
            )
    if outcome.vulnerable:
        return VULNERABLE, lines
    if not outcome.unaudited:
        return CLEAN, [f"{outcome.audited} dependencies audited, no known vulnerabilities"]
    return (CLEAN if tolerated else NOT_AUDITED), lines


def main(argv: Sequence[str] | None = None, *, transport: Transport | None = None, now: datetime | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.dependency_audit", description="Known vulnerabilities in pinned dependencies, through pip-audit (module docstring).")
    parser.add_argument("requirements", type=Path, help="a fully pinned requirements file (name==version a line)")
    parser.add_argument(
        "--tolerate-transient",
        action="store_true",
        help=f"exit 0 when the only pins not audited are so because PyPI did not answer or a newer release is under {GRACE_DAYS} days old (CI)",
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="pip-audit's HTTP cache (default: its own)")
    args = parser.parse_args(argv)
    if not args.requirements.is_file():
        print(f"dependency-audit: no such file: {args.requirements}")
        return INVALID
    try:
        outcome = audit(args.requirements, transport=transport, cache_dir=args.cache_dir, now=now)
    except DependencySourceError as error:
        print(f"dependency-audit: {args.requirements}: {error}")
        return INVALID
    code, lines = report(outcome, tolerate_transient=args.tolerate_transient)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
