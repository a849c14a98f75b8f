"""A small HTTP/1.1 client on asyncio streams, with keep-alive (standard library only).

It speaks just what the gate needs: one request at a time per connection,
``Content-Length`` or chunked answers, and connection reuse per origin.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Dict, List, Optional, Tuple

from ._core import _Target

_MAX_HEADER_LINES = 200
_MAX_BODY = 64 * 1024 * 1024


class ProtocolError(EOFError):
    """The server's answer is not the HTTP/1.1 this client reads (or it closed early)."""


class Headers(Dict[str, str]):
    """Answer headers; ``get`` ignores case."""

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:  # type: ignore[override]
        return super().get(key.lower(), default)


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.loop = asyncio.get_running_loop()

    def usable(self) -> bool:
        return (
            self.loop is asyncio.get_running_loop()
            and not self.writer.is_closing()
            and not self.reader.at_eof()
        )

    def close(self) -> None:
        try:
            self.writer.close()
        except (OSError, RuntimeError):  # pragma: no cover - the loop is gone
            pass


class AsyncPool:
    """Idle keep-alive connections per origin, on the running event loop."""

    def __init__(self, max_idle: int = 8) -> None:
        self.max_idle = max_idle
        self._idle: Dict[Tuple[str, str, int], List[_Conn]] = {}
        #: Connections opened so far (for tests and diagnostics).
        self.opened = 0

    def take(self, origin: Tuple[str, str, int]) -> Optional[_Conn]:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            try:
                if conn.usable():
                    return conn
            except RuntimeError:  # pragma: no cover - no running loop
                pass
            conn.close()
        return None

    async def open(self, target: _Target, ssl_context: Optional[ssl.SSLContext]) -> _Conn:
        if target.scheme == "https":
            reader, writer = await asyncio.open_connection(
                target.host, target.port, ssl=ssl_context, server_hostname=target.host
            )
        else:
            reader, writer = await asyncio.open_connection(target.host, target.port)
        self.opened += 1
        return _Conn(reader, writer)

    def give_back(self, origin: Tuple[str, str, int], conn: _Conn) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < self.max_idle:
            idle.append(conn)
        else:
            conn.close()

    def discard(self) -> None:
        """Closes the idle connections without waiting (from ``__del__``)."""
        conns = [c for idle in self._idle.values() for c in idle]
        self._idle.clear()
        for c in conns:
            c.close()

    async def close(self) -> None:
        conns = [c for idle in self._idle.values() for c in idle]
        self._idle.clear()
        for c in conns:
            c.close()
        for c in conns:
            try:
                if c.loop is asyncio.get_running_loop():
                    await c.writer.wait_closed()
            except (OSError, RuntimeError, ssl.SSLError):
                pass


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        line = await reader.readline()
    except (asyncio.LimitOverrunError, ValueError) as e:
        raise ProtocolError(f"an answer line is too long: {e}") from None
    if not line.endswith(b"\n"):
        raise ProtocolError("the connection closed before the answer was complete")
    return line


async def roundtrip(
    conn: _Conn, method: str, target: _Target, headers: Dict[str, str], body: Optional[bytes]
) -> Tuple[int, Headers, bytes, bool]:
    """Sends one request on ``conn`` and reads the whole answer.

    Returns ``(status, headers, body, keep_alive)``.
    """
    host = target.host if ":" not in target.host else f"[{target.host}]"
    default_port = 443 if target.scheme == "https" else 80
    port = "" if target.port == default_port else f":{target.port}"
    lines = [f"{method} {target.target} HTTP/1.1", f"Host: {host}{port}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    conn.writer.write(head + (body or b""))
    await conn.writer.drain()

    reader = conn.reader
    while True:
        status_line = (await _line(reader)).decode("latin-1").rstrip("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        version, status = parts[0], int(parts[1])
        answer = Headers()
        for _ in range(_MAX_HEADER_LINES):
            raw = (await _line(reader)).decode("latin-1").rstrip("\r\n")
            if not raw:
                break
            name, sep, value = raw.partition(":")
            if not sep:
                raise ProtocolError(f"malformed header line {raw[:80]!r}")
            key = name.strip().lower()
            value = value.strip()
            answer[key] = f"{answer[key]}, {value}" if key in answer else value
        else:
            raise ProtocolError("too many header lines")
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue and friends: the real answer follows
        break

    connection = (answer.get("connection") or "").lower()
    keep_alive = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
    data = b""
    if method == "HEAD" or status in (204, 304):
        pass
    elif "chunked" in (answer.get("transfer-encoding") or "").lower():
        chunks: List[bytes] = []
        size_total = 0
        while True:
            size_line = (await _line(reader)).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_line[:20]!r}") from None
            if size == 0:
                while (await _line(reader)).strip():  # trailers
                    pass
                break
            size_total += size
            if size_total > _MAX_BODY:
                raise ProtocolError("the answer is too large")
            try:
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            except asyncio.IncompleteReadError:
                raise ProtocolError("the connection closed in the middle of the answer") from None
        data = b"".join(chunks)
    elif answer.get("content-length") is not None:
        try:
            length = int(answer.get("content-length") or "")
        except ValueError:
            raise ProtocolError("bad Content-Length") from None
        if length < 0 or length > _MAX_BODY:
            raise ProtocolError("bad Content-Length")
        try:
            data = await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise ProtocolError("the connection closed in the middle of the answer") from None
    else:
        data = await reader.read(_MAX_BODY)  # until the server closes
        keep_alive = False
    return status, answer, data, keep_alive
