"""Receipt verification (valid, forged, wrong key) and RFC 8785 canonical JSON."""

from __future__ import annotations

import base64
import copy
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import countersign
from countersign.canonical import canonical_json, format_es6_number, loads_exact
from helpers import reminder


@pytest.fixture()
def finished_receipt(gate, client, actor):
    """An approved, executed run whose receipt has tricky strings and numbers."""
    run = client.intercept("send_invoice_reminder", reminder(1250.10), actor=actor)
    gate.answer(run.run_id, "approve", "alice")
    client.wait_for_decision(run.run_id, timeout=10, poll_interval=0.1)
    client.report_executed(
        run.run_id,
        {"note": "Grüße \u20ac \"quoted\" \\ tab\t nl\n ctl\x01 \u2028 😀", "ratio": 0.1, "big": 1e21, "n": 3},
    )
    return client.receipt(run.run_id)


def test_a_real_receipt_verifies_with_every_key_form(client, finished_receipt):
    receipt = finished_receipt
    assert receipt.governance_status == "approved"
    assert receipt.receipt["approvals"][0]["approver"] == "alice"
    assert receipt.signature.alg == "Ed25519"
    keys = client.receipt_keys()
    assert receipt.signature.key_id == keys[0].key_id
    assert countersign.key_id_of(base64.b64decode(keys[0].public_key)) == keys[0].key_id

    assert countersign.verify_receipt(receipt, keys)
    assert countersign.verify_receipt(receipt, keys[0])
    assert countersign.verify_receipt(receipt, keys[0].public_key)
    assert countersign.verify_receipt(receipt, base64.b64decode(keys[0].public_key))
    document = {"keys": [{"key_id": keys[0].key_id, "alg": "Ed25519", "public_key": keys[0].public_key}]}
    assert countersign.verify_receipt(receipt.document, document)
    # The stored JSON text, with another key order and whitespace, still verifies.
    text = json.dumps(receipt.document, indent=3, sort_keys=True, ensure_ascii=True)
    assert countersign.verify_receipt(text, keys)


def test_a_forged_receipt_is_refused(client, finished_receipt):
    keys = client.receipt_keys()
    forged = copy.deepcopy(finished_receipt.document)
    forged["receipt"]["decision"]["governance_status"] = "allowed"
    with pytest.raises(countersign.ReceiptVerificationError) as e:
        countersign.verify_receipt(forged, keys)
    assert e.value.code == "bad_signature"

    forged = copy.deepcopy(finished_receipt.document)
    forged["receipt"]["approvals"][0]["approver"] = "mallory"
    with pytest.raises(countersign.ReceiptVerificationError):
        countersign.verify_receipt(forged, keys)

    # Re-signed by someone else, claiming the gate's key id.
    mallory = Ed25519PrivateKey.generate()
    forged = copy.deepcopy(finished_receipt.document)
    forged["receipt"]["execution_status"] = "failed"
    sig = mallory.sign(canonical_json(forged["receipt"]).encode("utf-8"))
    forged["signature"]["value"] = base64.b64encode(sig).decode()
    with pytest.raises(countersign.ReceiptVerificationError) as e:
        countersign.verify_receipt(forged, keys)
    assert e.value.code == "bad_signature"

    # ... and verified against the forger's own key: the key id does not match.
    mallory_pub = mallory.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with pytest.raises(countersign.ReceiptVerificationError) as e:
        countersign.verify_receipt(forged, mallory_pub)
    assert e.value.code == "unknown_key"

    broken = copy.deepcopy(finished_receipt.document)
    broken["signature"]["value"] = "not base64!"
    with pytest.raises(countersign.ReceiptVerificationError) as e:
        countersign.verify_receipt(broken, keys)
    assert e.value.code == "receipt_malformed"
    with pytest.raises(countersign.ReceiptVerificationError):
        countersign.verify_receipt({"receipt": {}}, keys)


def _f64(bits: str) -> float:
    return struct.unpack(">d", bytes.fromhex(bits))[0]


@pytest.mark.parametrize(
    "bits, text",
    [
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("8000000000000001", "-5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("ffefffffffffffff", "-1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("c340000000000000", "-9007199254740992"),
        ("4430000000000000", "295147905179352830000"),
        ("44b52d02c7e14af5", "9.999999999999997e+22"),
        ("44b52d02c7e14af6", "1e+23"),
        ("44b52d02c7e14af7", "1.0000000000000001e+23"),
        ("444b1ae4d6e2ef4e", "999999999999999700000"),
        ("444b1ae4d6e2ef4f", "999999999999999900000"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555553", "333333333.3333332"),
        ("41b3de4355555554", "333333333.33333325"),
        ("41b3de4355555555", "333333333.3333333"),
        ("41b3de4355555556", "333333333.3333334"),
        ("41b3de4355555557", "333333333.33333343"),
        ("becbf647612f3696", "-0.0000033333333333333333"),
        ("43143ff3c1cb0959", "1424953923781206.2"),
    ],
)
def test_es6_number_formatting_matches_rfc8785(bits, text):
    assert format_es6_number(_f64(bits)) == text


def test_canonical_json_matches_the_rfc8785_example():
    # Read as doubles, the RFC's example gives the RFC's output; read exactly
    # (loads_exact), only its one number with more digits than a double
    # holds keeps them.
    source = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(json.loads(source)) == expected
    assert canonical_json(loads_exact(source)) == expected.replace("333333333.3333333", "333333333.33333329")


def test_canonical_json_sorts_keys_by_utf16_code_units():
    value = {"\ufb33": 1, "\U0001f600": 2, "\u20ac": 3, "1": 4, "\u0080": 5, "\r": 6, "\u00f6": 7}
    # U+1F600 is the surrogate pair D83D DE00, so it sorts before U+FB33.
    assert canonical_json(value) == '{"\\r":6,"1":4,"\u0080":5,"\u00f6":7,"\u20ac":3,"\U0001f600":2,"\ufb33":1}'
    # Exact: plain RFC 8785 would round 2**53 + 1 to 2**53.
    assert canonical_json(2**53 + 1) == "9007199254740993"
    with pytest.raises(ValueError):
        canonical_json(float("nan"))


def _leaf(data):
    import hashlib

    return hashlib.sha256(b"\x00" + data).digest()


def test_inclusion_and_consistency_proofs_match_rfc_6962_vectors():
    from countersign._audit_proof import verify_consistency, verify_inclusion
    import hashlib

    def node(a, b):
        return hashlib.sha256(b"\x01" + a + b).digest()

    def mth(leaves):
        if len(leaves) == 1:
            return leaves[0]
        k = 1
        while k * 2 < len(leaves):
            k *= 2
        return node(mth(leaves[:k]), mth(leaves[k:]))

    data = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
    leaves = [_leaf(bytes.fromhex(d)) for d in data]
    root = mth(leaves)
    assert root.hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    # Leaf 5 in 8: siblings 4, (6,7), (0..3).
    proof = [leaves[4], node(leaves[6], leaves[7]), mth(leaves[:4])]
    assert verify_inclusion(leaves[5], 5, 8, proof, root)
    assert not verify_inclusion(leaves[4], 5, 8, proof, root)
    assert not verify_inclusion(leaves[5], 5, 8, proof[:-1], root)
    # Consistency 6 -> 8: (4,5), (6,7), (0..3).
    proof = [node(leaves[4], leaves[5]), node(leaves[6], leaves[7]), mth(leaves[:4])]
    assert verify_consistency(6, 8, mth(leaves[:6]), root, proof)
    assert not verify_consistency(6, 8, mth(leaves[:5] + [leaves[0]]), root, proof)


def test_a_real_receipt_carries_a_proof_that_fails_when_altered(client, finished_receipt):
    from countersign._audit_proof import verify_log

    keys = client.receipt_keys()
    public = base64.b64decode(keys[0].public_key)
    body = finished_receipt.document["receipt"]
    assert body["version"] == 2
    result = verify_log(body, public)
    assert result["events"] == len(body["log"]["events"]) >= 4
    assert result["origin"].endswith("/default")

    changed = copy.deepcopy(body)
    changed["log"]["events"][0]["proof"][0] = base64.b64encode(b"\x07" * 32).decode()
    with pytest.raises(countersign.ReceiptVerificationError) as e:
        verify_log(changed, public)
    assert e.value.code == "bad_audit_proof"

    changed = copy.deepcopy(body)
    lines = changed["log"]["checkpoint"].split("\n")
    lines[2] = base64.b64encode(b"\x01" * 32).decode()
    changed["log"]["checkpoint"] = "\n".join(lines)
    with pytest.raises(countersign.ReceiptVerificationError) as e:
        verify_log(changed, public)
    assert e.value.code == "bad_audit_proof"

    changed = copy.deepcopy(body)
    changed["log"]["events"][0]["event"] = changed["log"]["events"][0]["event"].replace('"seq":', '"seq": ')
    with pytest.raises(countersign.ReceiptVerificationError):
        verify_log(changed, public)

    # A receipt from before the verifiable log has no proof to check.
    old = copy.deepcopy(body)
    del old["log"]
    assert verify_log(old, public) == {}
FIXTURES = Path(__file__).resolve().parents[3] / "gate" / "tests" / "fixtures"


def test_a_receipt_issued_before_exact_numbers_still_verifies():
    text = (FIXTURES / "receipt-v1-main.json").read_text(encoding="utf-8")
    keys = json.loads((FIXTURES / "receipt-v1-main-keys.json").read_text(encoding="utf-8"))
    assert countersign.verify_receipt(text, keys)
    pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    assert countersign.verify_receipt(pretty, keys)


def test_strict_verification_refuses_duplicates_unsigned_members_and_garbage():
    text = (FIXTURES / "receipt-v1-main.json").read_text(encoding="utf-8")
    keys = json.loads((FIXTURES / "receipt-v1-main-keys.json").read_text(encoding="utf-8"))
    cases = {
        "duplicate key 'governance_status'": text.replace(
            '"governance_status":"approved"', '"governance_status":"approved","governance_status":"allowed"'
        ),
        "'verified_by', which the signature does not cover": text.replace("{", '{"verified_by":"CFO",', 1),
        "signature has 'note'": text.replace('"alg":"Ed25519",', '"alg":"Ed25519","note":"x",'),
        "Extra data": text + " {}",
        "NaN is not JSON": text.replace('"seq":8', '"seq":NaN'),
    }
    for needle, bad in cases.items():
        assert bad != text
        with pytest.raises(countersign.ReceiptVerificationError) as e:
            countersign.verify_receipt(bad, keys)
        assert e.value.code == "receipt_malformed", needle
        assert needle in str(e.value), str(e.value)
    # A number changed beyond a double's precision is a different receipt.
    with pytest.raises(countersign.ReceiptVerificationError) as e:
        countersign.verify_receipt(text.replace('"seq":8', '"seq":8.0000000000000000001'), keys)
    assert e.value.code == "bad_signature"
    # The same value spelled another way is the same receipt.
    assert countersign.verify_receipt(text.replace('"seq":8', '"seq":8.000'), keys)


def test_a_result_beyond_doubles_is_receipted_exactly(gate, client, actor):
    """End to end: two results equal as doubles get different hashes."""
    import hashlib
    from decimal import Decimal

    keys = client.receipt_keys()
    sums = []
    for big in (9007199254740993, 9007199254740992):
        run = client.intercept("send_invoice_reminder", reminder(100), actor=actor)
        result = {"id": big, "amount": Decimal("0.12345678901234567891")}
        client.report_executed(run.run_id, result)
        receipt = client.receipt(run.run_id)
        assert countersign.verify_receipt(receipt, keys)
        digest = receipt.receipt["execution"]["result_sha256"]
        assert digest == hashlib.sha256(canonical_json(result).encode()).hexdigest()
        sums.append(digest)
        text = json.dumps(receipt.document, default=str)
        assert str(big) in text
        tampered = text.replace(str(big), str(big ^ 1))
        with pytest.raises(countersign.ReceiptVerificationError):
            countersign.verify_receipt(tampered, keys)
    assert sums[0] != sums[1]
