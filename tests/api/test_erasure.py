"""API.md §14 erasure and "never at rest in clear", on both stores, with and without NOCERT_CIPHER_KEY:
a scan of every table and column (and of the key directory outside the subject key store) finds no identity
number and no applicant name before erasure, and nothing of the erased person in any form after it; the
ledger recomputed from /v1/audit/events (its leaves from the stored bytes) equals the checkpoints before and after; inclusion proofs verify;
`nocert audit verify` exits 0 and counts the erased proof apart; a later check about the person works."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import build
from api.trust import PlatformTrust
from audit.verify import verify_ledger
from domain.identifiers import make_id_number, mask_id_number
from signing import jws
from tests.api.conftest import Province, masked, settings_for
from tests.api.test_coverage_audit_http import ledger, tree_hash, verify_inclusion
from tests.bodies import APPLICANT, OTHER_NUMBER

NAME = "林某某"
OTHER_PERSON = make_id_number("35010219770707111")
OTHER_NAME = "陈某某"
CIPHER_KEY = base64.b64encode(b"k" * 32).decode()


@contextlib.contextmanager
def open_province(url: str, key_dir: Path, cipher_key: str | None) -> Iterator[Province]:
    services = build(settings_for(url, key_dir, cipher_key=cipher_key))
    try:
        app = create_app(services)
        with TestClient(app) as client:
            yield Province.standard(client, services, app)
    finally:
        services.close()


@pytest.fixture(params=["clear-store", "cipher-key"])
def province(request: pytest.FixtureRequest, durable_database_url: str, tmp_path: Path) -> Iterator[Province]:
    cipher_key = CIPHER_KEY if request.param == "cipher-key" else None
    with open_province(durable_database_url, tmp_path / "keys", cipher_key) as built:
        yield built


# -- the scan ---------------------------------------------------------------------------------------


def clear_forms(*values: str) -> list[bytes]:
    forms = []
    for value in values:
        forms += [value.encode(), json.dumps(value).strip('"').encode()]  # UTF-8, and JSON's \\u escapes
    return forms


def every_form(number: str, name: str) -> list[bytes]:
    """The person in any form: clear, JSON-escaped, masked (the tests' and the service's mask), base64 (both
    alphabets, at each of the three offsets it can start at inside a longer encoded value) and hex."""
    forms = clear_forms(number, name, masked(number), mask_id_number(number))
    for raw in (number.encode(), name.encode()):
        forms += [raw.hex().encode(), raw.hex().upper().encode()]
        for offset, skip in ((0, 0), (1, 2), (2, 3)):  # the characters that hold only bytes of `raw`
            whole = b"\0" * offset + raw
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                forms.append(encode(whole)[skip : len(whole) * 8 // 6])
    return forms


def tables(province: Province) -> dict[str, list[tuple[Any, ...]]]:
    database = province.services.database
    with database.reading() as cursor:
        if database.dialect == "postgres":
            names = [r[0] for r in cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()]
        else:
            names = [r[0] for r in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
        return {name: cursor.execute(f'SELECT * FROM "{name}"').fetchall() for name in names}


def as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode()


def findings(province: Province, forms: list[bytes]) -> list[str]:
    found = []
    contents = tables(province)
    assert {"stored_events", "view_checks", "subject_lookups"} <= set(contents) or "nocert_events" in contents
    for table, rows in contents.items():
        for row in rows:
            for column, value in enumerate(row):
                data = as_bytes(value)
                found += [f"{table}[{column}]: {form!r}" for form in forms if form in data]
    key_dir = province.services.settings.key_dir
    for path in key_dir.rglob("*"):
        if path.is_file() and "subjects" not in path.relative_to(key_dir).parts:
            data = path.read_bytes()
            found += [f"{path.name}: {form!r}" for form in forms if form in data]
    return found


# -- the scenario -----------------------------------------------------------------------------------


def people(province: Province) -> dict[str, Any]:
    first = province.raise_check(applicant={"name": NAME, "id_number": APPLICANT})
    second = province.act(province.raise_check(applicant={"name": NAME, "id_number": APPLICANT})["id"], "reply", "gulou")
    province.act(second["id"], "close", "approver", {"outcome": "exempted"})
    # Another person's check that mentions the erased person's number in its claims.
    mention = province.raise_check(
        applicant={"name": OTHER_NAME, "id_number": OTHER_PERSON}, claims={"spouse_id_number": APPLICANT}
    )
    province.settle()
    return {"first": first, "second": second, "mention": mention}


def checkpoint_matches(province: Province, items: list[dict[str, Any]]) -> dict[str, Any]:
    latest: dict[str, Any] = province.as_("auditor").get("/v1/audit/checkpoints/latest", expect=200).json()
    leaves = [recomputed_leaf(item) for item in items]  # from the stored bytes, not the answer's leaf_hash
    assert [leaf.hex() for leaf in leaves] == [item["leaf_hash"] for item in items]
    assert latest["root_hash"] == tree_hash(leaves[: latest["tree_size"]]).hex()
    return latest


def recomputed_leaf(item: dict[str, Any]) -> bytes:
    """API.md §7's leaf of an event of /v1/audit/events, from its stored state."""
    state_sha256 = hashlib.sha256(base64.b64decode(item["state_b64"])).hexdigest()
    fields = {"position": item["position"], "stream_id": item["stream_id"], "version": item["version"], "type": item["type"]}
    return hashlib.sha256(b"\x00" + rfc8785.dumps({**fields, "state_sha256": state_sha256})).digest()


def erase(province: Province, number: str = APPLICANT, expect: int = 200) -> dict[str, Any]:
    body = {"id_number": number, "legal_basis": "PIPL art. 47: the person withdrew consent"}
    result: dict[str, Any] = province.admin.post("/v1/subjects/erase", json=body, expect=expect).json()
    return result


def test_nothing_personal_in_clear_and_erasure_leaves_the_ledger_intact(province: Province, tmp_path: Path) -> None:
    checks = people(province)
    assert findings(province, clear_forms(APPLICANT, NAME, OTHER_NUMBER, OTHER_PERSON, OTHER_NAME)) == []
    before = ledger(province)
    checkpoint_matches(province, before)

    answer = erase(province)
    assert set(answer) == {"subject", "erased_at", "checks", "receipt"}
    assert answer["subject"] == masked(APPLICANT) and answer["checks"] == 2
    receipt = jws.parse_compact(answer["receipt"])
    assert receipt.header["typ"] == "nocert-erasure+jws"
    assert set(receipt.payload) == {"type", "subject_hmac", "checks", "erased_at", "legal_basis"}
    assert receipt.payload["type"] == "nocert.erasure.v1" and receipt.payload["checks"] == 2
    assert receipt.payload["subject_hmac"] == province.services.subjects.index.of(APPLICANT)
    ledger_cert = province.services.keystore.ledger_signer().certificate
    assert jws.certificate_of(receipt.header) == ledger_cert
    province.settle()

    # Every read shows the personal fields as null.
    for key in ("first", "second"):
        check = province.as_("approver").get(f"/v1/checks/{checks[key]['id']}", expect=200).json()
        assert check["applicant"]["name"] is None and check["applicant"]["id_number"] is None
        assert check["claims"] is None
        history = province.as_("approver").get(f"/v1/checks/{checks[key]['id']}/history", expect=200).json()
        assert NAME not in json.dumps(history, ensure_ascii=False) and APPLICANT not in json.dumps(history)
    second = province.as_("approver").get(f"/v1/checks/{checks['second']['id']}", expect=200).json()
    assert second["proof"]["jws"] is None and second["status"] == "closed"
    assert province.as_("approver").get(f"/v1/proofs/{second['proof']['id']}", expect=200).json()["jws"] is None
    listed = province.as_("auditor").get("/v1/checks", params={"limit": 500}, expect=200).json()["items"]
    erased_items = [item for item in listed if item["id"] in (checks["first"]["id"], checks["second"]["id"])]
    assert len(erased_items) == 2 and all(i["applicant"]["name"] is None and i["claims"] is None for i in erased_items)
    mention = next(item for item in listed if item["id"] == checks["mention"]["id"])
    assert mention["applicant"]["name"] == OTHER_NAME  # another person's check is untouched

    # The ledger: the same stored bytes, the same roots, inclusion proofs still verify.
    after = ledger(province)
    assert after[: len(before)] == before
    assert {item["type"] for item in after[len(before):]} >= {"nocert:check:SubjectErased"}
    checkpoint_matches(province, after)
    leaves = [bytes.fromhex(item["leaf_hash"]) for item in after]
    index = next(i for i, item in enumerate(after) if item["stream_id"] == checks["second"]["id"])
    proof = province.as_("auditor").get("/v1/audit/proofs/inclusion", params={"index": index, "tree_size": len(after)}).json()
    assert verify_inclusion(index, len(after), leaves[index], [bytes.fromhex(h) for h in proof["path"]], tree_hash(leaves))

    # Nothing of the erased person anywhere, in any form; the other person still nowhere in clear.
    assert findings(province, every_form(APPLICANT, NAME)) == []
    assert findings(province, clear_forms(OTHER_PERSON, OTHER_NAME)) == []

    # The audit: exit 0, the erased proof counted apart.
    report = verify_ledger(
        province.services.platform, province.services.database, province.services.log,
        province.services.keystore.root()[1], trust=PlatformTrust(province.services.platform),
    )
    assert report.ok, [problem.line() for problem in report.problems]
    assert (report.proofs, report.erased_proofs) == (0, 1)

    # A later check about the same person works, under a new key; the erasure is not repeated for nothing.
    again = province.raise_check(applicant={"name": NAME, "id_number": APPLICANT})
    assert province.as_("approver").get(f"/v1/checks/{again['id']}", expect=200).json()["applicant"]["name"] == NAME
    province.settle()
    log = province.as_("auditor").post("/v1/subjects/accesses", json={"id_number": APPLICANT}, expect=200).json()
    assert [item["check_id"] for item in log["items"]] == [again["id"]]
    subject = province.services.subjects.index.of(APPLICANT)
    assert len(province.services.subjects.keys.key_ids(subject)) == 2
    assert findings(province, clear_forms(APPLICANT, NAME)) == []

    # The operator's list of erasures holds the receipt.
    erasures = province.admin.get("/v1/subjects/erasures", expect=200).json()["items"]
    assert [(e["checks"], e["receipt"]) for e in erasures] == [(2, answer["receipt"])]


def test_erasure_needs_the_admin_a_legal_basis_and_a_known_person(province: Province) -> None:
    province.raise_check()
    province.settle()
    body = {"id_number": APPLICANT, "legal_basis": "x"}
    for who in ("approver", "auditor"):
        assert province.as_(who).post("/v1/subjects/erase", json=body).status_code == 403
    assert province.admin.post("/v1/subjects/erase", json={"id_number": APPLICANT}).status_code == 422
    assert province.admin.post("/v1/subjects/erase", json={**body, "legal_basis": ""}).status_code == 422
    assert erase(province, make_id_number("35010219600606222"), expect=404)["code"] == "not_found"
    bad_number = province.admin.post("/v1/subjects/erase", json={**body, "id_number": APPLICANT[:17]}).json()
    assert bad_number["code"] == "invalid_id_number"
    erase(province)
    assert erase(province, expect=404)["code"] == "not_found"  # nothing left to erase


def test_an_open_check_of_an_erased_person_takes_no_reply(province: Province) -> None:
    check = province.raise_check()
    province.settle()
    erase(province)
    refused = province.as_("gulou").post(f"/v1/checks/{check['id']}/reply", json={"conclusion": "confirmed", "statements": {}})
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_transition"
    province.act(check["id"], "withdraw", "approver")


@pytest.mark.parametrize("province", ["clear-store"], indirect=True)
def test_nocert_audit_verify_exits_0_after_an_erasure(province: Province) -> None:
    province.replied_check()
    province.settle()
    erase(province)
    province.settle()
    settings = province.services.settings
    env = {**os.environ, "NOCERT_DATABASE_URL": settings.database_url, "NOCERT_KEY_DIR": str(settings.key_dir)}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("nocert")), "audit", "verify", "--json", "--workers", "1"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["erased_proofs"] == 1 and report["proofs"] == 0


@pytest.mark.parametrize("province", ["clear-store"], indirect=True)
def test_erasures_are_replayed_on_a_restored_key_store(province: Province, tmp_path: Path) -> None:
    import shutil

    from api.subjects import replay_erasures

    check = province.raise_check()
    province.settle()
    store = province.services.subjects.keys.root
    shutil.copytree(store, tmp_path / "backup")
    erase(province)
    shutil.rmtree(store)
    shutil.copytree(tmp_path / "backup", store)  # a backup of the key store older than the erasure
    assert replay_erasures(province.services) == (1, 1)
    assert replay_erasures(province.services) == (1, 0)
    subject = province.services.subjects.index.of(APPLICANT)
    (key_id,) = province.services.subjects.keys.key_ids(subject)
    assert json.loads((store / "keys" / f"{key_id}.json").read_text())["wrapped"] is None
    assert province.as_("approver").get(f"/v1/checks/{check['id']}", expect=200).json()["applicant"]["name"] is None


@pytest.mark.parametrize("province", ["clear-store"], indirect=True)
def test_erasures_are_replayed_from_kept_receipts_on_a_whole_older_backup(province: Province, tmp_path: Path) -> None:
    """A whole backup older than an erasure (store and key store) knows nothing of it: the receipts kept
    outside (GET /v1/subjects/erasures) replay it; a receipt not signed by the ledger key destroys nothing."""
    import shutil

    from api.subjects import ReceiptRefused, replay_erasures, replay_receipts
    from api.subjects_cli import read_receipts
    from signing.keystore import KeyStore

    province.raise_check()
    province.settle()
    store = province.services.subjects.keys.root
    shutil.copytree(store, tmp_path / "backup")
    answer = erase(province)
    kept = province.admin.get("/v1/subjects/erasures", expect=200).json()
    (tmp_path / "receipts.json").write_text(json.dumps(kept))
    # The older backup: its key store, and a store whose kept receipts do not know the erasure.
    shutil.rmtree(store)
    shutil.copytree(tmp_path / "backup", store)
    with province.services.database.transaction() as cursor:
        cursor.execute("DELETE FROM subject_erasures")
    assert replay_erasures(province.services) == (0, 0)
    subject = province.services.subjects.index.of(APPLICANT)
    (key_id,) = province.services.subjects.keys.key_ids(subject)
    assert json.loads((store / "keys" / f"{key_id}.json").read_text())["wrapped"] is not None  # readable again

    stranger = KeyStore(tmp_path / "other-platform").ledger_signer()
    forged = jws.seal(stranger, "nocert-erasure+jws", jws.parse_compact(answer["receipt"]).payload)
    with pytest.raises(ReceiptRefused, match="ledger key"):
        replay_receipts(province.services, [answer["receipt"], forged])
    assert json.loads((store / "keys" / f"{key_id}.json").read_text())["wrapped"] is not None  # all or nothing

    assert read_receipts(tmp_path / "receipts.json") == [answer["receipt"]]
    assert replay_receipts(province.services, read_receipts(tmp_path / "receipts.json")) == (1, 1)
    assert json.loads((store / "keys" / f"{key_id}.json").read_text())["wrapped"] is None
    assert replay_receipts(province.services, [answer["receipt"]]) == (1, 0)


@pytest.mark.parametrize("province", ["clear-store"], indirect=True)
def test_nocert_subjects_replay_erasures_reads_kept_receipts(province: Province, tmp_path: Path) -> None:
    province.raise_check()
    province.settle()
    erase(province)
    (tmp_path / "receipts.json").write_text(json.dumps(province.admin.get("/v1/subjects/erasures", expect=200).json()))
    (tmp_path / "bad.json").write_text(json.dumps({"items": [{"receipt": "not.a.jws"}]}))
    settings = province.services.settings
    env = {**os.environ, "NOCERT_DATABASE_URL": settings.database_url, "NOCERT_KEY_DIR": str(settings.key_dir)}

    def replay(*extra: str) -> subprocess.CompletedProcess[str]:
        nocert = str(Path(sys.executable).with_name("nocert"))
        return subprocess.run([nocert, "subjects", "replay-erasures", *extra], env=env, capture_output=True, text=True, timeout=120)

    done = replay("--receipts", str(tmp_path / "receipts.json"))
    assert done.returncode == 0 and "replayed 1 erasures, 0 restored subject keys destroyed" in done.stderr, done.stderr
    for name, says in (("bad.json", "not a compact JWS"), ("missing.json", "missing.json")):
        refused = replay("--receipts", str(tmp_path / name))
        assert refused.returncode == 2 and says in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
