"""``nocert witness serve`` and ``nocert witness vkey`` (API.md §15), registered by `add_witness_commands`.

The witness needs nothing of the platform's: no database URL, no key directory, only the log's verifier
key (``GET /v1/log/vkey``) and a state directory of its own. ``python -m witness.cli witness ...`` runs the
same commands without the rest of the ``nocert`` command line.

Exit codes: 0 done, 2 refused (a vkey, a name or a state directory that cannot be used).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK, EXIT_REFUSED = 0, 2
DEFAULT_STATE = Path("./var/witness")
DEFAULT_PORT = 7380


def add_witness_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``witness serve`` and ``witness vkey`` to a command line's subcommands (each sets ``run``)."""
    witness = commands.add_parser("witness", help="run a C2SP tlog-witness for the platform's log (an audit office's)")
    actions = witness.add_subparsers(dest="witness_command", required=True, metavar="ACTION")

    p = actions.add_parser("serve", help="serve POST /add-checkpoint (C2SP tlog-witness) for one log")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--log-vkey", required=True, action="append", metavar="VKEY",
                   help="the log's note verifier key (GET /v1/log/vkey); repeat for a log with several keys")
    _state_arguments(p)
    p.set_defaults(run=serve)

    p = actions.add_parser("vkey", help="print this witness's verifier key (creating its key on first use)")
    _state_arguments(p)
    p.set_defaults(run=vkey)


def _state_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE, metavar="DIR",
                        help=f"the witness's key and SQLite state (default {DEFAULT_STATE})")
    parser.add_argument("--name", default=None,
                        help="the witness's key name, fixed when its key is created (default <host name>/witness)")


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from signing.note import COSIGNATURE_V1, NoteError, parse_vkey
    from witness.app import create_app
    from witness.core import Witness
    from witness.identity import IdentityError, load_or_create
    from witness.state import WitnessState

    try:
        log_keys = [parse_vkey(text) for text in args.log_vkey]
        if any(key.key_type == COSIGNATURE_V1 for key in log_keys):
            raise NoteError("a log signs with an Ed25519 note key (type 0x01), not a cosignature key")
        cosigner = load_or_create(args.state, args.name)
    except NoteError as error:
        return _refused(f"--log-vkey: {error}")
    except (IdentityError, OSError) as error:
        return _refused(str(error))
    witness = Witness(cosigner, WitnessState(args.state), log_keys)
    origins = ", ".join(sorted({key.name for key in log_keys}))
    print(f"nocert witness: {witness.vkey}", file=sys.stderr)
    print(f"nocert witness: cosigning {origins} on http://{args.host}:{args.port}/add-checkpoint", file=sys.stderr)
    uvicorn.run(create_app(witness), host=args.host, port=args.port, access_log=False, log_config=None)
    return EXIT_OK


def vkey(args: argparse.Namespace) -> int:
    from witness.identity import IdentityError, load_or_create

    try:
        print(load_or_create(args.state, args.name).vkey)
    except (IdentityError, OSError) as error:
        return _refused(str(error))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """A command line of the witness commands alone (``python -m witness.cli witness serve ...``)."""
    parser = argparse.ArgumentParser(prog="nocert")
    add_witness_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    os.umask(0o077)  # as `nocert`: the witness's key and state are its operator's alone
    return int(args.run(args))


def _refused(message: str) -> int:
    print(f"nocert witness: {message}", file=sys.stderr)
    return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
