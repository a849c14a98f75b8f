"""JSON serialization: RFC 8785 canonical JSON and request bodies.

:func:`canonical_json` implements the JSON Canonicalization Scheme (RFC 8785)
that the gate signs receipts over:

- no insignificant whitespace;
- object members sorted by their names compared as UTF-16 code units;
- strings escaped as ECMAScript's ``JSON.stringify`` does (``\\"``, ``\\\\``,
  ``\\b \\f \\n \\r \\t``, other control characters as lowercase ``\\u00xx``,
  everything else verbatim);
- numbers written as ECMAScript's ``Number.prototype.toString`` writes the
  IEEE 754 double they denote (``1e+21``, ``0.000001``, ``1e-7``, ``-0`` → ``0``).
  Integers beyond ±2**53 are rounded to the nearest double first, as any JCS
  implementation reading the same JSON text would.

:func:`dumps` serializes request bodies. Unlike :func:`json.dumps` it writes
:class:`decimal.Decimal` as an exact JSON number (the gate compares amounts
as exact decimals), :class:`datetime.datetime`/:class:`datetime.date` as ISO
8601 strings, :class:`uuid.UUID` as strings and :class:`enum.Enum` members as
their value.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import math
import uuid
from decimal import Decimal
from typing import Any, List

__all__ = ["canonical_json", "dumps", "format_es6_number"]

_MAX_EXACT_INT = 2**53

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _escape_string(s: str, out: List[str]) -> None:
    out.append('"')
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise ValueError("lone surrogate in string: not representable in canonical JSON")
        else:
            out.append(ch)
    out.append('"')


def format_es6_number(value: float) -> str:
    """Formats a double as ECMAScript's ``Number.prototype.toString`` does.

    Raises:
        ValueError: for NaN and infinities, which JSON cannot carry.
    """
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number; JSON cannot carry it")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr() gives the shortest digits that round-trip (closest, ties to
    # even): the digits ECMAScript specifies. Only the notation differs.
    text = repr(abs(value))
    mantissa, _, exp_text = text.partition("e")
    exp = int(exp_text) if exp_text else 0
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    significant = all_digits.lstrip("0")
    leading_zeros = len(all_digits) - len(significant)
    digits = significant.rstrip("0")
    k = len(digits)
    # value = 0.d1 d2 ... dk × 10**n
    n = len(int_part) + exp - leading_zeros
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        body = digits[0] + ("." + digits[1:] if k > 1 else "") + ("e+" if e >= 0 else "e-") + str(abs(e))
    return sign + body


def _canonical_number(value: Any) -> str:
    if isinstance(value, int):
        if abs(value) <= _MAX_EXACT_INT:
            return str(value)
        return format_es6_number(float(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value!r} is not a finite number; JSON cannot carry it")
        return format_es6_number(float(value))
    return format_es6_number(float(value))


def _canonical(value: Any, out: List[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        _escape_string(value, out)
    elif isinstance(value, (int, float, Decimal)):
        out.append(_canonical_number(value))
    elif isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, not {type(key).__name__}")
            items.append((key.encode("utf-16-be", "surrogatepass"), key, item))
        # Big-endian UTF-16 bytes compare like the code units they encode.
        items.sort(key=lambda t: t[0])
        out.append("{")
        for i, (_, key, item) in enumerate(items):
            if i:
                out.append(",")
            _escape_string(key, out)
            out.append(":")
            _canonical(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _canonical(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value")


def canonical_json(value: Any) -> str:
    """Returns the RFC 8785 canonical JSON text of a decoded JSON value.

    Encode the result as UTF-8 to get the bytes that are hashed or signed.

    Raises:
        TypeError: for values that are not JSON (sets, objects…).
        ValueError: for NaN, infinities and lone surrogates.
    """
    out: List[str] = []
    _canonical(value, out)
    return "".join(out)


def _encode(value: Any, out: List[str]) -> None:
    if value is None or isinstance(value, (bool, str)):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, enum.Enum):
        _encode(value.value, out)
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number; JSON cannot carry it")
        out.append(repr(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value!r} is not a finite number; JSON cannot carry it")
        out.append(str(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if isinstance(key, enum.Enum):
                key = key.value
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, not {type(key).__name__}")
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        out.append(json.dumps(value.isoformat()))
    elif isinstance(value, uuid.UUID):
        out.append(json.dumps(str(value)))
    else:
        raise TypeError(
            f"{type(value).__name__} is not JSON serializable "
            "(use dicts, lists, strings, numbers, booleans, None, Decimal, datetime or UUID)"
        )


def dumps(value: Any) -> str:
    """Serializes ``value`` as compact JSON for a request body.

    Raises:
        TypeError: for values that cannot be represented in JSON.
        ValueError: for NaN and infinities.
    """
    out: List[str] = []
    _encode(value, out)
    return "".join(out)
