"""Offline verification of signed receipts.

A receipt (``GET /v1/runs/{id}/receipt``) is ``{"receipt": {...},
"signature": {"alg": "Ed25519", "key_id": ..., "value": <base64>}}``; the
signature covers the UTF-8 bytes of the canonical JSON of ``receipt``
(:mod:`countersign.canonical`: RFC 8785 with numbers kept exact). Checking
it needs the optional ``cryptography`` package
(``pip install 'countersign[crypto]'``).

Verification is strict, like ``countersign receipt verify``: JSON text is
read with every number exact and duplicate keys refused, and the document
may hold nothing the signature does not cover (only ``receipt`` and
``signature``, and in ``signature`` only ``alg``, ``key_id`` and ``value``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, Dict, Iterable, List, Mapping, Union

from .canonical import DuplicateKeyError, canonical_json, loads_exact
from .errors import ReceiptVerificationError
from .models import Receipt, ReceiptKey
from ._audit_proof import verify_log

__all__ = ["verify_receipt", "key_id_of"]

# Members a signed receipt may have: everything else would be content the
# signature does not cover.
_TOP_MEMBERS = ("receipt", "signature")
_SIGNATURE_MEMBERS = ("alg", "key_id", "value")

PublicKeyLike = Union[str, bytes, ReceiptKey, Mapping[str, Any], Iterable[Any]]


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ReceiptVerificationError(f"{what} is not valid base64", code="receipt_malformed") from None


def key_id_of(public_key: bytes) -> str:
    """The gate's id of a raw 32-byte public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def _keys(public_key: PublicKeyLike) -> List[bytes]:
    """Normalizes the accepted key forms to a list of raw 32-byte keys."""
    if isinstance(public_key, (bytes, bytearray)):
        raw = bytes(public_key)
        return [raw]
    if isinstance(public_key, str):
        return [_b64decode(public_key.strip(), "the public key")]
    if isinstance(public_key, ReceiptKey):
        if public_key.alg and public_key.alg != "Ed25519":
            return []
        return [_b64decode(public_key.public_key, "the public key")]
    if isinstance(public_key, Mapping):
        if "keys" in public_key:  # the whole /v1/receipt-keys document
            return _keys(public_key["keys"])
        return _keys(ReceiptKey.from_json(dict(public_key)))
    try:
        items = list(public_key)
    except TypeError:
        raise TypeError(
            "public_key must be a base64 string, raw bytes, a ReceiptKey, "
            "a /v1/receipt-keys document or a list of keys"
        ) from None
    out: List[bytes] = []
    for item in items:
        out.extend(_keys(item))
    return out


def _document(receipt: Union[Receipt, Mapping[str, Any], str, bytes]) -> Dict[str, Any]:
    if isinstance(receipt, Receipt):
        return dict(receipt.document) if receipt.document else {
            "receipt": receipt.receipt,
            "signature": {
                "alg": receipt.signature.alg,
                "key_id": receipt.signature.key_id,
                "value": receipt.signature.value,
            },
        }
    if isinstance(receipt, (str, bytes, bytearray)):
        try:
            parsed = loads_exact(receipt)
        except DuplicateKeyError as e:
            raise ReceiptVerificationError(
                f"duplicate key {e.key!r} in the receipt: refusing an ambiguous document",
                code="receipt_malformed",
            ) from None
        except (ValueError, RecursionError) as e:
            raise ReceiptVerificationError(f"the receipt is not JSON: {e}", code="receipt_malformed") from None
        if not isinstance(parsed, dict):
            raise ReceiptVerificationError("the receipt is not a JSON object", code="receipt_malformed")
        return parsed
    if isinstance(receipt, Mapping):
        return dict(receipt)
    raise TypeError("receipt must be a Receipt, a dict or JSON text")


def verify_receipt(
    receipt: Union[Receipt, Mapping[str, Any], str, bytes],
    public_key: PublicKeyLike,
) -> bool:
    """Checks a receipt's Ed25519 signature against the gate's public key(s).

    Args:
        receipt: A :class:`Receipt`, the signed JSON document as a dict, or
            its JSON text. Prefer the text (or a :class:`Receipt` from
            :meth:`Client.receipt`, which reads it exactly): a dict decoded
            by plain :func:`json.loads` has already lost duplicate keys and
            the digits of long numbers.
        public_key: The gate's key as a base64 string (``public_key`` of
            ``/v1/receipt-keys``) or 32 raw bytes, a :class:`ReceiptKey`, the
            list :meth:`Client.receipt_keys` returns, or the whole
            ``/v1/receipt-keys`` document. Given several keys, the one whose
            ``key_id`` matches the signature's is used.

    Returns:
        ``True`` when the signature is valid.

    Raises:
        ReceiptVerificationError: The receipt is malformed, signed by an
            unknown key, or its content does not match its signature
            (``code`` is ``receipt_malformed``, ``unknown_key`` or
            ``bad_signature``), or its audit proof fails (``bad_audit_proof``:
            the embedded checkpoint is not signed by the key, or an event of
            the run is not in the tree the checkpoint signs).
        ImportError: The ``cryptography`` package is not installed.
    """
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "verifying receipts needs the `cryptography` package: pip install 'countersign[crypto]'"
        ) from e

    doc = _document(receipt)
    body = doc.get("receipt")
    sig = doc.get("signature")
    if not isinstance(body, dict) or not isinstance(sig, dict):
        raise ReceiptVerificationError(
            "a signed receipt has a `receipt` object and a `signature` object", code="receipt_malformed"
        )
    for name, obj, allowed in (("the document", doc, _TOP_MEMBERS), ("signature", sig, _SIGNATURE_MEMBERS)):
        extra = sorted(k for k in obj if k not in allowed)
        if extra:
            raise ReceiptVerificationError(
                f"{name} has {', '.join(repr(k) for k in extra)}, which the signature does not cover",
                code="receipt_malformed",
            )
    if sig.get("alg") != "Ed25519":
        raise ReceiptVerificationError("signature.alg must be Ed25519", code="receipt_malformed")
    key_id = sig.get("key_id")
    value = sig.get("value")
    if not isinstance(key_id, str) or not isinstance(value, str):
        raise ReceiptVerificationError("signature.key_id and signature.value are required", code="receipt_malformed")
    signature = _b64decode(value, "signature.value")
    if len(signature) != 64:
        raise ReceiptVerificationError("signature.value must be 64 bytes", code="receipt_malformed")

    candidates = _keys(public_key)
    for raw in candidates:
        if len(raw) != 32:
            raise ReceiptVerificationError("an Ed25519 public key is 32 bytes", code="receipt_malformed")
    matching = [raw for raw in candidates if key_id_of(raw) == key_id]
    if not matching:
        raise ReceiptVerificationError(
            f"the receipt is signed by key {key_id!r}, which is not among the given keys "
            f"({', '.join(key_id_of(k) for k in candidates) or 'none'})",
            code="unknown_key",
        )
    try:
        message = canonical_json(body).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise ReceiptVerificationError(f"the receipt cannot be canonicalized: {e}", code="receipt_malformed") from None
    try:
        Ed25519PublicKey.from_public_bytes(matching[0]).verify(signature, message)
    except InvalidSignature:
        raise ReceiptVerificationError(
            "the signature does not match: the receipt was changed or signed by another key",
            code="bad_signature",
        ) from None
    except ValueError as e:
        raise ReceiptVerificationError(f"invalid public key: {e}", code="receipt_malformed") from None
    # Version 2 receipts carry their audit proof: a checkpoint signed by the
    # same key, and every event's inclusion proof in it. Older receipts
    # have none and are checked by their signature only.
    verify_log(body, matching[0])
    return True
