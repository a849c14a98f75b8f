"""Small helpers shared by the runner and the decorator."""

from __future__ import annotations

import contextvars
import inspect
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional

from .canonical import dumps

if TYPE_CHECKING:  # pragma: no cover
    from .models import Run

_CURRENT_RUN: "contextvars.ContextVar[Optional[Run]]" = contextvars.ContextVar("countersign_current_run", default=None)


def current_run() -> "Optional[Run]":
    """The run a gated function or a runner's executor is executing for; else ``None``.

    Inside a :func:`countersign.gated` function, or an executor called by an
    :class:`~countersign.ActionRunner` or :class:`~countersign.AsyncActionRunner`,
    this is the run being executed, so the function can put its id in what it
    does (a message header, a log line)::

        @countersign.gated("send_invoice_reminder", client=client)
        def send(invoice_id: str) -> dict:
            run = countersign.current_run()
            return mailer.send(..., headers={"X-Countersign-Run": run.run_id})

    It is a :mod:`contextvars` variable, so it works in ``async def`` functions
    and threads alike.
    """
    return _CURRENT_RUN.get()

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


def _refuse_awaitable(result: Any, action: str) -> None:
    """Raises ``TypeError`` when a sync caller got an awaitable back.

    The action has not happened (a coroutine only runs when awaited), so it
    must be reported failed, never executed. The coroutine is closed so
    Python does not warn that it was never awaited.
    """
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if callable(close):
            close()
        raise TypeError(
            f"{action}: the function returned an awaitable without running it; "
            "decorate an `async def` (awaited by the SDK) or use countersign.AsyncActionRunner"
        )


def _is_async_callable(fn: Any) -> bool:
    """Whether calling ``fn`` gives a coroutine: an ``async def``, a partial of
    one, or an object whose class has an ``async def __call__``."""
    if inspect.iscoroutinefunction(fn):
        return True
    if inspect.isfunction(fn) or inspect.ismethod(fn):
        return False
    return inspect.iscoroutinefunction(inspect.getattr_static(type(fn), "__call__", None))
