"""JSON serialization: the gate's canonical JSON and request bodies.

:func:`canonical_json` writes the canonical form the gate hashes and signs
receipts over (``docs/CANONICAL.md`` in the repository specifies it). It is
RFC 8785 (the JSON Canonicalization Scheme) with one change, for numbers:

- no insignificant whitespace;
- object members sorted by their names compared as UTF-16 code units;
- strings escaped as ECMAScript's ``JSON.stringify`` does (``\\"``, ``\\\\``,
  ``\\b \\f \\n \\r \\t``, other control characters as lowercase ``\\u00xx``,
  everything else verbatim);
- a number is written as its **exact decimal value**, never rounded to a
  double: its significant digits (no leading or trailing zeros) laid out as
  ECMAScript's ``Number.prototype.toString`` lays out a double's digits
  (plain notation for decimal exponents from -6 to 20, else ``d.ddde+N`` /
  ``d.ddde-N``; zero, including ``-0``, is ``0``). So ``9007199254740993``
  stays ``9007199254740993`` and ``0.10`` is ``0.1``. For every number that
  RFC 8785 writes without rounding (every integer up to 2**53, every
  shortest-form double such as ``0.1``) the output is RFC 8785's.

Numbers must reach :func:`canonical_json` exactly: parse JSON text with
:func:`loads_exact` (or ``json.loads(text, parse_float=Decimal,
parse_int=Decimal)``). A :class:`float` stands for the decimal its ``repr``
prints (the shortest text that reads back as that double).

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
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, List, Tuple

__all__ = ["canonical_json", "dumps", "format_es6_number", "loads_exact", "DuplicateKeyError"]

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
    # repr() gives the shortest digits that round-trip (closest, ties to
    # even): the digits ECMAScript specifies. Only the notation differs.
    return _exact_decimal(Decimal(repr(value)))


def _layout(negative: bool, digits: str, n: int) -> str:
    """ECMAScript's layout of ``0.<digits> × 10**n`` (``digits`` without
    leading or trailing zeros)."""
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        body = digits[0] + ("." + digits[1:] if k > 1 else "") + ("e+" if e >= 0 else "e-") + str(abs(e))
    return ("-" if negative else "") + body


def _exact_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"{value!r} is not a finite number; JSON cannot carry it")
    sign, digit_tuple, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # pragma: no cover - finite was checked
        raise ValueError(f"{value!r} is not a finite number")
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    if not digits:
        return "0"
    stripped = digits.rstrip("0")
    # value = <digits> × 10**exponent = 0.<stripped> × 10**n
    n = len(digits) + exponent
    return _layout(bool(sign), stripped, n)


def _canonical_number(value: Any) -> str:
    if isinstance(value, int):
        if value == 0:
            return "0"
        # Exact, and free of the int-to-str digit limit.
        return _exact_decimal(Decimal(value))
    if isinstance(value, Decimal):
        return _exact_decimal(value)
    # A float is the decimal its repr prints: the shortest text that reads
    # back as the same double, which is what the gate writes for a double.
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
    """Returns the canonical JSON text of a decoded JSON value.

    Encode the result as UTF-8 to get the bytes that are hashed or signed.

    Raises:
        TypeError: for values that are not JSON (sets, objects…).
        ValueError: for NaN, infinities and lone surrogates.
    """
    out: List[str] = []
    _canonical(value, out)
    return "".join(out)


class DuplicateKeyError(ValueError):
    """A JSON object names the same member twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def _unique_members(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


def _exact_number(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        # Decimal's exponent range is ±999999999999999999.
        raise ValueError(f"number {text} is out of range") from None


def _exact_int(text: str) -> Any:
    # Python refuses to convert very long digit strings to int; Decimal
    # holds them exactly.
    return int(text) if len(text) <= 4000 else _exact_number(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_exact(text: "str | bytes | bytearray") -> Any:
    """Parses JSON strictly, keeping every number exact.

    Integers become :class:`int` and other numbers :class:`decimal.Decimal`, so
    :func:`canonical_json` of the result is the gate's canonical form of the
    text. Duplicate member names raise :class:`DuplicateKeyError`; ``NaN``,
    ``Infinity`` and trailing content raise :class:`ValueError`.
    """
    return json.loads(
        text,
        parse_float=_exact_number,
        parse_int=_exact_int,
        parse_constant=_no_constant,
        object_pairs_hook=_unique_members,
    )


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
