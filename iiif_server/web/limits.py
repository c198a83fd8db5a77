"""What one request may cost before the application sees it: head size, header count, URL length, time.

uvicorn's httptools protocol takes any head (a 64 MiB header line was accepted and held while it
arrived) and waits for it forever. This subclass bounds the bytes fed to the parser until the head
is complete, the URL and the number of header lines, and the time a client may take to send its
head; past a bound the client gets a short 4xx and the connection closes. Counting costs a length
comparison per read and one timer per request: wrk on a tile showed no difference beyond noise.
The bounds are settings, read from iiif_server/bounds.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from iiif_server.runtime.bounds import current


class Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounds on each request's head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bounds = current()
        self._head_left: int | None = self.bounds.head_bytes  # None: between a head's end and its message's end
        self._head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        left = self._head_left
        if left is None:
            self._feed(data)
            return
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.bounds.head_seconds, self._head_timeout)
        if len(data) <= left:
            self._head_left = left - len(data)
            self._feed(data)
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

    def on_headers_complete(self) -> None:
        self._head_left = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if len(self.url) > self.bounds.url_bytes:
            raise Refused(414)
        if len(self.headers) > self.bounds.headers:
            raise Refused(431)
        super().on_headers_complete()

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
