"""The ASGI application: routes and middleware around the Image API service."""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyvips
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iiif_server import config
from iiif_server.auth.networks import NetworkRules
from iiif_server.auth.policy import Policy
from iiif_server.auth.services import AuthServices, Texts, language_map
from iiif_server.auth.snapshot import Snapshot
from iiif_server.auth.tiers import Tiers
from iiif_server.auth.tokens import TokenStore
from iiif_server.console.describe import DescribeForm
from iiif_server.console.oidc import OpenIDSignIn
from iiif_server.console.routes import Console
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.catalogue import open_catalogue as catalogue_at
from iiif_server.errors import IIIFServerError, RequestError
from iiif_server.ingest import demo
from iiif_server.ingest.withdraw import ObjectCopies
from iiif_server.manifests import presentation
from iiif_server.manifests.routes import PresentationService
from iiif_server.manifests.stream import DiscoveryService
from iiif_server.runtime import bounds, metrics, observe
from iiif_server.runtime.base import Runtime
from iiif_server.runtime.hosts import HostCheck
from iiif_server.runtime.ratelimit import RateLimit
from iiif_server.search.pages import AcrossService
from iiif_server.search.routes import SearchService
from iiif_server.search.routes import services as search_services
from iiif_server.search.store import TextStore
from iiif_server.tiles import memory, placeholder, untiled
from iiif_server.tiles.answers import error_response
from iiif_server.tiles.files import FileSystemSource
from iiif_server.tiles.objectstore import ObjectStoreSource
from iiif_server.tiles.service import ImageService
from iiif_server.tiles.sources import SourceStore
from iiif_server.web.pages import PublicPages
from iiif_server.web.persons import PersonPages
from iiif_server.web.sitemap import Sitemaps
from iiif_server.web.transports import TransportPages
from iiif_server.web.viewers import ViewerPages

log = logging.getLogger("iiif_server")
SEARCH_SLOTS = 2  # searches running at once per process: a client chooses their cost, tiles must not wait for it
CLIENTS_REMEMBERED = 4096  # (peer, forwarding headers) -> the client the access log names, per process
SEARCH_WAIT = 5.0  # seconds a search waits for a slot before it is answered 503
CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"Link, ETag, Content-Type"),
]
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Accept, If-None-Match",
    "Access-Control-Max-Age": "86400",
}


class CORSMiddleware:
    """`Access-Control-Allow-Origin: *` on every response, errors included, but never under /staff:
    the console is for its own pages only, and no other site may read what it answers.

    Starlette answers an unhandled exception from its outermost middleware,
    outside this one; so this one sends that 500 itself (with the header) and
    re-raises for the logs.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/staff" or scope["path"].startswith("/staff/"):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await Response(status_code=204, headers=PREFLIGHT_HEADERS)(scope, receive, send)
            return

        started = False

        async def send_with_cors(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = list(message.get("headers", [])) + CORS_HEADERS
            await send(message)

        try:
            await self.app(scope, receive, send_with_cors)
        except Exception:
            if not started:
                response = PlainTextResponse("internal server error\n", status_code=500)
                await response(scope, receive, send_with_cors)
            raise


class ImageHits:
    """Cached and stored public images (`ImageService.find_hit`), answered ahead of every other layer and
    of Starlette's routing and request objects, doing here what those layers do for every other answer:
    the host check, the CORS headers, the access-log line and the metrics. Everything else, and anything
    that goes wrong here, goes on to the application."""

    def __init__(self, app: ASGIApp, service: ImageService, access_log: observe.JsonLines) -> None:
        self.app = app
        self.service = service
        self.access_log = access_log
        self.proxies = service.runtime.proxies
        self.clients: dict[tuple[Any, ...], str | None] = {}

    def client(self, scope: Scope) -> str | None:
        """`observe.client_of`, remembered per peer and forwarding headers: behind a proxy, parsing the
        addresses cost a tenth of a tile's CPU, and a viewer asks for many tiles in a row."""
        if not self.proxies:
            return observe.client_of(scope, self.proxies)
        peer = scope.get("client")
        key = (peer[0] if peer else None, *(v for n, v in scope["headers"] if n in (b"forwarded", b"x-forwarded-for")))
        if key in self.clients:
            return self.clients[key]
        if len(self.clients) >= CLIENTS_REMEMBERED:
            self.clients.clear()
        found = self.clients[key] = observe.client_of(scope, self.proxies)
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            started = time.perf_counter()
            try:
                hit = await self.service.find_hit(scope)
            except Exception:  # noqa: BLE001 - the full path answers, and logs what goes wrong there
                log.exception("the hit path failed on %s", scope.get("path"))
                hit = None
            if hit is not None:  # its host was checked where it was found
                body = hit.ready.body
                await send({"type": "http.response.start", "status": 200,
                            "headers": self.service.hit_headers(hit) + CORS_HEADERS})
                await send({"type": "http.response.body", "body": body})
                seconds = time.perf_counter() - started
                metrics.record("image", 200, seconds, len(body), hit.outcome)
                self.access_log.write_line(observe.access_line(
                    observe.iso_time(time.time()), self.client(scope), "GET", scope["path"],
                    "image", hit.identifier, 200, len(body), round(seconds * 1000, 3), hit.outcome, None, None))
                return
        await self.app(scope, receive, send)


def open_catalogue(settings: config.Settings) -> Catalogue:
    return catalogue_at(settings.database_url, settings.tiers)


def image_source(settings: config.Settings) -> SourceStore:
    """The images' source, chosen by `--images`: a folder, or s3://bucket/prefix."""
    url = settings.image_url
    if url is None:
        return FileSystemSource(settings.image_root)
    from iiif_server.storage import open_store

    return ObjectStoreSource(open_store(url, settings), url, settings.s3_ttl, settings.s3_cache_mb << 20)


def prepare(settings: config.Settings) -> Path | None:
    """Once per start, before workers: migrate the catalogue; on a first start, install the demo."""
    catalogue = open_catalogue(settings)
    catalogue.upgrade()
    if settings.image_url is not None:
        catalogue.engine.dispose()
        return None  # object storage: nothing to create, no demo
    root = settings.image_root
    root.mkdir(parents=True, exist_ok=True)
    default_root = settings.images is None
    if settings.demo and default_root and not catalogue.collections() and not FileSystemSource(root).has_images():
        demo_people(catalogue, demo.install(catalogue, root, settings.data_dir), settings.data_dir)
    catalogue.engine.dispose()
    return root


def demo_people(catalogue: Catalogue, people: demo.DemoPeople, data_dir: Path) -> None:
    """The demo's transport list gets its name index and its people (some lines and portraits linked by the list
    of people, the others proposed by `persons suggest` for review in the console)."""
    import tempfile

    from iiif_server.ingest.persons import import_persons
    from iiif_server.search.importer import import_text
    from iiif_server.search.suggest import Suggester

    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".demo-") as tmp:
        names, listed = Path(tmp) / "names.csv", Path(tmp) / "people.csv"
        names.write_text(people.names_csv, encoding="utf-8")
        listed.write_text(people.people_csv, encoding="utf-8")
        import_text(TextStore(catalogue), names, "demo-lists")
        import_persons(catalogue, listed)
    Suggester(catalogue).run(["demo-portraits"], ["demo-lists"])


def institution(settings: config.Settings, policy: Policy | None = None) -> presentation.Institution:
    """Who publishes, and where each restricted tier can be consulted: `--consult`'s sentence, and the
    institutions the network rules of the tiers cleared for it name (hidden tiers' networks are not shown)."""
    tiers = Tiers(settings.tiers)
    consult = {}
    for part in (settings.consult or "").split("|"):
        tier, sep, sentence = part.partition("=")
        if not part.strip():
            continue
        if not sep or tiers.rank(tier.strip()) >= len(tiers.names) or not sentence.strip():
            raise ValueError(f"consult: {part.strip()!r} is not TIER=SENTENCE with a known tier")
        consult[tier.strip()] = sentence.strip().rstrip(".")
    partners = {}
    if policy is not None:
        for tier in tiers.names[1:]:
            names = [name for rule in tiers.names if tiers.allows(rule, tier) and rule not in policy.hidden
                     for name in policy.networks.partners(rule)]
            if names:
                partners[tier] = tuple(dict.fromkeys(names))
    return presentation.Institution(
        language=settings.language,
        attribution=settings.attribution,
        provider=settings.provider,
        provider_homepage=settings.provider_homepage,
        homepage=settings.homepage,
        record_url=settings.record_url,
        consult=consult,
        partners=partners,
    )


def access_control(runtime: Runtime, catalogue: Catalogue, source: SourceStore) -> AuthServices:
    """The policy (tiers, networks, tokens) and the IIIF auth services, from the settings."""
    settings = runtime.settings
    tiers = Tiers(settings.tiers)
    path_rules = []
    for rule in settings.path_tiers:
        prefix, _, tier = rule.rpartition("=")
        path_rules.append((prefix.strip().strip("/"), tiers.check(tier.strip())))
    degraded = {}
    for rule in settings.degraded:
        tier, _, pixels = rule.partition("=")
        degraded[tiers.check(tier.strip())] = int(pixels)
    default_tier = None if settings.default_tier == "auto" else tiers.check(settings.default_tier)
    snapshot = Snapshot(catalogue)
    policy = Policy(tiers, NetworkRules.parse(settings.networks, tiers.names), runtime.proxies,
                    TokenStore(catalogue, runtime.secret, snapshot), snapshot, path_rules, degraded,
                    settings.hidden_tiers, default_tier)
    texts = Texts(language=settings.language)
    if settings.auth_heading:
        texts = replace(texts, heading=language_map(settings.auth_heading, settings.language))
    if settings.auth_note:
        texts = replace(texts, note=language_map(settings.auth_note, settings.language))

    def exists(identifier: str) -> bool:
        try:
            source.find(identifier)
        except RequestError:
            return False
        return True

    return AuthServices(policy, texts, runtime.base_url, runtime.run_io, settings.viewer_origins, exists)


def console(runtime: Runtime, catalogue: Catalogue, auth: AuthServices, audit_log: observe.JsonLines,
            source: SourceStore) -> Console:
    """The staff console under /staff/ (iiif_server/console)."""
    settings = runtime.settings
    copies = ObjectCopies(source.store) if isinstance(source, ObjectStoreSource) else settings.image_root
    openid = None
    if settings.oidc_issuer and settings.oidc_client_id:
        openid = OpenIDSignIn(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_secret(),
                              settings.oidc_scopes, settings.oidc_roles_claim, settings.oidc_role_map,
                              settings.oidc_label, runtime.secret)
    # what an ingest started from the console runs with: these settings, less the secret it has no use for
    env = {**os.environ, **settings.to_env()}
    env.pop(config.env_name("oidc_client_secret"), None)
    return Console(catalogue, auth.policy, runtime.secret, audit_log, runtime.base_url, runtime.run_io, copies,
                   runtime.proxies, reports=settings.data_dir / "reports", openid=openid,
                   token_sign_in=settings.token_sign_in, masters_root=settings.masters_root, ingest_env=env,
                   ingest_workers=settings.ingest_workers)


def persons_routes(runtime: Runtime, catalogue: Catalogue, auth: AuthServices, documents: PresentationService,
                   search_across: AcrossService, searching: Any, staff: Console) -> list[Route]:
    """The people: their pages and search, the transports, the names on the lists' canvases (in manifests), the
    people in the site search, and the viewer pages that open a content state."""
    from iiif_server.console.persons import PersonReview
    from iiif_server.db.people import People
    from iiif_server.search.persons import Filters, PersonSearch
    from iiif_server.search.suggest import THRESHOLD

    settings = runtime.settings
    people, finder = People(catalogue), PersonSearch(catalogue)
    inst = institution(settings)

    def page_names(collection: str, document: str | None) -> dict[tuple[str, str], list[Any]]:
        return {key: [(n.person_id, n.link_id, presentation.name_label(n.surname, n.given_names), n.box)
                      for n in names] for key, names in people.names(collection, document).items()}

    documents.page_names = page_names
    pages = PersonPages(catalogue, auth.policy, runtime.base_url, runtime.run_io, searching, inst, people, finder)
    search_across.people_for = pages.first_found
    transports = TransportPages(catalogue, auth.policy, runtime.base_url, runtime.run_io, inst, people)
    viewers = ViewerPages(settings.viewer_url, settings.uv_url)
    review = PersonReview(staff, people, lambda q: finder.search(q, Filters(hidden=True), "", 50)[0], THRESHOLD)
    return [*pages.routes(), *transports.routes(), *viewers.routes(), *review.routes()]


def setup_process(settings: config.Settings) -> None:
    """What is one per process, not per app: request bounds the protocol reads, libvips' cache (ours decide
    what stays), malloc's handling of large blocks, and the budget of decoded untiled levels."""
    bounds.configure(bounds.Bounds.from_settings(settings))
    observe.setup_logging()
    pyvips.cache_set_max(0)  # libvips' cache would pin files
    memory.map_large_blocks()  # a render's large buffers go back to the system when freed
    untiled.decodes.budget = settings.untiled_memory_mb << 20


def create_app(settings: config.Settings | None = None, migrate: bool = True) -> Starlette:
    """The application; `migrate=False` where `prepare` already ran (uvicorn workers)."""
    settings = settings or config.load()
    setup_process(settings)
    runtime = Runtime(settings)
    source = image_source(settings)
    catalogue = open_catalogue(settings)
    if migrate:
        catalogue.upgrade()
    metrics.time_queries(catalogue.engine)
    auth = access_control(runtime, catalogue, source)
    service = ImageService(runtime, source, auth)
    audit_log = observe.JsonLines(settings.audit_log_target)
    staff = console(runtime, catalogue, auth, audit_log, source)
    publisher = institution(settings, auth.policy)
    documents = PresentationService(catalogue, publisher, runtime.base_url, runtime.run_io, auth)
    stream = DiscoveryService(catalogue, runtime.base_url, runtime.run_io,
                              RateLimit(settings.discovery_rate) if settings.discovery_rate else None,
                              lambda request: observe.client_of(request.scope, runtime.proxies))
    text = TextStore(catalogue)
    documents.document_services = lambda base, c, d, pk: search_services(base, c, d) if text.has_text(pk) else None
    searching = runtime.limited(SEARCH_SLOTS, SEARCH_WAIT)  # one bound for every search route of this process
    search = SearchService(text, auth.policy, runtime.base_url, searching)
    search_across = AcrossService(text, auth.policy, runtime.base_url, searching)
    people = persons_routes(runtime, catalogue, auth, documents, search_across, searching, staff)

    async def image_api_3(request: Request) -> Response:
        return await service.handle(request, 3)

    async def image_api_2(request: Request) -> Response:
        return await service.handle(request, 2)

    public = PublicPages(catalogue, auth.policy, publisher, runtime.base_url, runtime.run_io, source,
                         settings.viewer_url)
    crawlers = Sitemaps(catalogue, auth.policy, runtime.base_url, runtime.run_io)

    async def healthz(request: Request) -> Response:
        """503 when any part a request needs is missing: encoders, image root, catalogue."""
        problem = None
        if "jpg" not in service.formats:
            problem = "libvips cannot encode JPEG: " + service.broken_formats.get("jpg", "no JPEG saver")
        elif not await runtime.run_io(source.readable):
            problem = "image root unreadable"
        else:
            try:
                await runtime.run_io(catalogue.version)
            except Exception as exc:  # noqa: BLE001 - any driver error means the same to a health check
                problem = f"catalogue unreachable: {type(exc).__name__}"
        if problem:
            return PlainTextResponse(problem + "\n", status_code=503)
        return PlainTextResponse("ok\n")

    routes = [
        *public.routes(),
        *crawlers.routes(),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route(placeholder.PATH, placeholder.serve, methods=["GET", "HEAD"]),
        Route("/iiif/3/{rest:path}", image_api_3, methods=["GET", "HEAD"]),
        Route("/iiif/2/{rest:path}", image_api_2, methods=["GET", "HEAD"]),
        *documents.routes(),
        *stream.routes(),
        *search.routes(),
        *search_across.routes(),
        *auth.routes(),
        *staff.routes(),
        *people,
        *DescribeForm(staff).routes(),
    ]
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        # a worker process ends without running atexit: write out what waits for its timer
        observe.flush_logs()
        metrics.batch.flush()

    async def refused(request: Request, exc: Exception) -> Response:
        """Every error of the server's family that a route lets through: its status and a short reason."""
        assert isinstance(exc, IIIFServerError)
        if exc.status == 503:  # load shed on purpose (Retry-After): worth a line, not a traceback
            log.warning("503 on %s: %s", request.url.path, exc.message)
        elif exc.status >= 500:
            log.error("%s on %s: %s", exc.status, request.url.path, exc.message, exc_info=exc)
        return error_response(exc)

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={IIIFServerError: refused})
    app.add_middleware(CORSMiddleware)
    app.add_middleware(HostCheck, hosts=runtime.hosts, proxies=runtime.proxies)
    # outermost: times and logs every answer, the CORS middleware's 500s included
    access_log = observe.buffered_log(settings.access_log_target)
    app.add_middleware(observe.ObserveMiddleware, access_log=access_log, audit_log=audit_log,
                       proxies=runtime.proxies, metrics_networks=settings.metrics_network_list())
    # outside them all: public images from the cache or a stored tile, with what those layers add
    app.add_middleware(ImageHits, service=service, access_log=access_log)
    app.state.runtime = runtime
    app.state.service = service
    app.state.catalogue = catalogue
    app.state.console = staff
    return app


def app_from_env() -> Starlette:
    """Factory for uvicorn worker processes: settings come from the environment."""
    app = create_app(config.load(), migrate=False)
    # what start-up made (modules, the app) lives as long as the process: out of the collector's way, so that
    # a full collection walks only what requests make (it paused discovery pages for ~100 ms)
    gc.collect()
    gc.freeze()
    return app
