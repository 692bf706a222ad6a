"""``nocert audit ...``: verify (API.md §8), export and verify-bundle (evidence bundles), registered by the CLI.

Exit codes: 0 all holds, 1 a problem was found (or a bundle cannot be made yet), 2 the command was refused
(a setting or an input file that cannot be used).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK, EXIT_PROBLEMS, EXIT_REFUSED = 0, 1, 2


def add_audit_commands(commands: argparse._SubParsersAction[Any]) -> None:
    from api import inputs

    audit = commands.add_parser("audit", help="audit the ledger, export and verify evidence bundles")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    p = actions.add_parser(
        "verify",
        help="recompute the ledger from the event store and check it against every signed checkpoint, "
        "every proof and every check's transitions (read only; exit 0 when all holds, 1 otherwise)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--root", help="verify against this root certificate (PEM) instead of the key directory's")
    p.add_argument("--workers", type=inputs.positive, default=None, help="processes verifying proofs (default: one per core)")
    p.add_argument("--checkpoint", action="append", default=[], metavar="FILE",
                   help="a checkpoint archived earlier (C2SP note or JWS): the ledger must extend it (repeatable)")
    p.set_defaults(run=verify)

    p = actions.add_parser("export", help="print the evidence bundle of one check (JSON) on standard output")
    p.add_argument("check_id", metavar="CHECK_ID", help="the check's id (UUID)")
    p.add_argument("--wait", type=inputs.seconds, default=0.0, metavar="SECONDS",
                   help="wait up to this long for a signed checkpoint to cover the check (default: do not wait)")
    p.add_argument("-o", "--output", help="write the bundle to this file instead of standard output")
    p.add_argument("--for", dest="reader", metavar="DEPARTMENT_ID",
                   help="the department the bundle is for: its approver, the issuer that sealed its proof and auditors "
                   "get the stored states and the proof (identity numbers in full); anyone else, or no --for, a "
                   "masked bundle (hashes only)")
    p.set_defaults(run=export)

    p = actions.add_parser(
        "verify-bundle",
        help="verify an evidence bundle offline with nothing but the root certificate (exit 0 valid, 1 invalid)",
    )
    p.add_argument("file", help="the bundle (JSON), or - for standard input")
    p.add_argument("--root", required=True, help="the platform root certificate, PEM (GET /v1/trust/root)")
    p.add_argument("--witness", action="append", default=[], metavar="VKEY",
                   help="a witness's verifier key: its cosignature of the bundle's checkpoint must be there and verify "
                   "(repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=verify_bundle)


def _root_certificate(path: str | None, services: Any = None) -> Any:
    from api import inputs

    if path is None:
        return services.keystore.root()[1]
    return inputs.read_certificate(path)


def verify(args: argparse.Namespace) -> int:
    from api.bootstrap import build
    from api.progress import progress_bar
    from api.trust import PlatformTrust
    from audit.verify import verify_ledger

    services = build(read_only=True)
    try:
        root = _root_certificate(args.root, services)
        heads = signed_heads(services, root, args.checkpoint)
        with progress_bar("auditing the event store", terminal_only=True) as progress:
            report = verify_ledger(
                services.platform,
                services.database,
                services.log,
                root,
                trust=PlatformTrust(services.platform),
                progress=progress,
                workers=args.workers,
                heads=heads,
            )
    finally:
        services.close()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        for problem in report.problems:
            print(problem.line())
        print(report.summary())
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def signed_heads(services: Any, root: Any, files: list[str]) -> list[tuple[str, Any]]:
    """The tree heads signed earlier that the ledger must extend (API.md §15), each with where it is from:
    the `--checkpoint` files, the checkpoint archived in the key directory (`signing.archive`), and the
    latest checkpoint each witness of ``NOCERT_WITNESSES`` cosigned."""
    from api import inputs
    from api.bootstrap import witness_endpoints
    from api.settings import ConfigurationError
    from signing.note import parse_vkey
    from signing.rollback import ArchivedCheckpointError, TreeHead, read_archived
    from witness.client import WitnessClient

    log_keys = [parse_vkey(services.views.note_signer.vkey)]
    heads: list[tuple[str, TreeHead]] = []
    for name in files:
        text = inputs.read_text(name, "--checkpoint")
        try:
            heads.append((f"--checkpoint {name}", read_archived(text, root, log_keys)))
        except ArchivedCheckpointError as error:
            raise ConfigurationError(f"--checkpoint {name}: {error}") from None
    archive = services.views.archive
    try:
        archived = archive.read() if archive is not None else None
        if archived is not None:
            heads.append((f"the checkpoint archived in {archive.path}", read_archived(archived["jws"], root, log_keys)))
    except (ValueError, ArchivedCheckpointError) as error:
        raise ConfigurationError(f"{archive.path}: {error}; move it away to audit without it") from None
    for endpoint in witness_endpoints(services.settings):
        client = WitnessClient(endpoint, timeout=10)
        try:
            seen = client.latest(services.settings.log_origin, log_keys)
        finally:
            client.close()
        if seen.checkpoint is not None:
            head = TreeHead(seen.checkpoint.size, seen.checkpoint.root_hash, "witness-cosigned")
            heads.append((f"witness {endpoint.name} ({endpoint.url})", head))
        elif seen.status != "none":
            print(f"nocert audit verify: witness {endpoint.name} ({endpoint.url}): {seen.status} {seen.detail}; "
                  "its cosigned size was not checked", file=sys.stderr)
    return heads


def export(args: argparse.Namespace) -> int:
    from uuid import UUID

    from api.bootstrap import build
    from audit.evidence import serialize
    from audit.export import ExportError, export_bundle_waiting
    from domain.timefmt import utcnow

    try:
        check_id = UUID(args.check_id)
    except ValueError:
        print(f"nocert audit export: {args.check_id!r} is not a check id (UUID)", file=sys.stderr)
        return EXIT_REFUSED
    if args.output:
        from api import inputs

        inputs.check_writable(args.output, "--output")
    services = build(read_only=True)
    try:
        root = services.keystore.root()[1]
        masked = not _reader_sees_full_bundle(services, check_id, args.reader)
        bundle = export_bundle_waiting(
            services.platform, services.database, services.log, root, check_id, utcnow, wait_seconds=max(0.0, args.wait),
            masked=masked, checkpoint_note=services.views.checkpoint_note,
        )
    except ExportError as error:
        print(f"nocert audit export: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    finally:
        services.close()
    data = serialize(bundle)
    if args.output:
        from api import inputs

        inputs.write_bytes(args.output, data, "--output")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return EXIT_OK


def _reader_sees_full_bundle(services: Any, check_id: Any, reader: str | None) -> bool:
    """Whether the department `reader` may have the full bundle of the check (`api.access.sees_full_bundle`)."""
    from api.access import sees_full_bundle
    from api.principal import Principal
    from audit.export import ExportError
    from domain.errors import DomainError

    if reader is None:
        return False
    try:
        check = services.platform.check(check_id)
    except DomainError:
        raise ExportError(f"no check {check_id}") from None
    try:
        department = services.platform.department(reader)
    except DomainError:
        raise ExportError(f"--for: no department {reader!r}") from None
    return sees_full_bundle(check, Principal(department.department_id, frozenset(department.roles), department))


def verify_bundle(args: argparse.Namespace) -> int:
    from api import inputs
    from api.settings import ConfigurationError
    from audit.bundle import verify_bundle as judge
    from domain.timefmt import utcnow
    from signing.note import NoteError, parse_vkey

    root = _root_certificate(args.root)
    try:
        witnesses = [parse_vkey(text) for text in args.witness]
    except NoteError as error:
        raise ConfigurationError(f"--witness: {error}") from None
    data = inputs.read_text(args.file, "bundle").encode("utf-8")
    verdict = judge(data, root, utcnow(), witnesses)
    if args.json:
        print(json.dumps(verdict.to_dict(), ensure_ascii=False))
    else:
        what = f"check {verdict.check_id}, {verdict.events} event(s)" if verdict.check_id else "bundle"
        if verdict.valid:
            print(f"VALID: {what}, status {verdict.status}, covered by the checkpoint at tree size {verdict.tree_size}")
        else:
            print(f"INVALID: {what}")
            for reason in verdict.reasons:
                print(f"  - {reason}")
        if verdict.proof is not None:
            proof = verdict.proof
            state = "valid when issued" if proof.valid_at_issue else "INVALID: " + ", ".join(proof.integrity_reasons)
            print(f"proof {proof.id} by {proof.issuer}: {state}; {'expired' if proof.expired else 'not expired'}"
                  f"{'; revoked at ' + proof.revoked_at if proof.revoked_at else ''}")
        for note in verdict.notes:
            print(f"note: {note}")
    return EXIT_OK if verdict.valid else EXIT_PROBLEMS
