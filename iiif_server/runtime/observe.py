"""What operators see of each request: the access log, the audit log, metrics, errors.

One ASGI middleware times every request and writes one access-log line and the metrics when the
last body byte has gone. The handlers report what only they know (the image identifier, whether a
tile was sent as stored, decoded or from the cache, the clearance and token id behind a restricted
answer) into the request's `Record`, reached through a context variable: no second path through
the request, and nothing at all for them to do on public material beyond the outcome.

The audit log gets one line per granted access to restricted material: who (token id and holder,
else the network), what (identifier), when. Tokens themselves are never written anywhere.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import sys
import time
import traceback
import weakref
from collections.abc import Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iiif_server.runtime import metrics
from iiif_server.runtime.addresses import IPNetwork, client_address, in_any, parse_address

if TYPE_CHECKING:
    from iiif_server.auth.policy import Access, Verdict

log = logging.getLogger("iiif_server")


class Record:
    """What the handlers tell the middleware about one request."""

    __slots__ = ("kind", "identifier", "outcome", "clearance", "token_id", "holder", "tier", "granted", "network",
                 "partner")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.identifier: str | None = None
        self.outcome: str | None = None  # passthrough, decoded, cache_hit (images)
        self.clearance: str | None = None  # set where the policy was asked (restricted material, documents)
        self.token_id: str | None = None
        self.holder: str | None = None
        self.tier: str | None = None  # the material's tier, when restricted
        self.granted: str | None = None  # allow / degrade: a granted restricted access (audited)
        self.network: str | None = None  # the network tier the request came from
        self.partner: str | None = None  # the institution that network's rule names


_current: ContextVar[Record | None] = ContextVar("iiif_request_record", default=None)


def current() -> Record | None:
    return _current.get()


def note_identifier(identifier: str, kind: str | None = None) -> None:
    rec = _current.get()
    if rec is not None:
        rec.identifier = identifier
        if kind is not None:
            rec.kind = kind


def note_outcome(outcome: str) -> None:
    rec = _current.get()
    if rec is not None:
        rec.outcome = outcome


def note_access(access: Access | None, clearance: str | None, tier: str | None = None,
                verdict: Verdict | None = None) -> None:
    """The policy's view of this request; `verdict` for a decision on restricted material of `tier`."""
    rec = _current.get()
    if verdict is not None:
        metrics.ACCESS.labels(verdict.value).inc()
    if rec is None:
        return
    rec.clearance = clearance
    rec.tier = tier
    if access is not None:
        rec.network = access.network_tier
        rec.partner = access.partner
        if access.grant is not None:
            rec.token_id, rec.holder = access.grant.id, access.grant.holder
    if verdict is not None and verdict.value in ("allow", "degrade"):
        rec.granted = verdict.value


def note_private_document() -> None:
    """A document whose body depends on who asks is being served: audited when the request brought a
    credential (token or network), since it then sees what others do not."""
    rec = _current.get()
    if rec is not None and (rec.token_id is not None or rec.network is not None):
        rec.granted = "allow"


class JsonLines:
    """Appends one JSON object per line to a file (O_APPEND: lines of several workers never mix),
    standard error ('-'), or nowhere ('off').

    `buffered`: lines are gathered and written together when BUFFER_BYTES are waiting or FLUSH_SECONDS
    after the first one (and at exit): one write per batch instead of one per request. The audit log is
    written line by line."""

    def __init__(self, target: str, buffered: bool = False) -> None:
        self.target = target
        self.fd: int | None = None
        self.buffered = buffered
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._later = metrics.Later(self.flush, FLUSH_SECONDS)
        if target == "off":
            return
        if target == "-":
            self.fd = sys.stderr.fileno()
        else:
            os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
            self.fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def write(self, entry: dict[str, Any]) -> None:
        if self.fd is not None:
            self.write_line(_encode(entry))

    def write_line(self, line: str) -> None:
        """One JSON object, already encoded."""
        if self.fd is None:
            return
        if not self.buffered:
            self._write(line + "\n")
            return
        self._pending.append(line)
        self._pending_bytes += len(line) + 1
        if self._pending_bytes >= BUFFER_BYTES:
            self.flush()
        else:
            self._later.soon()

    def flush(self) -> None:
        self._later.cancel()
        if self._pending:
            text = "\n".join(self._pending) + "\n"
            self._pending, self._pending_bytes = [], 0
            self._write(text)

    def _write(self, text: str) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, text.encode())
        except OSError as exc:  # a full disk must not fail the request
            log.warning("cannot write %s: %s", self.target, exc)

    def __del__(self) -> None:
        try:
            self.flush()
        except Exception:  # noqa: BLE001,S110 - at interpreter exit the os module may be gone
            pass

    def close(self) -> None:
        self.flush()
        if self.fd is not None and self.target != "-":
            os.close(self.fd)
        self.fd = None


BUFFER_BYTES = 64 * 1024  # one append of a batch is one write: lines of several workers still never mix
FLUSH_SECONDS = 0.5
_shared: weakref.WeakValueDictionary[str, JsonLines] = weakref.WeakValueDictionary()


def buffered_log(target: str) -> JsonLines:
    """This process's buffered log writing to `target`: apps of one process share it, so that their lines
    keep their order."""
    found = _shared.get(target)
    if found is None or found.fd is None:
        found = JsonLines(target, buffered=True)
        if found.fd is not None:
            _shared[target] = found
    return found


def flush_logs() -> None:
    """Write out the waiting lines of this process's buffered logs (at exit; tests reading a log)."""
    for lines in list(_shared.values()):
        lines.flush()


atexit.register(flush_logs)


def access_line(time_text: str, client: str | None, method: str, path: str, kind: str, identifier: str | None,
                status: int, sent: int, ms: float, outcome: str | None, clearance: str | None,
                token_id: str | None) -> str:
    """An access-log entry as one JSON object, written out field by field: json's encoder took a third
    of what logging a cached tile cost. The same keys, order and text as `_encode` of the dict."""
    return (f'{{"time":"{time_text}","client":{_text(client)},"method":{_text(method)},"path":{_text(path)},'
            f'"kind":"{kind}","identifier":{_text(identifier)},"status":{status},"bytes":{sent},'
            f'"ms":{ms!r},"outcome":{_text(outcome)},"clearance":{_text(clearance)},'
            f'"token_id":{_text(token_id)}}}')


def client_of(scope: Scope, proxies: Sequence[IPNetwork]) -> str | None:
    """The client's address as the logs name it: the peer, or the client a trusted proxy names."""
    peer = scope.get("client")
    if not peer:
        return None
    if not proxies:
        return str(peer[0])
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        if name in (b"forwarded", b"x-forwarded-for"):
            key = name.decode()
            headers[key] = (headers[key] + ", " if key in headers else "") + value.decode("latin-1")
    addr = client_address(str(peer[0]), headers, proxies)
    return str(addr) if addr is not None else None


def _text(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def route_kind(path: str) -> str:
    """A small, fixed set of labels (metrics must not get a label value per URL)."""
    if path.startswith("/iiif/"):
        if path.startswith(("/iiif/3/", "/iiif/2/")):
            return "image"  # the Image API handler names info and redirect itself
        if path.startswith("/iiif/presentation/"):
            return "manifest" if path.endswith("/manifest") else "collection"
        if path.startswith("/iiif/discovery/"):
            return "discovery"
        if path.startswith("/iiif/auth/"):
            return "auth"
        return "other"
    if path.startswith(("/collections/", "/view/")):
        return "page"
    if path.startswith("/sitemap") or path == "/robots.txt":
        return "sitemap"
    return {"/": "home", "/healthz": "health", "/metrics": "metrics"}.get(path, "other")


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode  # built once: dumps() builds one per call
_quote: Any = json.encoder.encode_basestring  # type: ignore[attr-defined]  # a JSON string, non-ASCII kept
_second: list[Any] = [None, ""]  # the last whole second and its text: formatting it is most of the cost


def iso_time(t: float) -> str:
    """UTC, milliseconds, `Z`: 2026-01-31T12:00:00.123Z."""
    whole = int(t)
    if _second[0] != whole:
        _second[0], _second[1] = whole, dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_second[1]}.{int((t - whole) * 1000):03d}Z"


class ObserveMiddleware:
    """Times, counts and logs every HTTP request; answers `/metrics` to the allowed networks.

    Sits outside the CORS middleware: an exception that escapes a handler has been answered with a
    500 there; it is logged here once, with its traceback, and not raised further (uvicorn would
    log it a second time).
    """

    def __init__(self, app: ASGIApp, access_log: JsonLines, audit_log: JsonLines, proxies: Sequence[IPNetwork],
                 metrics_networks: Sequence[IPNetwork]) -> None:
        self.app = app
        self.access_log = access_log
        self.audit_log = audit_log
        self.proxies = proxies
        self.metrics_networks = list(metrics_networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == "/metrics":
            await self.metrics(scope, receive, send)
            return
        started = time.perf_counter()
        rec = Record(route_kind(path))
        token = _current.set(rec)
        status = 0
        sent = 0

        async def observed_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        error: BaseException | None = None
        metrics.batch.in_flight += 1
        try:
            await self.app(scope, receive, observed_send)
        except Exception as exc:  # noqa: BLE001 - logged once here, answered 500 by the CORS middleware
            error = exc
            status = status or 500
            metrics.ERRORS.inc()
        finally:
            metrics.batch.in_flight -= 1
            _current.reset(token)
        seconds = time.perf_counter() - started
        metrics.record(rec.kind, status, seconds, sent, rec.outcome)
        self.write(scope, rec, status, sent, seconds, error)

    def write(self, scope: Scope, rec: Record, status: int, sent: int, seconds: float,
              error: BaseException | None) -> None:
        now = time.time()
        client = self.client(scope)
        identifier = rec.identifier or self.path_identifier(scope)
        time_text = iso_time(now)
        if error is None:
            self.access_log.write_line(access_line(time_text, client, scope["method"], scope["path"], rec.kind,
                                                   identifier, status, sent, round(seconds * 1000, 3), rec.outcome,
                                                   rec.clearance, rec.token_id))
        else:
            self.access_log.write({
                "time": time_text, "client": client, "method": scope["method"], "path": scope["path"],
                "kind": rec.kind, "identifier": identifier, "status": status, "bytes": sent,
                "ms": round(seconds * 1000, 3), "outcome": rec.outcome, "clearance": rec.clearance,
                "token_id": rec.token_id, "error": f"{type(error).__name__}: {error}"[:300],
            })
            log.error("unhandled error on %s %s", scope["method"], scope["path"], exc_info=error)
        if rec.granted is not None and (200 <= status < 400):
            self.audit_log.write({
                "time": time_text, "identifier": identifier, "kind": rec.kind, "tier": rec.tier,
                "access": rec.granted, "clearance": rec.clearance, "token_id": rec.token_id, "holder": rec.holder,
                "network": rec.network, "partner": rec.partner, "client": client, "status": status,
            })

    def client(self, scope: Scope) -> str | None:
        return client_of(scope, self.proxies)

    @staticmethod
    def path_identifier(scope: Scope) -> str | None:
        """Documents and probes: the identifier from the matched route's parameters."""
        params = scope.get("path_params")
        if not params:
            return None
        if "identifier" in params:
            return str(params["identifier"])
        parts = [str(params[k]) for k in ("collection", "document", "part", "n") if k in params]
        return "/".join(parts) or None

    async def metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Only to the metrics networks: judged on the client (through trusted proxies), and never for a request a
        proxy the server does not trust has forwarded (a scraper asks directly: it sends no forwarding header)."""
        peer = scope.get("client")
        addr = parse_address(str(peer[0])) if peer else None
        forwarded = any(name in (b"forwarded", b"x-forwarded-for") for name, _ in scope["headers"])
        if addr is not None and self.proxies and in_any(addr, self.proxies):
            addr = parse_address(self.client(scope) or "")
        elif forwarded:
            addr = None
        if addr is None or not in_any(addr, self.metrics_networks):
            response: Response = PlainTextResponse("not found\n", status_code=404)
        else:
            body, media = metrics.exposition()
            response = Response(body, headers={"Content-Type": media, "Cache-Control": "no-store"})
        await response(scope, receive, send)


class JsonFormatter(logging.Formatter):
    """Server log lines (errors, warnings) as JSON, the traceback in one field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": iso_time(record.created), "level": record.levelname.lower(),
                                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging() -> None:
    """The server's own log (not the access log) as JSON lines on standard error, once per process."""
    if any(getattr(h, "iiif", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.iiif = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
