"""Small helpers shared by the runner and the decorator."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Optional

from .canonical import dumps

_MAX_ERROR_BYTES = 8 * 1024


def _error_text(exc: BaseException) -> str:
    """``str(exc)``, or the exception's type name when that is empty, cut to 8 KiB."""
    text = str(exc).strip() or type(exc).__name__
    data = text.encode("utf-8")
    if len(data) > _MAX_ERROR_BYTES:
        text = data[: _MAX_ERROR_BYTES - 3].decode("utf-8", "ignore") + "…"
    return text


def _result_json(result: Any) -> str:
    """The JSON text reported for an executor's return value.

    Values JSON cannot carry are reported as ``{"unserializable_result": repr}``
    rather than as a failure: the action did happen.
    """
    try:
        return dumps(result)
    except (TypeError, ValueError):
        return dumps({"unserializable_result": repr(result)[:2000]})


def _loads(text: Optional[str], exact: bool = False) -> Any:
    """Decodes stored JSON; ``exact`` keeps fractions as :class:`Decimal` (for re-sending)."""
    if text is None:
        return None
    return json.loads(text, parse_float=Decimal) if exact else json.loads(text)
