"""docs/evidence-bundle.md holds: its stand-alone script and its openssl walk-through, run against bundles
the current code exports, find them valid, and find tampered ones invalid."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import rfc8785

from audit.evidence import content_digest, serialize
from signing import certificates
from tests.audit.conftest import World
from tests.audit.test_bundle import bundle_of

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCRIPT = DOCS / "verify_bundle_example.py"


def run_script(bundle: bytes | dict, root_pem: str, tmp_path: Path) -> tuple[int, list[str]]:
    data = bundle if isinstance(bundle, bytes) else json.dumps(bundle, ensure_ascii=False).encode()
    (tmp_path / "bundle.json").write_bytes(data)
    (tmp_path / "root.pem").write_text(root_pem)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "bundle.json", "root.pem"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    return result.returncode, result.stdout.splitlines()


def root_pem(world: World) -> str:
    return certificates.to_pem(world.services.keystore.root()[1])


def resealed(bundle: dict) -> dict:
    """An edit whose author also recomputed content_sha256."""
    return {**bundle, "content_sha256": content_digest(bundle)}


@pytest.mark.parametrize("check", ["exempted", "declined", "revoked", "withdrawn"])
def test_the_script_finds_exported_bundles_valid(world: World, tmp_path: Path, check: str) -> None:
    bundle = bundle_of(world, check)
    code, lines = run_script(serialize(bundle), root_pem(world), tmp_path)
    assert (code, lines[0]) == (0, "valid"), lines
    assert any(f"{len(bundle['events'])} events, status" in line for line in lines)
    assert any("revoked the proof" in line for line in lines) == (check == "revoked")
    # Pretty-printing changes the bytes, not the content: still valid.
    pretty = json.dumps(json.loads(serialize(bundle)), indent=2, ensure_ascii=False).encode()
    assert run_script(pretty, root_pem(world), tmp_path)[0] == 0


def test_the_script_finds_tampered_bundles_invalid(world: World, tmp_path: Path) -> None:
    bundle = json.loads(serialize(bundle_of(world, "exempted")))
    pem = root_pem(world)

    def invalid(edited: dict | bytes, why: str) -> None:
        code, lines = run_script(edited, pem, tmp_path)
        assert (code, lines[0]) == (1, "invalid"), (why, lines)

    state = bytearray(base64.b64decode(bundle["events"][1]["state_b64"]))
    state[10] ^= 1
    edited = json.loads(json.dumps(bundle))
    edited["events"][1]["state_b64"] = base64.b64encode(bytes(state)).decode()
    invalid(edited, "a stored state altered")
    edited["events"][1]["state_sha256"] = hashlib.sha256(state).hexdigest()
    invalid(resealed({k: v for k, v in edited.items() if k != "content_sha256"}), "state and its hash altered, digest recomputed")

    edited = json.loads(json.dumps(bundle))
    edited["events"][2]["type"] = "nocert:check:Declined"
    invalid(resealed({k: v for k, v in edited.items() if k != "content_sha256"}), "an event's type changed, digest recomputed")

    edited = json.loads(json.dumps(bundle))
    del edited["events"][1]
    invalid(resealed({k: v for k, v in edited.items() if k != "content_sha256"}), "an event removed, digest recomputed")

    edited = json.loads(json.dumps(bundle))
    head, payload, signature = edited["proof"]["jws"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["conclusion"] = "not_confirmed"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    edited["proof"]["jws"] = f"{head}.{forged}.{signature}"
    invalid(resealed({k: v for k, v in edited.items() if k != "content_sha256"}), "the proof's conclusion changed")

    edited = json.loads(json.dumps(bundle))
    edited["summary"]["check"]["status"] = "declined"
    invalid(edited, "the summary changed without recomputing the digest")

    data = serialize({k: v for k, v in bundle.items() if k != "content_sha256"})
    invalid(data[:200] + bytes([data[200] ^ 1]) + data[201:], "one byte flipped")
    invalid(b'{"format": "nocert.evidence-bundle.v1", "format": "x"}', "duplicate member names")

    other = certificates.to_pem(certificates.create_root("someone else's root")[1])
    code, lines = run_script(bundle, other, tmp_path)
    assert (code, lines[0]) == (1, "invalid")


def walkthrough() -> str:
    text = (DOCS / "evidence-bundle.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- walkthrough:begin -->\n```sh\n(.*?)```\n<!-- walkthrough:end -->", text, re.S)
    assert match, "docs/evidence-bundle.md has lost its walk-through block"
    return match.group(1)


def test_the_openssl_walkthrough_runs(world: World, tmp_path: Path) -> None:
    if shutil.which("openssl") is None or shutil.which("jq") is None:
        pytest.skip("the walk-through needs openssl and jq (apt-get install openssl jq)")
    bundle = bundle_of(world, "exempted")
    (tmp_path / "bundle.json").write_bytes(serialize(bundle))
    (tmp_path / "root.pem").write_text(root_pem(world))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough()], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    root_der = certificates.to_der(world.services.keystore.root()[1])
    fingerprint = ":".join(f"{b:02X}" for b in hashlib.sha256(root_der).digest())
    assert f"sha256 Fingerprint={fingerprint}" in out
    assert "ledger.pem: OK" in out and "seal.pem: OK" in out and "URI:urn:nocert:ledger" in out
    assert out.count("Signature Verified Successfully") == 2
    first = bundle["events"][0]
    assert out.count(first["state_sha256"]) == 2 and out.count(first["leaf_hash"]) == 2
    assert f'"tree_size":{bundle["checkpoint"]["tree_size"]}' in out
    # A forged signature fails the same commands.
    forged = dict(bundle, checkpoint=dict(bundle["checkpoint"], jws=bundle["checkpoint"]["jws"][:-4] + "AAAA"))
    (tmp_path / "bundle.json").write_bytes(serialize(forged))
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", walkthrough()], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Signature Verification Failure" in result.stdout + result.stderr


def test_the_scripts_canonical_json_is_rfc8785() -> None:
    spec = importlib.util.spec_from_file_location("verify_bundle_example", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rng = random.Random(8785)
    numbers = [0.0, -0.0, 1.0, -1.5, 0.1, 1e-7, 1e-6, 123456789.125, 1e21, 1e20, 5e-324, 1.7976931348623157e308, 2**53 + 0.0]
    numbers += [rng.uniform(-1e6, 1e6) for _ in range(300)] + [rng.random() * 10 ** rng.randint(-30, 30) for _ in range(300)]
    for number in numbers:
        assert script.canonical(number) == rfc8785.dumps(number), number
    value = {"é": 1, "a": [True, None, "\u2028\x7f\n\"\\\x01"], "€": {"z": 0.5, "A": "中文"}, "\U0001f600": 2, "ﬀ": 3}
    assert script.canonical(value) == rfc8785.dumps(value)
