"""Files the command line reads and writes: every way one cannot be used is a one-line ConfigurationError
(``nocert`` prints it and exits 2), never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from api.settings import ConfigurationError


def read_bytes(path: str, what: str) -> bytes:
    """The content of ``path`` (``-``: standard input); ``what`` names it in the message."""
    if path == "-":
        return sys.stdin.buffer.read()
    file = Path(path)
    if file.is_dir():
        raise ConfigurationError(f"{what}: {path} is a directory, not a file")
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"{what}: {path} does not exist") from None
    except OSError as error:
        raise ConfigurationError(f"{what}: cannot read {path}: {error.strerror or error}") from None


def require_file(path: str, what: str) -> str:
    """``path`` when it names a readable file."""
    file = Path(path)
    if file.is_dir():
        raise ConfigurationError(f"{what}: {path} is a directory, not a file")
    if not file.is_file():
        raise ConfigurationError(f"{what}: {path} does not exist")
    if not os.access(file, os.R_OK):
        raise ConfigurationError(f"{what}: cannot read {path}")
    return path


def read_text(path: str, what: str) -> str:
    """The UTF-8 text of ``path``; a binary file is refused rather than judged."""
    data = read_bytes(path, what)
    if b"\x00" in data:
        raise ConfigurationError(f"{what}: {path} is a binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{what}: {path} is not UTF-8 text") from None


def read_certificate(path: str, what: str = "--root") -> Any:
    """A PEM certificate (the platform root) from ``path``."""
    from signing.certificates import load_pem

    text = read_text(path, what)
    try:
        return load_pem(text.encode("utf-8"))
    except ValueError:
        raise ConfigurationError(f"{what}: {path} holds no PEM certificate") from None


def check_writable(path: str, what: str) -> None:
    """Refuses, before any work, an output path that cannot be written as a file."""
    file = Path(path)
    if file.is_dir():
        raise ConfigurationError(f"{what}: {path} is a directory; name a file")
    if not file.absolute().parent.is_dir():
        raise ConfigurationError(f"{what}: the directory of {path} does not exist")


def write_bytes(path: str, data: bytes, what: str) -> None:
    check_writable(path, what)
    try:
        Path(path).write_bytes(data)
    except OSError as error:
        raise ConfigurationError(f"{what}: cannot write {path}: {error.strerror or error}") from None


def port(text: str) -> int:
    """argparse type: a TCP port."""
    value = whole_number(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (1-65535)")
    return value


def positive(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def not_negative(text: str) -> int:
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds (0 or more)")
    return value


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
