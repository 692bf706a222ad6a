"""``nocert subjects replay-erasures``: after restoring ``NOCERT_KEY_DIR/subjects/`` from a backup, destroy
again the keys of every person erased since (SECURITY.md, *Personal data*): from the store's kept receipts, or
with ``--receipts FILE`` from receipts kept outside it (a whole backup older than an erasure knows nothing of
it)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_USAGE = 2


def add_subject_commands(commands: argparse._SubParsersAction[Any]) -> None:
    subjects = commands.add_parser("subjects", help="personal data: subject keys and erasures (API.md §14)")
    actions = subjects.add_subparsers(dest="subjects_command", required=True, metavar="ACTION")
    p = actions.add_parser("replay-erasures", help="destroy again the keys of every erased person (after a restore)")
    p.add_argument(
        "--receipts", metavar="FILE", type=Path,
        help="JSON kept outside the store: GET /v1/subjects/erasures' answer(s), or a list of receipts (JWS)",
    )
    p.set_defaults(run=replay)


def read_receipts(path: Path) -> list[str]:
    """The receipts of FILE: an answer of ``GET /v1/subjects/erasures`` (``items``), a list of them, a list of
    items, or a list of compact JWS."""
    data = json.loads(path.read_text(encoding="utf-8"))
    pages = data if isinstance(data, list) and all(isinstance(d, dict) and "items" in d for d in data) else [data]
    receipts: list[str] = []
    for page in pages:
        items = page["items"] if isinstance(page, dict) else page
        if not isinstance(items, list):
            raise ValueError("expected a list of erasures or receipts")
        for item in items:
            receipt = item.get("receipt") if isinstance(item, dict) else item
            if not isinstance(receipt, str):
                raise ValueError("an item without a receipt")
            receipts.append(receipt)
    return receipts


def replay(args: argparse.Namespace) -> int:
    from api.bootstrap import build
    from api.subjects import ReceiptRefused, replay_erasures, replay_receipts

    receipts = None
    if args.receipts is not None:
        try:
            receipts = read_receipts(args.receipts)
        except (OSError, ValueError, KeyError) as error:
            print(f"nocert: --receipts {args.receipts}: {error}", file=sys.stderr)
            return EXIT_USAGE
    services = build()
    try:
        erasures, destroyed = replay_erasures(services) if receipts is None else replay_receipts(services, receipts)
    except ReceiptRefused as error:
        print(f"nocert: --receipts {args.receipts}: {error}; no key destroyed", file=sys.stderr)
        return EXIT_USAGE
    finally:
        services.close()
    print(f"nocert: replayed {erasures} erasures, {destroyed} restored subject keys destroyed", file=sys.stderr)
    return EXIT_OK
