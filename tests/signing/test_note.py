"""C2SP signed notes, checkpoints and cosignatures: the specifications' own examples, Go's test vectors,
every rule a verifier must apply, and notes we sign checked by verifiers that share no code with ours."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from signing import certificates, note
from signing.key import FileKey

# c2sp.org/signed-note, "Verifier keys", Example.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
# c2sp.org/tlog-cosignature's example checkpoint with a cosignature (its keys are not published).
SPEC_COSIGNED = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
# golang.org/x/mod/sumdb/note's note_test.go.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
# transparency-dev/formats note/note_cosigv1_test.go: a native type 0x04 vkey and a cosignature's time.
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
TIMESTAMPED = "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="

ROOT = hashlib.sha256(b"root").digest()


def peter_private_key() -> Ed25519PrivateKey:
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert seed[0] == note.ED25519
    return Ed25519PrivateKey.from_private_bytes(seed[1:])


def ledger_signer() -> FileKey:
    root_key, root_cert = certificates.create_root()
    key = Ed25519PrivateKey.generate()
    return FileKey(key, certificates.issue_ledger_certificate(root_key, root_cert, key.public_key()))


# -- the specifications' and Go's vectors ------------------------------------------------------


def test_the_signed_note_spec_example_verifies() -> None:
    key = note.parse_vkey(SPEC_VKEY)
    assert (key.name, key.key_id.hex(), key.key_type, key.vkey) == ("example.com/foo", "530d903a", 1, SPEC_VKEY)
    opened = note.open_note(SPEC_NOTE, [key])
    assert opened.text == "This is an example message.\n" and len(opened.verified) == 1 and not opened.unverified
    assert note.open_note(SPEC_NOTE.encode(), [key]).verified == opened.verified


def test_go_sign_vector_is_reproduced_byte_for_byte() -> None:
    signer = note.NoteSigner("PeterNeumann", peter_private_key().public_key(), peter_private_key().sign)
    assert signer.vkey == PETER_VKEY
    assert note.sign_note(GO_TEXT, signer) == GO_TEXT + "\n" + PETER_SIG


def test_go_open_vectors() -> None:
    peter, enoch = note.parse_vkey(PETER_VKEY), note.parse_vkey(ENOCH_VKEY)
    both = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    one = note.open_note(both, [peter])
    assert [s.name for s in one.verified] == ["PeterNeumann"] and [s.name for s in one.unverified] == ["EnochRoot"]
    assert [s.name for s in note.open_note(both, [peter, enoch]).verified] == ["PeterNeumann", "EnochRoot"]
    with pytest.raises(note.UnverifiedNote):
        note.open_note(both, [])
    # Repeated signatures count once, verified or not.
    repeated = note.open_note(GO_TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG, [peter])
    assert len(repeated.verified) == 1 and len(repeated.unverified) == 1


def test_go_vkey_manglings_are_refused() -> None:
    note.parse_vkey(PETER_VKEY)
    for start in range(len(PETER_VKEY) + 1):
        for end in range(start + 1, len(PETER_VKEY) + 1):
            if (start, end) != (0, len(PETER_VKEY)):
                with pytest.raises(note.NoteError):
                    note.parse_vkey(PETER_VKEY[start:end])
    for i in range(len(PETER_VKEY)):
        mangled = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(note.NoteError):
            note.parse_vkey(mangled)
    for bad in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # wrong key length
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown algorithm
        "bananas.sigstore.dev+12344556",
        "rekor.sigstore.dev+12345678+THIS_IS_NOT_BASE64!",
        "rekor.sigstore.dev+12345678+AwEB",
        "rekor.sigstore.dev+00000000+" + REMORA_VKEY.split("+")[2],
    ):
        with pytest.raises(note.NoteError):
            note.parse_vkey(bad)


def test_cosignature_vectors() -> None:
    key = note.parse_vkey(REMORA_VKEY)
    assert (key.key_type, key.vkey) == (note.COSIGNATURE_V1, REMORA_VKEY)
    with_plus = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"  # a plus inside the base64 key
    assert note.parse_vkey(with_plus).vkey == with_plus
    raw = base64.b64decode(TIMESTAMPED)
    assert note.cosignature_time(note.Signature("x", raw[:4], raw[4:])) == 1727964367
    cosigned = note.parse_note(SPEC_COSIGNED)
    witness = cosigned.signatures[1]
    assert witness.name == "witness.example.com/w1" and note.cosignature_time(witness) == 1679315147
    checkpoint = note.parse_checkpoint(cosigned.text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    with pytest.raises(note.NoteError):
        note.cosignature_time(cosigned.signatures[0])  # a plain Ed25519 signature carries no time


# -- what a verifier must reject or ignore -----------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        GO_TEXT,  # no blank line, no signature
        GO_TEXT + "\n",  # a blank line but no signature
        GO_TEXT + "\n" + PETER_SIG[:-1],  # no final newline
        "\x01" + GO_TEXT + "\n" + PETER_SIG,  # a control character
        GO_TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG,  # carriage return
        GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),  # a space in the key name
        GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"),  # a plus in the key name
        GO_TEXT + "\n" + PETER_SIG.replace("— ", "-- "),  # not an em dash
        GO_TEXT + "\n" + PETER_SIG.replace("— PeterNeumann ", "— PeterNeumann"),  # no space before the signature
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        GO_TEXT + "\n" + PETER_SIG + "\n",  # an empty line after the signatures
        GO_TEXT + "\n" + "— PeterNeumann x08g\n",  # fewer than 5 bytes
        GO_TEXT + "\n" + "— PeterNeumann x08go/ZJ!!\n",  # not base64
        GO_TEXT + "\n" + PETER_SIG * (note.MAX_SIGNATURES + 1),
    ],
)
def test_malformed_notes_are_rejected(data: str) -> None:
    with pytest.raises(note.MalformedNote):
        note.open_note(data, [note.parse_vkey(PETER_VKEY)])


def test_invalid_utf8_is_rejected() -> None:
    with pytest.raises(note.MalformedNote):
        note.open_note(b"\xff" + (GO_TEXT + "\n" + PETER_SIG).encode(), [note.parse_vkey(PETER_VKEY)])


def test_up_to_the_limit_of_signature_lines_is_accepted() -> None:
    peter = note.parse_vkey(PETER_VKEY)
    assert note.open_note(GO_TEXT + "\n" + PETER_SIG * note.MAX_SIGNATURES, [peter]).verified
    assert note.MAX_SIGNATURES >= 16  # the spec's floor


def test_a_failing_signature_of_a_known_key_rejects_the_whole_note() -> None:
    peter, enoch = note.parse_vkey(PETER_VKEY), note.parse_vkey(ENOCH_VKEY)
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(note.InvalidNoteSignature):
        note.open_note(GO_TEXT + "\n" + bad, [peter])
    # ... even when another known key's signature verifies, and even after a valid one of the same key.
    with pytest.raises(note.InvalidNoteSignature):
        note.open_note(GO_TEXT + "\n" + ENOCH_SIG + bad, [peter, enoch])
    with pytest.raises(note.InvalidNoteSignature):
        note.open_note(GO_TEXT + "\n" + PETER_SIG + bad, [peter])
    # A signature over another text is just as invalid.
    with pytest.raises(note.InvalidNoteSignature):
        note.open_note(GO_TEXT.replace("answer", "answers") + "\n" + PETER_SIG, [peter])


def test_unknown_keys_are_ignored_even_when_they_share_a_name_or_an_id() -> None:
    peter = note.parse_vkey(PETER_VKEY)
    raw = base64.b64decode(PETER_SIG.split()[2])
    same_name_other_id = f"— PeterNeumann {base64.b64encode(b'XXXX' + raw[4:]).decode()}\n"
    same_id_other_name = PETER_SIG.replace("PeterNeumann", "CarmenSandiego")
    opened = note.open_note(GO_TEXT + "\n" + same_name_other_id + same_id_other_name + PETER_SIG, [peter])
    assert len(opened.verified) == 1 and len(opened.unverified) == 2
    with pytest.raises(note.UnverifiedNote):
        note.open_note(GO_TEXT + "\n" + same_name_other_id + same_id_other_name, [peter])


def test_two_different_keys_under_one_name_and_id_are_ambiguous() -> None:
    peter = note.parse_vkey(PETER_VKEY)

    class Twin(note.VerifierKey):
        """Another public key claiming Peter's name and key id (a collision of the 4-byte id)."""

        @property
        def key_id(self) -> bytes:
            return peter.key_id

    with pytest.raises(note.NoteError, match="ambiguous"):
        note.open_note(GO_TEXT + "\n" + PETER_SIG, [peter, Twin(peter.name, note.ED25519, bytes(32))])
    assert note.open_note(GO_TEXT + "\n" + PETER_SIG, [peter, note.parse_vkey(PETER_VKEY)]).verified  # the same key twice is fine


@pytest.mark.parametrize(
    "text",
    [
        "origin\n20\n",  # two lines
        "origin\n20\n" + base64.b64encode(ROOT).decode(),  # no final newline
        "\n20\n" + base64.b64encode(ROOT).decode() + "\n",  # empty origin
        "origin\n020\n" + base64.b64encode(ROOT).decode() + "\n",  # leading zero
        "origin\n-1\n" + base64.b64encode(ROOT).decode() + "\n",
        "origin\n+1\n" + base64.b64encode(ROOT).decode() + "\n",
        "origin\n1e3\n" + base64.b64encode(ROOT).decode() + "\n",
        "origin\n١٢\n" + base64.b64encode(ROOT).decode() + "\n",  # non-ASCII digits
        f"origin\n{2**63}\n" + base64.b64encode(ROOT).decode() + "\n",
        "origin\n20\n" + base64.b64encode(ROOT[:31]).decode() + "\n",  # 31 bytes
        "origin\n20\n" + base64.b64encode(ROOT).decode().rstrip("=") + "\n",  # unpadded
        "origin\n20\n" + base64.b64encode(ROOT).decode() + "\n\nextension\n",  # an empty extension line
    ],
)
def test_malformed_checkpoints_are_rejected(text: str) -> None:
    with pytest.raises(note.MalformedNote):
        note.parse_checkpoint(text)


def test_a_checkpoint_with_extension_lines_round_trips() -> None:
    checkpoint = note.Checkpoint("example.com/log", 0, note.EMPTY_TREE_ROOT, ("ext one", "ext two"))
    assert note.parse_checkpoint(checkpoint.text()) == checkpoint
    assert checkpoint.text().endswith("ext two\n")


# -- what we sign, checked by independent verifiers --------------------------------------------


def independent_verify(data: str, vkey: str) -> bool:
    """A verifier written from c2sp.org/signed-note and tlog-cosignature with `cryptography` alone."""
    name, hex_id, encoded = vkey.split("+", 2)
    raw = base64.b64decode(encoded)
    key_type, key = raw[0], Ed25519PublicKey.from_public_bytes(raw[1:])
    if hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() != hex_id:
        return False
    text, _, signatures = data.rpartition("\n\n")
    text += "\n"
    for line in signatures.splitlines():
        signer, blob = line.removeprefix("\u2014 ").split(" ")
        blob = base64.b64decode(blob)
        if signer != name or blob[:4].hex() != hex_id:
            continue
        message, signature = text.encode(), blob[4:]
        if key_type == 0x04:
            message = b"cosignature/v1\ntime " + str(int.from_bytes(signature[:8], "big")).encode() + b"\n" + message
            signature = signature[8:]
        try:
            key.verify(signature, message)
        except Exception:
            return False
        return True
    return False


def test_a_ledger_checkpoint_note_verifies_independently() -> None:
    signer = note.NoteSigner.from_signer("nocert.localhost/ledger", ledger_signer())
    served = note.checkpoint_note(signer, 42, ROOT)
    assert served.startswith(f"nocert.localhost/ledger\n42\n{base64.b64encode(ROOT).decode()}\n\n— nocert.localhost/ledger ")
    assert independent_verify(served, signer.vkey)
    assert not independent_verify(served.replace("\n42\n", "\n43\n"), signer.vkey)
    checkpoint, opened = note.open_checkpoint(served, [note.parse_vkey(signer.vkey)])
    assert (checkpoint.origin, checkpoint.size, checkpoint.root_hash) == ("nocert.localhost/ledger", 42, ROOT)
    # A key of the right name and id but a checkpoint of another origin: nothing known signed it.
    other = note.NoteSigner.from_signer("other.example/log", ledger_signer())
    with pytest.raises(note.UnverifiedNote):
        note.open_checkpoint(note.checkpoint_note(other, 42, ROOT), [note.parse_vkey(signer.vkey)])


def test_cosignatures_verify_independently_and_only_for_their_text() -> None:
    log = note.NoteSigner.from_signer("nocert.localhost/ledger", ledger_signer())
    served = note.checkpoint_note(log, 7, ROOT)
    witness = note.NoteSigner.cosigner("witness.example/w1", Ed25519PrivateKey.generate(), clock=lambda: 1_700_000_000.9)
    cosignature = witness.signature(note.parse_note(served).text)
    assert note.cosignature_time(cosignature) == 1_700_000_000
    cosigned = note.add_signatures(served, [cosignature, cosignature])
    assert cosigned.count("— witness.example/w1 ") == 1 and cosigned.endswith(cosignature.line)
    assert independent_verify(cosigned, witness.vkey) and independent_verify(cosigned, log.vkey)
    opened = note.open_note(cosigned, [note.parse_vkey(witness.vkey), note.parse_vkey(log.vkey)])
    assert len(opened.verified) == 2
    assert note.open_note(cosigned, [note.parse_vkey(log.vkey)]).unverified == (cosignature,)
    # The same key as a plain (type 0x01) vkey has another key id: it does not know the cosignature.
    plain = note.VerifierKey(witness.key.name, note.ED25519, witness.key.public_key)
    with pytest.raises(note.UnverifiedNote):
        note.open_note(cosigned, [plain])
    # A cosignature moved onto another checkpoint fails.
    moved = note.add_signatures(note.checkpoint_note(log, 8, ROOT), [cosignature])
    with pytest.raises(note.InvalidNoteSignature):
        note.open_note(moved, [note.parse_vkey(witness.vkey)])
    with pytest.raises(note.NoteError):
        note.NoteSigner.cosigner("w", Ed25519PrivateKey.generate(), clock=lambda: 0).signature("a\n")


# -- Go's golang.org/x/mod/sumdb/note, where the distribution packages it -----------------------

GO_NOTE_SOURCE = Path("/usr/share/gocode/src/golang.org/x/mod/sumdb/note/note.go")


@pytest.fixture(scope="module")
def go_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("go") is None or not GO_NOTE_SOURCE.exists():
        pytest.skip("needs Debian's golang-go and golang-golang-x-mod-dev (apt-get install golang-go golang-golang-x-mod-dev)")
    out = tmp_path_factory.mktemp("gonote")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOCACHE": str(out / "cache"), "GOFLAGS": ""}
    source = Path(__file__).with_name("gonote") / "main.go"
    subprocess.run(["go", "build", "-o", str(out / "gonote"), str(source)], check=True, env=env, timeout=240)
    return out / "gonote"


def go_open(binary: Path, data: str, *vkeys: str) -> tuple[int, str]:
    result = subprocess.run([str(binary), *vkeys], input=data.encode(), capture_output=True, timeout=30)
    return result.returncode, result.stdout.decode()


def test_go_verifies_what_we_sign(go_verifier: Path) -> None:
    assert go_open(go_verifier, SPEC_NOTE, SPEC_VKEY) == (0, "verified example.com/foo\n")
    log = note.NoteSigner.from_signer("nocert.localhost/ledger", ledger_signer())
    witnesses = [note.NoteSigner.cosigner(f"witness.example/w{i}", Ed25519PrivateKey.generate()) for i in (1, 2)]
    served = note.checkpoint_note(log, 123456, ROOT)
    cosigned = note.add_signatures(served, [w.signature(note.parse_note(served).text) for w in witnesses])
    assert go_open(go_verifier, cosigned, log.vkey) == (0, "verified nocert.localhost/ledger\n")
    code, out = go_open(go_verifier, cosigned, log.vkey, *(w.vkey for w in witnesses))
    assert code == 0 and out.split("\n")[:3] == ["verified nocert.localhost/ledger", "verified witness.example/w1", "verified witness.example/w2"]
    code, out = go_open(go_verifier, cosigned.replace("\n123456\n", "\n123457\n"), log.vkey)
    assert code == 1 and "invalid signature" in out


def test_cosignatures_of_the_wrong_length_or_time_are_rejected() -> None:
    private = Ed25519PrivateKey.generate()
    witness = note.NoteSigner.cosigner("witness.example/w1", private)
    text = note.Checkpoint("example.com/log", 1, ROOT).text()
    key = note.parse_vkey(witness.vkey)

    def cosigned(raw: bytes) -> str:
        return note.Note(text, (note.Signature(key.name, key.key_id, raw),)).render()

    assert note.open_note(cosigned(witness.signature(text).signature), [key]).verified
    beyond = 2**63  # the specification caps timestamps at 2**63 - 1: even a valid signature over it fails
    forged = beyond.to_bytes(8, "big") + private.sign(note.cosigned_message(text.encode(), beyond))
    for raw in (forged, witness.signature(text).signature[:-1], witness.signature(text).signature[8:]):
        with pytest.raises(note.InvalidNoteSignature):
            note.open_note(cosigned(raw), [key])
