"""``nocert audit ...`` commands (verify, export, verify-bundle): registered by the CLI."""

from __future__ import annotations

import argparse


def add_audit_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Audit commands arrive with the audit issue; until then ``nocert audit`` is absent."""
    return None
