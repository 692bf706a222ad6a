"""The ``nocert`` command line: serve, demo, views rebuild, audit and offline proof verification."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from api import inputs
from api.logs import configure_logging
from api.settings import ConfigurationError

if TYPE_CHECKING:
    from api.bootstrap import Services

EXIT_OK, EXIT_PROBLEMS, EXIT_REFUSED, EXIT_INTERNAL = 0, 1, 2, 3


class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line (exit 2), like every other refusal; ``--help`` shows the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_REFUSED, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _services() -> Services:
    from api.bootstrap import build

    return build()


def serve(args: argparse.Namespace) -> int:
    from api.metrics_dir import MULTIPROC_VARIABLE, prepare_multiprocess_dir

    owned = MULTIPROC_VARIABLE not in os.environ
    metrics_dir = prepare_multiprocess_dir()  # before anything imports prometheus_client
    try:
        return _serve(args, metrics_dir)
    finally:
        if owned:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(args: argparse.Namespace, metrics_dir: Path) -> int:
    import uvicorn

    from api.background import Supervisor, work_command
    from api.bootstrap import build

    build().close()  # fail fast, in this process, on a wrong setting
    workers = args.workers or os.cpu_count() or 1
    # glibc gives each thread that allocates its own malloc arena (up to 8 per core); a worker's 40
    # request threads then keep memory that no arena gives back, and RSS creeps up under steady load.
    # The workers are started afresh (spawn), so they read this when they start.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    # The workers serve requests only; the node's background jobs run in one `nocert work` process beside them
    # (api.background), unless the operator runs that elsewhere (--no-background).
    os.environ.setdefault("NOCERT_WAKE_SOCKET", str(metrics_dir / "wake.sock"))  # for the workers and `nocert work`
    supervisor = None if args.no_background else Supervisor(work_command())
    print(f"nocert: serving on http://{args.host}:{args.port} with {workers} worker(s)"
          f"{'' if supervisor else ' and no background process'}; docs at http://{args.host}:{args.port}/docs"
          f"; worker metrics in {metrics_dir}", file=sys.stderr)
    if supervisor is not None:
        supervisor.start()
    try:
        uvicorn.run(
            "api.main:create_worker",
            factory=True,
            host=args.host,
            port=args.port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_config=None,
        )
    finally:
        if supervisor is not None:
            supervisor.stop()
    return EXIT_OK


def work(args: argparse.Namespace) -> int:
    """The node's background jobs only (also what serve runs beside its workers), until SIGTERM or SIGINT."""
    from api.background import run_background

    services = _services()
    return run_background(services, services.settings.wake_socket)


def demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from api.demo import StoreNotEmpty, keys_file, run_demo, write_keys_file
    from api.progress import progress_bar
    from api.workbench.demo_officers import enrol_demo_officers

    services = _services()
    console = Console(soft_wrap=True, highlight=False)
    saved = keys_file(services.settings.key_dir)
    docs = f"{args.url}/docs"
    try:
        with progress_bar("raising demo checks", total=args.checks, console=console) as report:
            departments = run_demo(services.platform, args.checks, lambda done: report(done, args.checks))
        officers = enrol_demo_officers(services.platform, services.database, [d.id for d in departments])
    except StoreNotEmpty:
        if not args.keep_existing:
            print(f"nocert demo: the store at {services.settings.database_url} already holds events; nothing was changed "
                  f"(the demo's keys are in {saved}; delete ./var to start over)", file=sys.stderr)
            return EXIT_REFUSED
        if saved.is_file():
            console.print(f"The store already holds events; the demo's API keys, from {saved}:")
            console.print(saved.read_text(encoding="utf-8").rstrip())
        else:
            console.print(f"The store already holds events and {saved} is not there: these are not the demo's keys.")
        console.print(f"API documentation: {docs}")
        return EXIT_OK
    finally:
        services.close()
    lines = [f"{department.id:<22} {','.join(department.roles):<16} {department.api_key}" for department in departments]
    write_keys_file(saved, lines)
    console.print(f"[bold]Demo departments[/bold] (API keys; also in {saved}, mode 0600):")
    for line in lines:
        console.print(line)
    console.print(
        f"Raised {args.checks} checks, their lives played over the last 72 hours. Try: curl -H 'Authorization: Bearer <key>' "
        f"{args.url}/v1/inbox with an issuer's key (e.g. fz-gulou-police), or open {docs} and 'Authorize'."
    )
    console.print(
        "Webhooks: the demo creates no subscription. To have an approval system told of its checks, run"
        " (with the approver's key; an http:// URL needs NOCERT_WEBHOOK_ALLOW=http://127.0.0.1 on the server):\n"
        "  curl -H 'Authorization: Bearer <key>' -H 'Content-Type: application/json'"
        " -d '{\"url\": \"https://approval.example/nocert-hook\", \"types\": null}' "
        f"{args.url}/v1/subscriptions\n"
        "Keep the whsec_ secret it answers (shown once); docs/webhooks.md shows how to verify deliveries.",
        soft_wrap=True, highlight=False,
    )
    console.print(f"[bold]Workbench sign-ins[/bold] at {args.url}/ui/sign-in (passwords shown this once):")
    for officer in officers:
        console.print(f"{officer.department:<22} {officer.login:<14} {officer.password}", soft_wrap=True, highlight=False)
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

    from signing.proofs import verify_proof

    text = inputs.read_text(args.file, "proof").strip()
    root = inputs.read_certificate(args.root)
    verdict = verify_proof(text, root, None, datetime.now(UTC))
    if args.json:
        print(json.dumps({"valid": verdict.valid, "reasons": verdict.reasons, "kid": verdict.kid,
                          "issuer": verdict.issuer, "payload": verdict.payload, "offline": True}, ensure_ascii=False))
    else:
        print("VALID" if verdict.valid else "INVALID: " + ", ".join(verdict.reasons))
        print("note: offline verification cannot know revocations of keys or proofs; ask the platform (POST /v1/proofs/verify).")
    return EXIT_OK if verdict.valid else EXIT_PROBLEMS


def backup(args: argparse.Namespace) -> int:
    from api.backup import backup as write_backup
    from api.bootstrap import build

    inputs.check_writable(args.output, "backup")
    services = build(read_only=True)
    try:
        summary = write_backup(services, Path(args.output), subject_keys=not args.without_subject_keys)
    finally:
        services.close()
    print(f"nocert: backed up {summary.line()} to {args.output} (it holds private keys: keep it safe)", file=sys.stderr)
    return EXIT_OK


def restore(args: argparse.Namespace) -> int:
    from api.app import create_app
    from api.backup import check_key_dirs_empty, key_stores, read_archive, restore_store, write_keys
    from api.bootstrap import build
    from api.settings import load_settings

    settings = load_settings()
    stores = key_stores(settings)
    check_key_dirs_empty(stores)
    manifest, members = read_archive(Path(inputs.require_file(args.archive, "restore")))
    written = [stores[name.partition("/")[0]] / name.partition("/")[2] for name in members if name.partition("/")[0] in stores]
    key_files = write_keys(stores, members)
    try:
        services = build(settings)
        try:
            create_app(services, start_views=False)  # every table the service sets up, before the rows go in
            summary = restore_store(services, members)
        finally:
            services.close()
    except BaseException:
        for path in written:  # the keys go again, so that the restore can be run again once the cause is fixed
            path.unlink(missing_ok=True)
        raise
    summary.key_files = key_files
    print(f"nocert: restored {summary.line()} from a backup of {manifest['created_at']}; "
          "`nocert serve` rebuilds the views, `nocert audit verify` checks the ledger", file=sys.stderr)
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    from api.settings import variables

    listed = "\n".join(f"  {name:<28} default {default}" for name, default in variables())
    parser = OneLineParser(
        prog="nocert",
        description="nocert: online checks (协查) answered with sealed proofs. Configured by NOCERT_* environment variables.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"environment (README.md, Configuration; deploy/nocert.env documents each):\n{listed}\n"
        "exit codes: 0 done or valid, 1 a problem found or a proof invalid, 2 refused (a setting, an argument "
        "or a file that cannot be used), 3 internal error",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("serve", help="run the HTTP service, and its background jobs in one process beside it")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=inputs.port, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=inputs.positive, default=None, help="worker processes (default: one per core)")
    p.add_argument("--no-background", action="store_true",
                   help="run no background process (views, webhooks, timers): `nocert work` runs them elsewhere")
    p.set_defaults(run=serve)

    p = commands.add_parser("work", help="run only the background jobs (views, checkpoints, Overdue, webhooks, witnessing)")
    p.set_defaults(run=work)

    p = commands.add_parser("demo", help="create a demo province on an empty store and print its API keys")
    p.add_argument("--checks", type=inputs.not_negative, default=50, help="how many checks to raise (default 50)")
    p.add_argument("--keep-existing", action="store_true",
                   help="on a store that holds events, show the demo's keys again (from the file it wrote) and exit 0")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="where the service will answer, for the hints printed")
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

    p = commands.add_parser("backup", help="write the event store, kept tables, keys and signed checkpoints to one tar archive")
    p.add_argument("output", help="the archive to write (.tar, or .tar.gz to compress); mode 0600")
    p.add_argument("--without-subject-keys", action="store_true", help="leave the subject key store out (kept apart)")
    p.set_defaults(run=backup)

    p = commands.add_parser("restore", help="restore a backup into an empty store and an empty key directory")
    p.add_argument("archive", help="an archive written by `nocert backup`")
    p.set_defaults(run=restore)

    from api.audit_cli import add_audit_commands

    add_audit_commands(commands)
    from api.subjects_cli import add_subject_commands

    add_subject_commands(commands)

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
        parts = (re.sub(r"^\s*-\s+", "", line).strip() for line in str(error).splitlines())
        print("nocert: " + "; ".join(part for part in parts if part), file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print("nocert: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the last word: one line, never a traceback (a bug: please report it)
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(f"nocert {args.command}: internal error: {type(error).__name__}: {first}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
