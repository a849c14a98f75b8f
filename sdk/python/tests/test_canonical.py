"""The canonical form agrees with the Rust implementation on the shared
vectors, keeps every number exact, and the strict reader refuses what a
verifier must not accept."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from countersign.canonical import DuplicateKeyError, canonical_json, loads_exact

VECTORS = Path(__file__).resolve().parents[3] / "store" / "tests" / "canonical_vectors.json"
CASES = json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["input"][:40] for c in CASES])
def test_shared_vectors_byte_for_byte(case):
    if "python" in case:
        pytest.skip(case["python"])
    got = canonical_json(loads_exact(case["input"]))
    assert got.encode("utf-8") == case["canonical"].encode("utf-8")


def test_numbers_beyond_doubles_keep_their_digits():
    a = canonical_json(loads_exact('{"n": 9007199254740993}'))
    b = canonical_json(loads_exact('{"n": 9007199254740992}'))
    assert a == '{"n":9007199254740993}' and a != b
    a = canonical_json(loads_exact("0.12345678901234567890"))
    b = canonical_json(loads_exact("0.12345678901234567891"))
    assert a != b
    # Python values directly: ints and Decimals exact, floats as their repr.
    assert canonical_json(2**53 + 1) == "9007199254740993"
    assert canonical_json(10**21) == "1e+21"
    assert canonical_json(Decimal("1.50")) == "1.5"
    assert canonical_json(0.1) == "0.1"
    assert canonical_json(-0.0) == "0"
    assert canonical_json(Decimal("-0")) == "0"
    # Ints beyond Python's int-to-str digit limit are still written.
    assert canonical_json(10**5000) == "1e+5000"
    assert canonical_json(loads_exact("1" * 5000)).startswith("1.111")


def test_same_value_same_form_different_value_different_form():
    same = ["1", "1.0", "1.00e0", "100e-2", "0.1e1"]
    assert {canonical_json(loads_exact(t)) for t in same} == {"1"}
    assert canonical_json(loads_exact("0.1")) != canonical_json(
        loads_exact("0.1000000000000000055511151231257827021181583404541015625")
    )


def test_the_strict_reader_refuses_ambiguous_text():
    with pytest.raises(DuplicateKeyError) as e:
        loads_exact('{"a": {"governance_status": "approved", "governance_status": "allowed"}}')
    assert e.value.key == "governance_status"
    for text in ['{"a":1} x', "NaN", "[Infinity]", '{"a":1,}']:
        with pytest.raises(ValueError):
            loads_exact(text)
