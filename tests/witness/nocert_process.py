"""`nocert witness serve` as a separate process, for tests of the witness and of the platform with its witnesses."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx

from tests.api.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
NOCERT = str(Path(sys.executable).with_name("nocert"))
Found = TypeVar("Found")


def wait_until(condition: Callable[[], Found], what: str, seconds: float = 60) -> Found:
    """The first true value of `condition`, polled; fails the test after `seconds` (not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.1)


@contextmanager
def nocert_witness(state: Path, log_vkey: str, name: str) -> Iterator[tuple[str, str]]:
    """`nocert witness serve` as a separate process on a free port; yields (its vkey, its base URL)."""
    vkey = subprocess.run(
        [NOCERT, "witness", "vkey", "--state", str(state), "--name", name], check=True, capture_output=True, text=True
    ).stdout.strip()
    with serving([NOCERT, "witness", "serve", "--log-vkey", log_vkey, "--state", str(state), "--name", name]) as url:
        yield vkey, url


@contextmanager
def serving(command: list[str]) -> Iterator[str]:
    """``command`` (a `witness serve` but for its ``--port``) as a separate process on a free port until the
    block ends; yields its base URL once it answers. Its output is shown if it exits before that."""
    port = free_port()
    process = subprocess.Popen(
        [*command, "--port", str(port)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        try:
            return httpx.post(f"{url}/add-checkpoint", content=b"", timeout=2).status_code == 400
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, "the witness answering")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


