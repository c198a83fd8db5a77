"""The limits on what one request may cost, as this process enforces them.

Settings (`--max-head-bytes`, `--max-url-bytes`, `--max-header-fields`, `--head-timeout`,
`--max-form-bytes`, `--form-timeout`, `--keep-alive-timeout`) with today's values as defaults. The
protocol (iiif_server/limits.py) and the sign-in forms read them here: the protocol is created by
uvicorn per connection and has no other way to the settings, so the app sets them once per process.
"""

from __future__ import annotations

from dataclasses import dataclass

from iiif_server.config import Settings

# the defaults are the settings' (config.Settings): request line and headers together (nginx: 4 buffers of
# 8 KiB), URL, header fields, seconds from a head's first byte to its end, a sign-in form's body and the
# seconds it may take (slow clients hold a worker's memory), idle seconds of a kept-alive connection
MAX_HEAD_BYTES: int = Settings.max_head_bytes
MAX_URL_BYTES: int = Settings.max_url_bytes
MAX_HEADERS: int = Settings.max_header_fields
HEAD_SECONDS: int = Settings.head_timeout
MAX_FORM_BYTES: int = Settings.max_form_bytes
FORM_SECONDS: int = Settings.form_timeout
KEEP_ALIVE_SECONDS: int = Settings.keep_alive_timeout


@dataclass(frozen=True)
class Bounds:
    """The limits in force: the settings' (`--max-head-bytes` ...), else the defaults above."""

    head_bytes: int = MAX_HEAD_BYTES
    url_bytes: int = MAX_URL_BYTES
    headers: int = MAX_HEADERS
    head_seconds: float = HEAD_SECONDS
    form_bytes: int = MAX_FORM_BYTES
    form_seconds: float = FORM_SECONDS
    keep_alive_seconds: int = KEEP_ALIVE_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> Bounds:
        return cls(settings.max_head_bytes, settings.max_url_bytes, settings.max_header_fields,
                   settings.head_timeout, settings.max_form_bytes, settings.form_timeout, settings.keep_alive_timeout)

    def reason(self, status: int) -> str:
        return {
            408: "the request head took too long to arrive",
            414: f"the URL is longer than {self.url_bytes} bytes",
            431: f"the request head is larger than {self.head_bytes} bytes or has more than {self.headers} fields",
        }.get(status, "bad request")


_bounds = Bounds()


def configure(bounds: Bounds) -> None:
    """Set the limits of this process: the app does it from its settings, before any connection."""
    global _bounds
    _bounds = bounds


def current() -> Bounds:
    return _bounds
