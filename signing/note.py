"""C2SP signed notes, transparency-log checkpoints and their Ed25519 cosignatures, to the letter of c2sp.org's
``signed-note`` (signature lines ``— <key name> <base64(4-byte key id ‖ signature)>`` after a blank line; key
type 0x01 signs the text, key id ``SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]``, vkey
``<name>+<hex key id>+<base64(type ‖ public key)>``), ``tlog-checkpoint`` (origin, decimal size, base64 RFC 6962
root, optional non-empty extension lines) and ``tlog-cosignature`` (type 0x04: ``8-byte big-endian time ‖
Ed25519 signature`` over ``cosignature/v1``, ``time <POSIX seconds>`` and the checkpoint text).

What a verifier must do (`open_note`): reject anything but UTF-8 without control characters other than
newline, a note without its blank line or its final newline, malformed signature lines, and notes of more
than `MAX_SIGNATURES` lines; ignore signatures of unknown keys (a name or a key id alone matching a known
key is unknown); verify every signature of a known key and reject the note if one fails; reject it when no
known key signed it. Identical signature lines count once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from signing.key import SigningKey

ED25519, COSIGNATURE_V1 = 0x01, 0x04
MAX_SIGNATURES = 100
"""Signature lines a note may carry (the spec asks verifiers to accept at least 16; Go's verifier 100)."""

MAX_TREE_SIZE = 2**63 - 1
EMPTY_TREE_ROOT = hashlib.sha256(b"").digest()

_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_ED25519_SIGNATURE_SIZE = 64
_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_HEX_KEY_ID = re.compile(r"[0-9a-f]{8}", re.ASCII)


class NoteError(ValueError):
    """A note, checkpoint or verifier key that cannot be accepted; the message says why."""


class MalformedNote(NoteError):
    """Not a signed note (or not a checkpoint) by the syntax of the specification."""


class InvalidNoteSignature(NoteError):
    """A signature by a known key that does not verify: the whole note is rejected."""


class UnverifiedNote(NoteError):
    """A well-formed note that no known key signed."""


# -- keys ------------------------------------------------------------------------------------


def is_valid_key_name(name: str) -> bool:
    """Non-empty, without Unicode spaces, plus signs or control characters."""
    return bool(name) and "+" not in name and not any(ch.isspace() or ord(ch) < 0x20 for ch in name)


def key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    """The 4-byte key id: ``SHA-256(name ‖ 0x0A ‖ key type ‖ public key)[:4]``."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key).digest()[:4]


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class VerifierKey:
    """A note verifier key: a key name and an Ed25519 public key of type 0x01 (note) or 0x04 (cosignature)."""

    name: str
    key_type: int
    public_key: bytes

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}")
        if self.key_type not in (ED25519, COSIGNATURE_V1):
            raise NoteError(f"unsupported key type 0x{self.key_type:02x}")
        if len(self.public_key) != 32:
            raise NoteError("an Ed25519 public key has 32 bytes")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.key_type, self.public_key)

    @property
    def vkey(self) -> str:
        """``<name>+<hex key id>+<base64(key type ‖ public key)>``."""
        encoded = base64.b64encode(bytes([self.key_type]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether `signature` (without its key id) signs the note text `text` under this key."""
        if self.key_type == COSIGNATURE_V1:
            if len(signature) != 8 + _ED25519_SIGNATURE_SIZE:
                return False
            timestamp = int.from_bytes(signature[:8], "big")
            if timestamp > MAX_TREE_SIZE:  # the spec caps timestamps at 2**63 - 1 too
                return False
            message, signature = cosigned_message(text, timestamp), signature[8:]
        else:
            message = text
        if len(signature) != _ED25519_SIGNATURE_SIZE:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_vkey(text: str) -> VerifierKey:
    """Parse a vkey; raises NoteError for any other text, an unknown type, a wrong key length or key id."""
    name, _, rest = text.partition("+")
    hex_id, plus, encoded = rest.partition("+")  # the base64 key may hold plus signs itself
    if not plus or not _HEX_KEY_ID.fullmatch(hex_id):
        raise NoteError("a vkey is <name>+<8 hex digits>+<base64 key>")
    raw = _b64decode(encoded)
    if raw is None or len(raw) < 2:
        raise NoteError("the vkey's key is not base64")
    key = VerifierKey(name, raw[0], raw[1:])
    if key.key_id.hex() != hex_id:
        raise NoteError("the vkey's key id is not its key's")
    return key


def vkey_of(name: str, public_key: Ed25519PublicKey, key_type: int = ED25519) -> str:
    """The vkey of an Ed25519 public key under `name`."""
    return VerifierKey(name, key_type, raw_public_key(public_key)).vkey


# -- notes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature line: the key name, the 4-byte key id and the signature bytes after it."""

    name: str
    key_id: bytes
    signature: bytes

    @property
    def line(self) -> str:
        return f"{_SIGNATURE_PREFIX}{self.name} {base64.b64encode(self.key_id + self.signature).decode('ascii')}\n"


@dataclass(frozen=True)
class Note:
    """A parsed note: its text (ending in a newline) and its signature lines in order."""

    text: str
    signatures: tuple[Signature, ...]

    def render(self) -> str:
        return self.text + "\n" + "".join(signature.line for signature in self.signatures)


@dataclass(frozen=True)
class VerifiedNote:
    """A note whose every signature by a known key verified: those in `verified`, the rest in `unverified`."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]

    def signed_by(self, key: VerifierKey) -> list[Signature]:
        return [s for s in self.verified if (s.name, s.key_id) == (key.name, key.key_id)]


def parse_note(data: str | bytes) -> Note:
    """The note's text and signature lines, by the syntax alone (nothing is verified)."""
    text = _note_text(data)
    split = text.rfind("\n\n")
    if split < 0:
        raise MalformedNote("a note needs a blank line between its text and its signatures")
    body, lines = text[: split + 1], text[split + 2 :]
    return Note(body, tuple(parse_signature_lines(lines)))


def parse_signature_lines(data: str | bytes) -> list[Signature]:
    """One or more signature lines, each ending in a newline (a note's tail, or a witness's answer)."""
    text = _note_text(data)
    if not text or not text.endswith("\n"):
        raise MalformedNote("signature lines must end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"more than {MAX_SIGNATURES} signature lines")
    return [_parse_signature_line(line) for line in lines]


def open_note(data: str | bytes, known: Iterable[VerifierKey]) -> VerifiedNote:
    """Parse a note and verify it with the `known` keys as the specification requires of a verifier. Raises
    MalformedNote, InvalidNoteSignature (a known key's signature fails) or UnverifiedNote (no known key signed)."""
    note = parse_note(data)
    keys = verifier_set(known)
    message = note.text.encode("utf-8")
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for signature in dict.fromkeys(note.signatures):  # identical lines once, in order
        key = keys.get((signature.name, signature.key_id))
        if key is None:
            unverified.append(signature)
        elif key.verify(message, signature.signature):
            verified.append(signature)
        else:
            raise InvalidNoteSignature(f"the signature of {key.name}+{key.key_id.hex()} does not verify")
    if not verified:
        raise UnverifiedNote("no known key signed the note")
    return VerifiedNote(note.text, tuple(verified), tuple(unverified))


def verifier_set(keys: Iterable[VerifierKey]) -> dict[tuple[str, bytes], VerifierKey]:
    """Keys by (name, key id); two different keys under one name and id are refused (ambiguous)."""
    found: dict[tuple[str, bytes], VerifierKey] = {}
    for key in keys:
        other = found.setdefault((key.name, key.key_id), key)
        if other != key:
            raise NoteError(f"ambiguous keys {key.name}+{key.key_id.hex()}")
    return found


def add_signatures(note: str | bytes, signatures: Iterable[Signature]) -> str:
    """The note with `signatures` appended after its own, skipping lines it already holds."""
    parsed = parse_note(note)
    merged = tuple(dict.fromkeys((*parsed.signatures, *signatures)))
    if len(merged) > MAX_SIGNATURES:
        raise MalformedNote(f"more than {MAX_SIGNATURES} signature lines")
    return Note(parsed.text, merged).render()


# -- signing ---------------------------------------------------------------------------------


class NoteSigner:
    """Signs note texts with an Ed25519 key: plain (type 0x01) or as timestamped cosignatures (type 0x04).

    `sign` is the key's raw Ed25519 signing function (a `signing.key.SigningKey`'s ``sign``, or a private
    key's), so that a hardware module can hold the key."""

    def __init__(
        self,
        name: str,
        public_key: Ed25519PublicKey,
        sign: Callable[[bytes], bytes],
        key_type: int = ED25519,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = VerifierKey(name, key_type, raw_public_key(public_key))
        self._sign = sign
        self._clock = clock

    @classmethod
    def from_signer(cls, name: str, signer: SigningKey) -> NoteSigner:
        """A type 0x01 note signer over a `SigningKey` (the ledger key: ``KeyStore.ledger_signer()``)."""
        public_key = signer.certificate.public_key()
        if not isinstance(public_key, Ed25519PublicKey):
            raise NoteError("a note signer needs an Ed25519 key")
        return cls(name, public_key, signer.sign)

    @classmethod
    def cosigner(cls, name: str, private_key: Ed25519PrivateKey, clock: Callable[[], float] = time.time) -> NoteSigner:
        """A type 0x04 (cosignature/v1) signer, its timestamps read from `clock` (POSIX seconds)."""
        return cls(name, private_key.public_key(), private_key.sign, COSIGNATURE_V1, clock)

    @property
    def vkey(self) -> str:
        return self.key.vkey

    def signature(self, text: str) -> Signature:
        """The signature line of this key over the note text `text` (which must end in a newline)."""
        message = _note_text(text).encode("utf-8")
        if not text.endswith("\n"):
            raise MalformedNote("a note text ends in a newline")
        if self.key.key_type == COSIGNATURE_V1:
            timestamp = int(self._clock())
            if not 0 < timestamp <= MAX_TREE_SIZE:
                raise NoteError("a cosignature's timestamp is a positive POSIX time")
            raw = timestamp.to_bytes(8, "big") + self._sign(cosigned_message(message, timestamp))
        else:
            raw = self._sign(message)
        return Signature(self.key.name, self.key.key_id, raw)


def sign_note(text: str, *signers: NoteSigner) -> str:
    """The note of `text` signed by each of `signers`, in order."""
    if not signers:
        raise NoteError("a note needs at least one signature")
    return Note(text, tuple(signer.signature(text) for signer in signers)).render()


def cosigned_message(text: bytes, timestamp: int) -> bytes:
    """What an Ed25519 cosignature signs: ``cosignature/v1``, ``time <timestamp>`` and the checkpoint text."""
    return b"cosignature/v1\ntime %d\n" % timestamp + text


def cosignature_time(signature: Signature) -> int:
    """The POSIX time a type 0x04 cosignature carries."""
    if len(signature.signature) != 8 + _ED25519_SIGNATURE_SIZE:
        raise NoteError("not an Ed25519 cosignature")
    return int.from_bytes(signature.signature[:8], "big")


# -- checkpoints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, RFC 6962 root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The checkpoint's note text (each line, the last included, ends in a newline)."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode("ascii"), *self.extensions]
        text = "".join(line + "\n" for line in lines)
        if parse_checkpoint(text) != self:
            raise MalformedNote("not a valid checkpoint")
        return text


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint in a note text; raises MalformedNote unless it has the specification's form."""
    if not text.endswith("\n"):
        raise MalformedNote("a checkpoint's text ends in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise MalformedNote("a checkpoint is at least three non-empty lines: origin, size, root hash")
    origin, size, root, *extensions = lines
    if not _DECIMAL.fullmatch(size) or int(size) > MAX_TREE_SIZE:
        raise MalformedNote("the tree size is not a decimal number without leading zeroes")
    root_hash = _b64decode(root)
    if root_hash is None or len(root_hash) != 32:
        raise MalformedNote("the root hash is not the base64 of 32 bytes")
    if any(ord(ch) < 0x20 for ch in text.replace("\n", "")):
        raise MalformedNote("control characters in a checkpoint")
    return Checkpoint(origin, int(size), root_hash, tuple(extensions))


def checkpoint_note(signer: NoteSigner, size: int, root_hash: bytes) -> str:
    """The signed checkpoint note of the log `signer` signs for: its key name is the origin."""
    return sign_note(Checkpoint(signer.key.name, size, root_hash).text(), signer)


def open_checkpoint(data: str | bytes, log_keys: Iterable[VerifierKey]) -> tuple[Checkpoint, VerifiedNote]:
    """A checkpoint note verified with the log's keys (those named by its origin). Raises as `open_note`."""
    keys = list(log_keys)
    note = parse_note(data)
    checkpoint = parse_checkpoint(note.text)
    return checkpoint, open_note(data, [key for key in keys if key.name == checkpoint.origin])


# -- encoding --------------------------------------------------------------------------------


def _note_text(data: str | bytes) -> str:
    """`data` as text, once it is UTF-8 without control characters other than newline."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedNote("a note is UTF-8") from None
    if any((ord(ch) < 0x20 and ch != "\n") or 0xD800 <= ord(ch) <= 0xDFFF for ch in data):  # or lone surrogates
        raise MalformedNote("a note is UTF-8 without control characters other than newline")
    return data


def _parse_signature_line(line: str) -> Signature:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise MalformedNote("a signature line starts with an em dash and a space")
    name, space, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    raw = _b64decode(encoded)
    if not space or not is_valid_key_name(name) or raw is None or len(raw) < 5:
        raise MalformedNote(f"malformed signature line {line!r}")
    return Signature(name, raw[:4], raw[4:])


def _b64decode(text: str) -> bytes | None:
    if not text:
        return None
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
