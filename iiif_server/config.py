"""Settings: one typed place, filled from defaults < TOML file < environment < CLI.

Every setting has an environment variable `IIIF_SERVER_<NAME>` (upper case);
a TOML file (`--config` or `IIIF_SERVER_CONFIG`) may hold the same names in
lower case at its top level.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

ENV_PREFIX = "IIIF_SERVER_"
# the viewer page behind `/` loads Mirador from here unless --viewer-url says otherwise
DEFAULT_VIEWER_URL = "https://cdn.jsdelivr.net/npm/mirador@4.0.0/dist/mirador.min.js"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("iiif-server", appauthor=False))


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    images: Path | str | None = None  # a folder, or an s3://bucket/prefix URL (a str)
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    base_url: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    proxy_hops: int = 0
    max_width: int = 12000
    max_height: int = 12000
    max_area: int = 50_000_000
    threads: int = 0
    cache_mb: int = 256
    jpeg_quality: int = 85
    max_age: int = 86400
    demo: bool = True
    database: str | None = None
    language: str = "en"
    attribution: str | None = None
    provider: str | None = None
    provider_homepage: str | None = None
    homepage: str | None = None
    tiers: tuple[str, ...] = ("public", "reading-room", "staff")
    networks: tuple[str, ...] = ()
    path_tiers: tuple[str, ...] = ()
    default_tier: str = "auto"
    degraded: tuple[str, ...] = ()
    hidden_tiers: tuple[str, ...] = ("staff",)
    secret_key: str | None = None
    secret_key_file: Path | None = None
    auth_heading: str | None = None
    auth_note: str | None = None
    access_log: str | None = None
    audit_log: str | None = None
    metrics_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    viewer_origins: tuple[str, ...] = ()
    viewer_url: str = DEFAULT_VIEWER_URL
    allowed_hosts: tuple[str, ...] = ()
    max_head_bytes: int = 32 * 1024
    max_url_bytes: int = 8 * 1024
    max_header_fields: int = 100
    head_timeout: int = 10
    max_form_bytes: int = 16 * 1024
    form_timeout: int = 10
    keep_alive_timeout: int = 5
    s3_endpoint: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = field(default=None, repr=False)
    s3_ttl: int = 10
    s3_cache_mb: int = 128
    untiled_memory_mb: int = 512

    @property
    def image_url(self) -> str | None:
        """The s3:// URL when the images are in object storage."""
        return self.images if isinstance(self.images, str) and self.images.startswith("s3://") else None

    @property
    def image_root(self) -> Path:
        """The local image folder; object storage has none (ingest stages locally, then uploads)."""
        if self.image_url is not None:
            raise ValueError(f"the images are in object storage ({self.image_url}), not in a folder")
        return Path(self.images) if self.images is not None else self.data_dir / "images"

    @property
    def image_location(self) -> str:
        return self.image_url or str(self.image_root)

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.data_dir / 'catalogue.db'}"

    @property
    def thread_count(self) -> int:
        return self.threads or max(2, 2 * (os.cpu_count() or 1))

    @property
    def access_log_target(self) -> str:
        """A path, '-' (standard error) or 'off'."""
        return self.access_log or str(self.data_dir / "logs" / "access.jsonl")

    @property
    def audit_log_target(self) -> str:
        return self.audit_log or str(self.data_dir / "logs" / "audit.jsonl")

    def metrics_network_list(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(cidr, strict=False) for cidr in self.metrics_networks]

    def __post_init__(self) -> None:
        check_proxies(self.trusted_proxies, self.proxy_hops, self.networks)

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables (for worker processes)."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = "1" if value else "0"
            env[ENV_PREFIX + f.name.upper()] = str(value)
        return env


HELP = {
    "data_dir": "folder for everything the server writes (default: the user's data directory)",
    "images": "image root: a folder, or s3://BUCKET/PREFIX in S3-compatible storage (default: DATA_DIR/images)",
    "host": "address to listen on",
    "port": "port to listen on",
    "workers": "server processes",
    "base_url": "public base URL used in info.json ids, e.g. https://images.example.org",
    "trusted_proxies": "comma-separated addresses of the reverse proxies whose X-Forwarded-For / Forwarded, "
    "X-Forwarded-Proto (and X-Forwarded-Host, for names in --allowed-hosts only) are believed; ranges only with "
    "--proxy-hops",
    "proxy_hops": "how many proxies stand in front when their addresses vary (a range in --trusted-proxies): the "
    "client is that many addresses from the right of X-Forwarded-For; 0: list each proxy's own address",
    "max_width": "largest output width (info.json maxWidth)",
    "max_height": "largest output height (info.json maxHeight)",
    "max_area": "largest output area in pixels (info.json maxArea)",
    "threads": "image worker threads per process (0: twice the cores)",
    "cache_mb": "in-memory cache of encoded responses per process, in MB",
    "jpeg_quality": "JPEG quality of generated images (1-100)",
    "max_age": "Cache-Control max-age of public images and info.json, in seconds (how long shared caches "
    "may keep a public copy after a tier change)",
    "demo": "on first start with an empty default image root, ingest a generated demo collection (1/0)",
    "database": "catalogue database URL, e.g. postgresql://user@host/db (default: SQLite in DATA_DIR)",
    "language": "language of labels and texts in Presentation documents",
    "attribution": "required statement (attribution) shown by viewers for every manifest",
    "provider": "name of the institution publishing the manifests",
    "provider_homepage": "homepage URL of that institution",
    "homepage": "website URL template for a document, with {collection} and {document}",
    "tiers": "access tiers, lowest first, comma-separated",
    "networks": "network rules TIER=CIDR, comma-separated (IPv4 and IPv6), e.g. reading-room=192.0.2.0/24",
    "path_tiers": "tiers of images outside the catalogue by path prefix, PREFIX=TIER, comma-separated",
    "default_tier": "tier of images outside the catalogue that no path rule names: a tier, or auto (the lowest "
                    "while the catalogue restricts nothing, else the highest)",
    "degraded": "public size limit per tier, TIER=PIXELS (e.g. reading-room=200): smaller requests are served",
    "hidden_tiers": "tiers whose manifests and collections are absent for those without clearance",
    "secret_key": "key that signs access tokens (all replicas need the same; default: DATA_DIR/secret.key)",
    "secret_key_file": "file holding the signing key",
    "auth_heading": "heading viewers show on restricted material; 'en=...|nl=...' for several languages",
    "auth_note": "note viewers show on restricted material, e.g. where the reading room is",
    "access_log": "access log, one JSON line per request: a file, '-' for standard error, or 'off' "
    "(default: DATA_DIR/logs/access.jsonl)",
    "audit_log": "audit log, one JSON line per granted access to restricted material: a file, '-' for standard "
    "error, or 'off' (default: DATA_DIR/logs/audit.jsonl)",
    "metrics_networks": "comma-separated CIDRs of the direct peers that may read /metrics",
    "viewer_origins": "origins of viewer pages that receive access tokens, comma-separated, e.g. "
    "https://viewer.example.org (the server's own origin always does)",
    "viewer_url": "URL of the Mirador script the viewer page behind / loads (default: Mirador 4 from a public CDN; "
    "point it at your own copy to serve no third-party script)",
    "allowed_hosts": "host names (or host:port) the server answers to, comma-separated; other Host headers get "
    "400 (default: any when --base-url is set, since the Host is then used nowhere; else localhost and the "
    "address connected to)",
    "max_head_bytes": "largest request head (request line and headers together) in bytes; larger: 431",
    "max_url_bytes": "longest URL in bytes; longer: 414",
    "max_header_fields": "most header fields in one request; more: 431",
    "head_timeout": "seconds a client may take from the first byte of a request to the end of its headers; then 408",
    "max_form_bytes": "largest sign-in form body (reading-room and staff sign-in) in bytes; larger: 413",
    "form_timeout": "seconds a sign-in form body may take to arrive; then 408 (413 on the staff console)",
    "keep_alive_timeout": "seconds an idle kept-alive connection stays open",
    "s3_endpoint": "S3 endpoint URL for s3:// images, e.g. http://127.0.0.1:8333 (default: AWS, or AWS_ENDPOINT_URL)",
    "s3_region": "S3 region (default: AWS_REGION, or us-east-1)",
    "s3_access_key_id": "S3 access key id (default: AWS_ACCESS_KEY_ID or the AWS credential chain)",
    "s3_secret_access_key": "S3 secret access key, never logged (default: AWS_SECRET_ACCESS_KEY)",
    "s3_ttl": "seconds an object's size and ETag are trusted before it is asked again: a replaced object "
    "is served within this time",
    "s3_cache_mb": "in-memory cache of S3 object blocks (TIFF directories, tiles) per process, in MB",
    "untiled_memory_mb": "memory per process for decoded levels of untiled images (JPEG, PNG, stripped TIFF), in "
    "MB: a level that does not fit is refused with advice to ingest",
}


def check_proxies(proxies: tuple[str, ...], hops: int, networks: tuple[str, ...]) -> None:
    """Refuse a proxy setting that would let a client write its own address (ValueError saying why)."""
    if hops < 0:
        raise ValueError("proxy_hops must be 0 or more")
    trusted = [ipaddress.ip_network(cidr, strict=False) for cidr in proxies]
    if hops == 0:
        for net in trusted:
            if net.num_addresses > 1:
                raise ValueError(
                    f"trusted proxy {net} is a range: any client inside it could write X-Forwarded-For and pass "
                    "for any address (a reading room, the staff network). List each proxy's own address, or, "
                    "when their addresses vary, set --proxy-hops to the number of proxies in front")
    for rule in networks:
        tier, _, cidr = rule.partition("=")
        try:
            clients = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            continue  # said where the rules are parsed
        for net in trusted:
            if clients.version == net.version and clients.overlaps(net):
                raise ValueError(
                    f"network rule {rule.strip()} overlaps trusted proxy {net}: a client there could pass for any "
                    "address. Trust the proxies' own addresses only, outside every client network")


def check_origin(origin: str) -> str:
    """`scheme://host[:port]`, lower case, no path: what browsers send as an origin."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _convert(name: str, raw: Any) -> Any:
    f = {f.name: f for f in dataclasses.fields(Settings)}[name]
    kind = str(f.type)
    if raw is None:
        return None
    if name == "images" and str(raw).startswith("s3://"):
        return str(raw)
    if "Path" in kind:
        return Path(os.path.expanduser(str(raw)))
    if "tuple" in kind:
        items = raw if isinstance(raw, list) else str(raw).split(",")
        out = tuple(str(i).strip() for i in items if str(i).strip())
        if name in ("trusted_proxies", "metrics_networks"):
            for cidr in out:
                ipaddress.ip_network(cidr, strict=False)  # fail early on a typo
        if name == "viewer_origins":
            out = tuple(check_origin(o) for o in out)
        return out
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        return str(raw).strip().lower() in ("1", "true", "yes", "on")
    if kind == "int":
        return int(raw)
    return str(raw)


def load(cli: dict[str, Any] | None = None, config_file: str | os.PathLike[str] | None = None) -> Settings:
    """Merge defaults, the TOML file, the environment and CLI values (None = unset)."""
    names = [f.name for f in dataclasses.fields(Settings)]
    values: dict[str, Any] = {}
    config_file = config_file or os.environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        with open(config_file, "rb") as fh:
            data = tomllib.load(fh)
        unknown = set(data) - set(names)
        if unknown:
            raise ValueError(f"unknown settings in {config_file}: {', '.join(sorted(unknown))}")
        values.update({k: _convert(k, v) for k, v in data.items()})
    for name in names:
        raw = os.environ.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = _convert(name, raw)
    for name, raw in (cli or {}).items():
        if raw is not None:
            values[name] = _convert(name, raw)
    settings = Settings(**values)
    if not 1 <= settings.jpeg_quality <= 100:
        raise ValueError("jpeg_quality must be between 1 and 100")
    for name in ("max_head_bytes", "max_url_bytes", "max_header_fields", "head_timeout", "max_form_bytes",
                 "form_timeout", "keep_alive_timeout"):
        if getattr(settings, name) < 1:
            raise ValueError(f"{name} must be at least 1")
    return settings
