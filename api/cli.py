"""The ``nocert`` command line: serve, demo, views rebuild, audit and offline proof verification."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from api.logs import configure_logging
from api.settings import ConfigurationError

if TYPE_CHECKING:
    from api.bootstrap import Services

EXIT_OK, EXIT_PROBLEMS, EXIT_REFUSED = 0, 1, 2


def _services() -> Services:
    from api.bootstrap import build

    return build()


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.bootstrap import build

    build().close()  # fail fast, in this process, on a wrong setting
    workers = args.workers or os.cpu_count() or 1
    # glibc gives each thread that allocates its own malloc arena (up to 8 per core); a worker's 40
    # request threads then keep memory that no arena gives back, and RSS creeps up under steady load.
    # The workers are started afresh (spawn), so they read this when they start.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    print(f"nocert: serving on http://{args.host}:{args.port} with {workers} worker(s); docs at http://{args.host}:{args.port}/docs", file=sys.stderr)
    uvicorn.run(
        "api.main:create",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
    )
    return EXIT_OK


def demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from api.demo import StoreNotEmpty, run_demo
    from api.progress import progress_bar

    services = _services()
    console = Console()
    try:
        with progress_bar("raising demo checks", total=args.checks, console=console) as report:
            departments = run_demo(services.platform, args.checks, lambda done: report(done, args.checks))
    except StoreNotEmpty:
        console.print(
            f"[red]nocert demo: the store at {services.settings.database_url} already holds events; "
            "nothing was changed. Use an empty database (e.g. delete ./var) to create the demo again.[/red]"
        )
        return EXIT_REFUSED
    finally:
        services.close()
    console.print("[bold]Demo departments[/bold] (API keys are shown this once; copy the one you need):")
    for department in departments:
        console.print(f"{department.id:<22} {','.join(department.roles):<16} {department.api_key}", soft_wrap=True, highlight=False)
    console.print(
        f"Raised {args.checks} checks. Try: curl -H 'Authorization: Bearer <key>' http://127.0.0.1:8000/v1/inbox"
        " with an issuer's key (e.g. fz-gulou-police), or open http://127.0.0.1:8000/docs and 'Authorize'."
    )
    if not services.settings.admin_key:
        console.print("Set NOCERT_ADMIN_KEY before `nocert serve` to use the admin endpoints.")
    return EXIT_OK


def views_rebuild(args: argparse.Namespace) -> int:
    from rich.console import Console

    from api.progress import progress_bar
    from projections.ledger import LedgerMismatch

    services = _services()
    try:
        with progress_bar("rebuilding views", console=Console(), transient=False) as report:
            replayed = services.views.rebuild(report)
    except LedgerMismatch as error:
        print(f"nocert views rebuild: refused, the live views are kept: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    finally:
        services.close()
    print(f"nocert: rebuilt every view from {replayed} events", file=sys.stderr)
    return EXIT_OK


def proof_verify(args: argparse.Namespace) -> int:
    from datetime import datetime

    from signing.certificates import load_pem
    from signing.proofs import verify_proof

    text = Path(args.file).read_text().strip() if args.file != "-" else sys.stdin.read().strip()
    root = load_pem(Path(args.root).read_bytes())
    verdict = verify_proof(text, root, None, datetime.now(UTC))
    if args.json:
        print(json.dumps({"valid": verdict.valid, "reasons": verdict.reasons, "kid": verdict.kid,
                          "issuer": verdict.issuer, "payload": verdict.payload, "offline": True}, ensure_ascii=False))
    else:
        print("VALID" if verdict.valid else "INVALID: " + ", ".join(verdict.reasons))
        print("note: offline verification cannot know revocations of keys or proofs; ask the platform (POST /v1/proofs/verify).")
    return EXIT_OK if verdict.valid else EXIT_PROBLEMS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nocert",
        description="nocert: online checks (协查) answered with sealed proofs. Configured by NOCERT_* environment variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("serve", help="run the HTTP service with its view updaters")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p.set_defaults(run=serve)

    p = commands.add_parser("demo", help="create a demo province on an empty store and print its API keys")
    p.add_argument("--checks", type=int, default=50, help="how many checks to raise (default 50)")
    p.set_defaults(run=demo)

    views = commands.add_parser("views", help="maintain the views").add_subparsers(dest="views_command", required=True, metavar="ACTION")
    p = views.add_parser("rebuild", help="rebuild every view from the event log (safe while serving)")
    p.set_defaults(run=views_rebuild)

    proof = commands.add_parser("proof", help="work with sealed proofs").add_subparsers(dest="proof_command", required=True, metavar="ACTION")
    p = proof.add_parser("verify", help="verify a proof offline against the root certificate (exit 0 valid, 1 invalid)")
    p.add_argument("file", help="file holding the compact JWS, or - for standard input")
    p.add_argument("--root", required=True, help="the platform root certificate, PEM (GET /v1/trust/root)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=proof_verify)

    from api.audit_cli import add_audit_commands

    add_audit_commands(commands)

    from witness.cli import add_witness_commands

    add_witness_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.umask(0o077)  # the database and key files hold citizens' data and secrets: owner only
    configure_logging()
    try:
        status: int = args.run(args)
        return status
    except ConfigurationError as error:
        print(f"nocert: {error}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
