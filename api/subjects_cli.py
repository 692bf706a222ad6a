"""``nocert subjects replay-erasures``: after restoring ``NOCERT_KEY_DIR/subjects/`` from a backup, destroy
again the keys of every person erased since (SECURITY.md, *Personal data*)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK = 0


def add_subject_commands(commands: argparse._SubParsersAction[Any]) -> None:
    subjects = commands.add_parser("subjects", help="personal data: subject keys and erasures (API.md §14)")
    actions = subjects.add_subparsers(dest="subjects_command", required=True, metavar="ACTION")
    p = actions.add_parser("replay-erasures", help="destroy again the keys of every erased person (after a restore)")
    p.set_defaults(run=replay)


def replay(args: argparse.Namespace) -> int:
    from api.bootstrap import build
    from api.subjects import replay_erasures

    services = build()
    try:
        erasures, destroyed = replay_erasures(services)
    finally:
        services.close()
    print(f"nocert: replayed {erasures} erasures, {destroyed} restored subject keys destroyed", file=sys.stderr)
    return EXIT_OK
