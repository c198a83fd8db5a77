"""Settings: each declared once, below, filled from defaults < TOML file < environment < command line.

A declaration (`setting(default, help, minimum=..., maximum=...)` on a field of `Settings`) gives the
setting's type, default, bounds and help; its command-line option (`--name-with-dashes`), environment
variable (`IIIF_SERVER_<NAME>`) and TOML key (the name, lower case, at the file's top level) follow
from its name. The command line (cli.py) and the settings reference of the documentation are made
from these declarations, and every source is checked against the same bounds.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

ENV_PREFIX = "IIIF_SERVER_"
# the viewer page behind `/` loads Mirador from here unless --viewer-url says otherwise
DEFAULT_VIEWER_URL = "https://cdn.jsdelivr.net/npm/mirador@4.0.0/dist/mirador.min.js"
# the /uv page loads Universal Viewer 4 (uv.css, umd/UV.js and the chunks beside it) from this folder
DEFAULT_UV_URL = "https://cdn.jsdelivr.net/npm/universalviewer@4.4.0/dist"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("iiif-server", appauthor=False))


def setting(default: Any = None, help: str = "", *, factory: Callable[[], Any] | None = None,
            minimum: int | None = None, maximum: int | None = None, secret: bool = False,
            path: str | None = None) -> Any:
    """One setting's declaration: its default, what it does, its bounds (integers), whether its value is a
    secret (never shown), and for a path whether it names a `folder` or a `file`."""
    meta = {"help": help, "minimum": minimum, "maximum": maximum, "secret": secret, "path": path}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta, repr=not secret)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = setting(
        help="folder for everything the server writes (default: the user's data directory)",
        factory=default_data_dir, path="folder")
    # a folder, or an s3://bucket/prefix URL (a str)
    images: Path | str | None = setting(
        None,
        'image root: a folder, or s3://BUCKET/PREFIX in S3-compatible storage (default: '
        'DATA_DIR/images)')
    host: str = setting("127.0.0.1", 'address to listen on')
    port: int = setting(8000, 'port to listen on')
    workers: int = setting(1, 'server processes', minimum=1, maximum=64)
    base_url: str | None = setting(None, 'public base URL used in info.json ids, e.g. https://images.example.org')
    trusted_proxies: tuple[str, ...] = setting(
        (),
        'comma-separated addresses of the reverse proxies whose X-Forwarded-For / Forwarded, '
        'X-Forwarded-Proto (and X-Forwarded-Host, for names in --allowed-hosts only) are believed; '
        'ranges only with --proxy-hops')
    proxy_hops: int = setting(
        0,
        'how many proxies stand in front when their addresses vary (a range in --trusted-proxies): '
        "the client is that many addresses from the right of X-Forwarded-For; 0: list each proxy's "
        'own address', minimum=0, maximum=16)
    max_width: int = setting(12000, 'largest output width (info.json maxWidth)', minimum=1)
    max_height: int = setting(12000, 'largest output height (info.json maxHeight)', minimum=1)
    max_area: int = setting(50_000_000, 'largest output area in pixels (info.json maxArea)', minimum=1)
    threads: int = setting(0, 'image worker threads per process (0: twice the cores)', minimum=0, maximum=256)
    cache_mb: int = setting(256, 'in-memory cache of encoded responses per process, in MB', minimum=0)
    jpeg_quality: int = setting(85, 'JPEG quality of generated images (1-100)', minimum=1, maximum=100)
    max_age: int = setting(
        86400,
        'Cache-Control max-age of public images and info.json, in seconds (how long shared caches may '
        'keep a public copy after a tier change)', minimum=0)
    demo: bool = setting(
        True,
        'on first start with an empty default image root, ingest a generated demo collection (1/0)')
    database: str | None = setting(
        None,
        'catalogue database URL, e.g. postgresql://user@host/db (default: SQLite in DATA_DIR)')
    language: str = setting("en", 'language of labels and texts in Presentation documents')
    attribution: str | None = setting(None, 'required statement (attribution) shown by viewers for every manifest')
    provider: str | None = setting(None, 'name of the institution publishing the manifests')
    provider_homepage: str | None = setting(None, 'homepage URL of that institution')
    homepage: str | None = setting(None, 'website URL template for a document, with {collection} and {document}')
    tiers: tuple[str, ...] = setting(("public", 'reading-room', "staff"), 'access tiers, lowest first, comma-separated')
    networks: tuple[str, ...] = setting(
        (),
        'network rules TIER=CIDR, comma-separated (IPv4 and IPv6), each optionally naming its institution in '
        'double quotes, e.g. reading-room=192.0.2.0/24 "Partner archive X"')
    path_tiers: tuple[str, ...] = setting(
        (),
        'tiers of images outside the catalogue by path prefix, PREFIX=TIER, comma-separated')
    default_tier: str = setting(
        "auto",
        'tier of images outside the catalogue that no path rule names: a tier, or auto (the lowest '
        'while the catalogue restricts nothing, else the highest)')
    degraded: tuple[str, ...] = setting(
        (),
        'public size limit per tier, TIER=PIXELS (e.g. reading-room=200): smaller requests are served')
    hidden_tiers: tuple[str, ...] = setting(
        ("staff",),
        'tiers whose manifests and collections are absent for those without clearance')
    secret_key: str | None = setting(
        None,
        'key that signs access tokens (all replicas need the same; default: DATA_DIR/secret.key)')
    secret_key_file: Path | None = setting(None, 'file holding the signing key', path="file")
    auth_heading: str | None = setting(
        None,
        "heading viewers show on restricted material; 'en=...|nl=...' for several languages")
    auth_note: str | None = setting(None, 'note viewers show on restricted material, e.g. where the reading room is')
    consult: str | None = setting(
        None,
        "where the collections of each restricted tier can be consulted, as the overview page says it: "
        "'reading-room=in the reading room of the archive or at a partner institution|staff=...' (default: in "
        "the reading room, or with an access token from the archive)")
    record_url: str | None = setting(
        None,
        "URL template of a collection's record in the archive's own catalogue, with {record} (the collection's "
        "record reference, else its id) or {collection}, e.g. https://archive.example.org/record/{record}")
    discovery_rate: int = setting(
        600,
        'requests per minute one client may make to the Change Discovery stream, in bursts of up to a tenth '
        'of it; more are answered 429 with Retry-After (counted per server process; 0: no limit)', minimum=0)
    access_log: str | None = setting(
        None,
        "access log, one JSON line per request: a file, '-' for standard error, or 'off' (default: "
        'DATA_DIR/logs/access.jsonl)')
    audit_log: str | None = setting(
        None,
        "audit log, one JSON line per granted access to restricted material: a file, '-' for standard "
        "error, or 'off' (default: DATA_DIR/logs/audit.jsonl)")
    metrics_networks: tuple[str, ...] = setting(
        ("127.0.0.0/8", "::1/128"),
        'comma-separated CIDRs of the direct peers that may read /metrics')
    viewer_origins: tuple[str, ...] = setting(
        (),
        'origins of viewer pages that receive access tokens, comma-separated, e.g. '
        "https://viewer.example.org (the server's own origin always does)")
    viewer_url: str = setting(
        DEFAULT_VIEWER_URL,
        'URL of the Mirador script the viewer page behind / loads (default: Mirador 4 from a public '
        'CDN; point it at your own copy to serve no third-party script)')
    uv_url: str = setting(
        DEFAULT_UV_URL,
        "URL of the folder of Universal Viewer 4's files (its dist: uv.css, umd/UV.js) that the /uv page "
        'loads (default: from a public CDN; point it at your own copy to serve no third-party script)')
    allowed_hosts: tuple[str, ...] = setting(
        (),
        'host names (or host:port) the server answers to, comma-separated; other Host headers get 400 '
        '(default: any when --base-url is set, since the Host is then used nowhere; else localhost '
        'and the address connected to)')
    max_head_bytes: int = setting(
        32 * 1024,
        'largest request head (request line and headers together) in bytes; larger: 431', minimum=1024)
    max_url_bytes: int = setting(8 * 1024, 'longest URL in bytes; longer: 414', minimum=256)
    max_header_fields: int = setting(100, 'most header fields in one request; more: 431', minimum=1)
    head_timeout: int = setting(
        10,
        'seconds a client may take from the first byte of a request to the end of its headers; then '
        '408', minimum=1)
    max_form_bytes: int = setting(
        16 * 1024,
        'largest sign-in form body (reading-room and staff sign-in) in bytes; larger: 413', minimum=1024)
    form_timeout: int = setting(
        10,
        'seconds a sign-in form body may take to arrive; then 408 (413 on the staff console)', minimum=1)
    keep_alive_timeout: int = setting(5, 'seconds an idle kept-alive connection stays open', minimum=1)
    s3_endpoint: str | None = setting(
        None,
        'S3 endpoint URL for s3:// images, e.g. http://127.0.0.1:8333 (default: AWS, or '
        'AWS_ENDPOINT_URL)')
    s3_region: str | None = setting(None, 'S3 region (default: AWS_REGION, or us-east-1)')
    s3_access_key_id: str | None = setting(
        None,
        'S3 access key id (default: AWS_ACCESS_KEY_ID or the AWS credential chain)')
    s3_secret_access_key: str | None = setting(
        None,
        'S3 secret access key, never logged (default: AWS_SECRET_ACCESS_KEY)', secret=True)
    s3_ttl: int = setting(
        10,
        "seconds an object's size and ETag are trusted before it is asked again: a replaced object is "
        'served within this time', minimum=0)
    s3_cache_mb: int = setting(
        128,
        'in-memory cache of S3 object blocks (TIFF directories, tiles) per process, in MB', minimum=1)
    untiled_memory_mb: int = setting(
        512,
        'memory per process for decoded levels of untiled images (JPEG, PNG, stripped TIFF), in MB: a '
        'level that does not fit is refused with advice to ingest', minimum=1)
    oidc_issuer: str | None = setting(
        None,
        "OpenID Connect issuer URL the staff console signs in with, e.g. "
        "https://login.example.org/realms/archive (its /.well-known/openid-configuration is read)")
    oidc_client_id: str | None = setting(None, "the console's client id at the OpenID provider")
    oidc_client_secret: str | None = setting(
        None,
        'its client secret, never logged or shown (better: --oidc-client-secret-file)', secret=True)
    oidc_client_secret_file: Path | None = setting(None, 'file holding the client secret', path="file")
    oidc_scopes: tuple[str, ...] = setting(
        ("openid", "profile", "email"), 'scopes asked for at sign-in, comma-separated (openid always)')
    oidc_roles_claim: str = setting(
        "roles",
        'claim that carries the roles, from the ID token or else the userinfo answer; dots reach into '
        'objects (realm_access.roles)')
    oidc_role_map: tuple[str, ...] = setting(
        (),
        "claim values that give console roles, VALUE=ROLE, comma-separated (roles: admin, archivist, "
        "reading-room, auditor); without any, values named like the roles give them")
    oidc_label: str = setting("your institution's account", "what the sign-in button names: 'Sign in with ...'")
    token_sign_in: bool = setting(
        True,
        'the console\'s emergency door: sign-in with a staff token, or from the staff network, as admin '
        '(1/0; 0 leaves only OpenID Connect)')
    masters_root: Path | None = setting(
        None,
        'folder of archival masters below which the staff console may start ingests (default: none, '
        'ingest from the command line only)', path="folder")
    ingest_workers: int = setting(
        1, 'worker processes converting masters in an ingest started from the console', minimum=1, maximum=64)

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
        check_bounds(self)
        check_proxies(self.trusted_proxies, self.proxy_hops, self.networks)
        check_sign_in(self)

    def oidc_secret(self) -> str | None:
        """The client secret: given, or read from its file (None: a public client, PKCE alone)."""
        if self.oidc_client_secret:
            return self.oidc_client_secret
        if self.oidc_client_secret_file is not None:
            secret = self.oidc_client_secret_file.read_text(encoding="utf-8").strip()
            if not secret:
                raise ValueError(f"the client secret file {self.oidc_client_secret_file} is empty")
            return secret
        return None

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
        tier, cidr, _ = network_rule(rule)
        try:
            clients = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue  # said where the rules are parsed
        for net in trusted:
            if clients.version == net.version and clients.overlaps(net):
                raise ValueError(
                    f"network rule {rule.strip()} overlaps trusted proxy {net}: a client there could pass for any "
                    "address. Trust the proxies' own addresses only, outside every client network")


def check_sign_in(settings: Settings) -> None:
    """The console keeps a way in, and an OpenID issuer comes with its client id (ValueError saying what)."""
    if settings.oidc_issuer:
        parts = urlsplit(settings.oidc_issuer)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"oidc_issuer must be an http(s) URL without query, not {settings.oidc_issuer!r}")
        if not settings.oidc_client_id:
            raise ValueError("oidc_issuer needs oidc_client_id: the console's client id at that provider")
    elif not settings.token_sign_in:
        raise ValueError("token_sign_in is off and no oidc_issuer is set: nobody could sign in to the console")
    for rule in settings.oidc_role_map:
        value, sep, role = rule.rpartition("=")
        if not sep or not value.strip() or not role.strip():
            raise ValueError(f"oidc_role_map entries are VALUE=ROLE, not {rule!r}")


def network_rule(rule: str) -> tuple[str, str, str | None]:
    """`TIER=CIDR "Institution"` as (tier, CIDR, institution or None); ValueError when the name is not quoted."""
    tier, _, rest = rule.partition("=")
    cidr, _, name = rest.strip().partition(" ")
    name = name.strip()
    if name and not (len(name) >= 3 and name[0] == name[-1] == '"'):
        raise ValueError(f'network rule {rule.strip()!r}: put the institution\'s name in double quotes, '
                         'e.g. reading-room=192.0.2.0/24 "Partner archive X"')
    return tier.strip(), cidr.strip(), name[1:-1].strip() or None if name else None


def split_list(text: str) -> list[str]:
    """A comma-separated list whose items may hold commas inside double quotes (an institution's name)."""
    items, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append(current)
            current = ""
        else:
            current += char
    return [*items, current]


def check_origin(origin: str) -> str:
    """`scheme://host[:port]`, lower case, no path: what browsers send as an origin."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _convert(name: str, raw: Any) -> Any:
    """A value from the TOML file, the environment or the command line, as the field's type."""
    kind = str(FIELDS[name].type)
    if raw is None:
        return None
    if name == "images" and str(raw).startswith("s3://"):
        return str(raw)
    if "Path" in kind:
        return Path(os.path.expanduser(str(raw)))
    if "tuple" in kind:
        items = raw if isinstance(raw, list) else split_list(str(raw))
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


def check_bounds(settings: Settings) -> None:
    """Every integer setting within its declared bounds, whichever source gave it (ValueError saying which)."""
    for name, f in FIELDS.items():
        value = getattr(settings, name)
        low, high = f.metadata.get("minimum"), f.metadata.get("maximum")
        if isinstance(value, int) and not isinstance(value, bool):
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = f"between {low} and {high}" if low is not None and high is not None else (
                    f"at least {low}" if low is not None else f"at most {high}")
                raise ValueError(f"{name} must be {bounds}, not {value}")


def load(cli: dict[str, Any] | None = None, config_file: str | os.PathLike[str] | None = None) -> Settings:
    """Merge defaults, the TOML file, the environment and CLI values (None = unset)."""
    values: dict[str, Any] = {}
    config_file = config_file or os.environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        with open(config_file, "rb") as fh:
            data = tomllib.load(fh)
        unknown = set(data) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown settings in {config_file}: {', '.join(sorted(unknown))}")
        values.update({k: _convert(k, v) for k, v in data.items()})
    for name in FIELDS:
        raw = os.environ.get(env_name(name))
        if raw is not None and raw != "":
            values[name] = _convert(name, raw)
    for name, raw in (cli or {}).items():
        if raw is not None:
            values[name] = _convert(name, raw)
    return Settings(**values)


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def reference() -> list[dict[str, Any]]:
    """Every setting as the documentation lists it: option, variable, TOML key, type, default, bounds, help."""
    out = []
    for name, f in FIELDS.items():
        default = f.default if f.default is not dataclasses.MISSING else None  # made at start (data dir)
        out.append({"name": name, "option": option_name(name), "env": env_name(name), "toml": name,
                    "type": str(f.type), "default": default, "minimum": f.metadata.get("minimum"),
                    "maximum": f.metadata.get("maximum"), "help": f.metadata.get("help", ""),
                    "secret": f.metadata.get("secret", False)})
    return out


FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Settings)}
