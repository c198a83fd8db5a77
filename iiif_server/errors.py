"""The server's errors: one family, each carrying the HTTP status it answers with.

Routes raise them and `web/app.py` turns any that reaches Starlette into a short plain-text answer
(one exception handler); the command line turns them into one line and an exit code. `Target` is the
one parser of `collection[/document[/page]]`, which staff type in the console and on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass


class IIIFServerError(Exception):
    """Something the server refuses or cannot do; `status` is the HTTP status that says so."""

    status = 500

    def __init__(self, message: str, status: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}  # e.g. Retry-After with a 503 or 429
        if status is not None:
            self.status = status


class RequestError(IIIFServerError):
    """A request the server cannot answer as asked (400 unless said otherwise: 404, 414, 501 ...)."""

    status = 400


class NotFound(RequestError, LookupError):
    """No such collection, document, page or image (or one hidden from the requester)."""

    status = 404


class BadTarget(RequestError, ValueError):
    """Not of the form `collection[/document[/page]]`."""


class Busy(IIIFServerError):
    """Something that runs one at a time is running already (an ingest of the same collection)."""

    status = 409


class TooLarge(RequestError):
    """More than the server will decode or build for one request."""


@dataclass(frozen=True)
class Target:
    """A collection, a document or a page, as `collection[/document[/page]]`."""

    parts: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Target:
        parts = tuple(text.strip().strip("/").split("/"))
        if not 1 <= len(parts) <= 3 or not all(parts):
            raise BadTarget(f"{text!r} is not collection[/document[/page]]")
        return cls(parts)

    @property
    def collection(self) -> str:
        return self.parts[0]

    @property
    def document(self) -> str | None:
        return self.parts[1] if len(self.parts) > 1 else None

    @property
    def page(self) -> str | None:
        return self.parts[2] if len(self.parts) > 2 else None

    @property
    def text(self) -> str:
        return "/".join(self.parts)

    @property
    def level(self) -> str:
        return ("collection", "document", "page")[len(self.parts) - 1]

    @property
    def parent(self) -> Target | None:
        return Target(self.parts[:-1]) if len(self.parts) > 1 else None
