"""What one request may cost before the application sees it: head size, header count, URL length, time.

uvicorn's httptools protocol takes any head (a 64 MiB header line was accepted and held while it
arrived) and waits for it forever. This subclass bounds the bytes fed to the parser until the head
is complete, the URL and the number of header lines, and the time a client may take to send its
head; past a bound the client gets a short 4xx and the connection closes. Counting costs a length
comparison per read, and a timer only for a head that does not arrive in one read.
The bounds are settings, read from iiif_server/bounds.py.

It also sends a response's head together with its body's first bytes: uvicorn writes them apart, two
sends and two segments per tile, and behind nginx that second send was a tenth of a tile's CPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from iiif_server.runtime.bounds import current


class Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class JoinedHead:
    """The transport as one response cycle writes to it: the response's head (its first write, a 100 Continue
    aside) is held back and goes out with the next write, or when the response completes or the connection
    closes. The bytes and their order are unchanged."""

    __slots__ = ("_transport", "_head", "_started", "_completed")

    def __init__(self, transport: asyncio.Transport, completed: Callable[[], None]) -> None:
        self._transport = transport
        self._head: bytes | None = None
        self._started = False
        self._completed = completed  # the cycle's own callback, called after the flush

    def write(self, data: bytes) -> None:
        if not self._started and not data.startswith(b"HTTP/1.1 100 "):
            self._started = True
            self._head = data
            return
        if self._head is not None:
            data, self._head = self._head + data, None
        self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def completed(self) -> None:
        """The response's end (its cycle's `on_response`): a head without body bytes (HEAD, 304) goes out."""
        self.flush()
        self._completed()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounds on each request's head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bounds = current()
        self._head_left: int | None = self.bounds.head_bytes  # None: between a head's end and its message's end
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = False  # between a request's first byte and the end of its head

    def data_received(self, data: bytes) -> None:
        left = self._head_left
        if left is None or len(data) <= left:
            if left is not None:
                self._head_left = left - len(data)
            self._feed(data)
            # the timer only for a head these bytes left unfinished: a whole head in one read (every request
            # from a proxy) costs no timer to make and cancel
            if self._in_head and self._head_timer is None and not self.transport.is_closing():
                self._head_timer = self.loop.call_later(self.bounds.head_seconds, self._head_timeout)
            return
        # more than the head may still hold: feed what it may, and refuse if the head goes on
        self._head_left = 0
        self._feed(data[:left])
        if self._head_left is not None:
            self._refuse(431)
        elif not self.transport.is_closing():
            self.data_received(data[left:])

    def _feed(self, data: bytes) -> None:
        """uvicorn's data_received, with the limits' own status codes."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, Refused):
                self._refuse(exc.__context__.status)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")

    def on_message_begin(self) -> None:
        self._in_head = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_left = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if len(self.url) > self.bounds.url_bytes:
            raise Refused(414)
        if len(self.headers) > self.bounds.headers:
            raise Refused(431)
        super().on_headers_complete()
        cycle = self.cycle  # made above; its task has not run yet
        joined = JoinedHead(self.transport, cycle.on_response)
        cycle.transport = joined  # type: ignore[assignment]
        cycle.on_response = joined.completed

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_left = self.bounds.head_bytes  # the next request's head starts

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self._head_left is not None and not self.transport.is_closing():
            self._refuse(408)

    def _refuse(self, status: int) -> None:
        if self.transport.is_closing():
            return
        text = (self.bounds.reason(status) + "\n").encode()
        self.transport.write(b"".join([
            STATUS_LINE[status], b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: ", str(len(text)).encode(), b"\r\n", b"connection: close\r\n\r\n", text]))
        self.transport.close()
