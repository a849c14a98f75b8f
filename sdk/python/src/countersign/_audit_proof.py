"""The audit proof a receipt carries (receipt version 2), checked with the
standard library: RFC 9162 inclusion proofs and the C2SP signed-note /
tlog-checkpoint formats. Only the note's Ed25519 signature needs the
``cryptography`` package, which receipt verification already uses.

The receipt's ``log`` member holds ``checkpoint`` (the signed note, exactly
as signed) and ``events``: per event of the run, ``index`` (seq - 1),
``event`` (its canonical bytes, the Merkle leaf data) and ``proof`` (base64
hashes). See the README's "Verifying the record".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from typing import Any, Dict, List, Mapping, Tuple

from .errors import ReceiptVerificationError

__all__ = ["verify_log", "verify_inclusion", "verify_consistency", "open_checkpoint"]

_ED25519 = b"\x01"


def _fail(message: str) -> ReceiptVerificationError:
    return ReceiptVerificationError(message, code="bad_audit_proof")


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise _fail(f"{what} is not a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise _fail(f"{what} is not valid base64") from None


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, proof: List[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: List[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if size1 > size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    if not proof:
        return False
    if size1 & (size1 - 1) == 0:
        proof = [root1] + proof
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root1 and sr == root2 and sn == 0


def _key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _ED25519 + public_key).digest()[:4]


def open_checkpoint(note: Any, workspace: str, public_key: bytes) -> Tuple[str, int, bytes]:
    """Checks a signed checkpoint of ``workspace``'s log against the gate's
    Ed25519 key (the note key name is the origin without ``/<workspace>``).
    Returns (origin, size, root hash)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(note, str) or "\n\n" not in note or not note.endswith("\n"):
        raise _fail("the checkpoint is not a signed note")
    split = note.index("\n\n")
    text, sigs = note[: split + 1], note[split + 2 :]
    lines = text.split("\n")
    if len(lines) < 4:
        raise _fail("the checkpoint body has no origin, size and root lines")
    origin, size_line, root_line = lines[0], lines[1], lines[2]
    if not size_line.isdigit() or (size_line != "0" and size_line.startswith("0")):
        raise _fail(f"invalid checkpoint size {size_line!r}")
    root = _b64(root_line, "the checkpoint root")
    if len(root) != 32:
        raise _fail("the checkpoint root is not 32 bytes")
    suffix = "/" + workspace
    if not origin.endswith(suffix) or len(origin) == len(suffix):
        raise _fail(f"checkpoint origin {origin!r} is not the log of workspace {workspace!r}")
    name = origin[: -len(suffix)]
    want_id = _key_id(name, public_key)
    verifier = Ed25519PublicKey.from_public_bytes(public_key)
    for line in sigs.split("\n")[:-1]:
        if not line.startswith("\u2014 "):
            raise _fail("malformed signature line in the checkpoint")
        parts = line[2:].split(" ")
        if len(parts) != 2 or parts[0] != name:
            continue
        blob = _b64(parts[1], "a checkpoint signature")
        if len(blob) != 68 or blob[:4] != want_id:
            continue
        try:
            verifier.verify(blob[4:], text.encode("utf-8"))
        except InvalidSignature:
            raise _fail("the checkpoint's signature does not verify") from None
        return origin, int(size_line), root
    raise _fail("the checkpoint has no signature by the receipt's key")


def verify_log(body: Mapping[str, Any], public_key: bytes) -> Dict[str, Any]:
    """Checks ``body["log"]``. Returns ``{}`` when the receipt has none (issued
    before the verifiable log), else ``{"origin", "size", "events"}``."""
    log = body.get("log")
    if log is None:
        return {}
    if not isinstance(log, dict) or not isinstance(log.get("events"), list) or not log["events"]:
        raise _fail("log.events must be a non-empty list")
    workspace, run_id = body.get("workspace"), body.get("run_id")
    if not isinstance(workspace, str) or not isinstance(run_id, str):
        raise _fail("the receipt has no workspace or run_id")
    origin, size, root = open_checkpoint(log.get("checkpoint"), workspace, public_key)
    last_hash = None
    for k, item in enumerate(log["events"]):
        index, event = item.get("index"), item.get("event")
        if not isinstance(index, int) or isinstance(index, bool) or not isinstance(event, str):
            raise _fail(f"log.events[{k}] needs an integer index and an event string")
        proof = [_b64(h, f"log.events[{k}].proof") for h in item.get("proof") or []]
        if any(len(h) != 32 for h in proof):
            raise _fail(f"log.events[{k}].proof holds a hash that is not 32 bytes")
        data = event.encode("utf-8")
        if not verify_inclusion(leaf_hash(data), index, size, proof, root):
            raise _fail(f"event at index {index} is not in the tree of size {size} the checkpoint signs")
        try:
            ev = json.loads(event)
        except ValueError:
            raise _fail(f"log.events[{k}].event is not JSON") from None
        if ev.get("workspace") != workspace or ev.get("run_id") != run_id or ev.get("seq") != index + 1:
            raise _fail(f"log.events[{k}] is not event seq {index + 1} of run {run_id!r}")
        prev = ev.get("prev_hash") or ""
        last_hash = hashlib.sha256(prev.encode("utf-8") + data).hexdigest()
    stated = (body.get("audit") or {}).get("hash")
    if isinstance(stated, str) and last_hash != stated:
        raise _fail("the run's last event is not the one the receipt's audit.hash names")
    return {"origin": origin, "size": size, "events": len(log["events"])}



