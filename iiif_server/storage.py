"""Object storage (S3 and compatible servers): where `--images s3://bucket/prefix` points.

Only the connection and the atomic upload live here; reading images is the tile
source's business (tiles/objectsource.py). The client is obstore (Rust's
object_store crate): ranged and conditional GETs, multipart uploads, retries and
the usual AWS credential chain, released GIL, no event loop of its own to manage.
Credentials come from the settings or the standard AWS_* variables and are never
put in a message: errors name the endpoint, bucket and key at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from iiif_server.config import Settings

SCHEME = "s3://"
# a tile request waits for storage, not for minutes of retries
RETRIES = {"max_retries": 2, "retry_timeout": timedelta(seconds=10)}
TIMEOUTS = {"connect_timeout": "5s", "timeout": "30s"}


def is_object_url(images: object) -> bool:
    return isinstance(images, str) and images.startswith(SCHEME)


@dataclass(frozen=True)
class Location:
    bucket: str
    prefix: str  # without leading or trailing "/"; "" for the bucket's root

    @classmethod
    def parse(cls, url: str) -> Location:
        if not is_object_url(url):
            raise ValueError(f"not an {SCHEME} URL: {url!r}")
        bucket, _, prefix = url[len(SCHEME) :].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {url!r}")
        return cls(bucket, prefix.strip("/"))

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}".rstrip("/")


def open_store(url: str, settings: Settings) -> Any:
    """An obstore S3Store rooted at the URL's prefix; settings override the AWS_* environment."""
    from obstore.store import S3Store

    location = Location.parse(url)
    config: dict[str, Any] = {}
    if settings.s3_endpoint:
        config["endpoint"] = settings.s3_endpoint
    if settings.s3_region:
        config["region"] = settings.s3_region
    if settings.s3_access_key_id:
        config["access_key_id"] = settings.s3_access_key_id
    if settings.s3_secret_access_key:
        config["secret_access_key"] = settings.s3_secret_access_key
    endpoint = settings.s3_endpoint or ""
    client = {**TIMEOUTS, "allow_http": endpoint.startswith("http://")}
    return S3Store(location.bucket, prefix=location.prefix or None, config=config,  # type: ignore[arg-type]
                   client_options=client, retry_config=RETRIES)  # type: ignore[arg-type]


def upload(store: Any, local: Path, key: str) -> None:
    """Publish a finished local file as `key`: S3 shows an object only once its PUT (or its
    multipart upload) completes, so readers see the old object or the new one, never a part."""
    import obstore

    obstore.put(store, key, local)


class ObjectTarget:
    """Access copies bound for a bucket: ingest writes each to a local staging folder as usual
    (temporary file, rename), then `publish` uploads it and removes the local copy.

    Picklable for ingest's worker processes: it carries the URL and settings, and each
    process opens its own client on first use."""

    def __init__(self, url: str, settings: Settings, staging: Path) -> None:
        self.url, self.settings, self.staging = url, settings, staging
        self._store: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_store": None}

    @property
    def store(self) -> Any:
        if self._store is None:
            self._store = open_store(self.url, self.settings)
        return self._store

    def local(self, relative: str) -> Path:
        """Where ingest writes the copy `collection/document/page.tif` before it is published."""
        return self.staging / relative

    def exists(self, relative: str) -> bool:
        import obstore

        try:
            obstore.head(self.store, relative)
        except FileNotFoundError:
            return False
        return True

    def publish(self, relative: str) -> None:
        local = self.local(relative)
        upload(self.store, local, relative)
        local.unlink()

    def names(self, prefix: str) -> set[str]:
        """The names of the objects directly under `prefix` (one listing, as a folder's)."""
        import obstore

        found: set[str] = set()
        for batch in obstore.list(self.store, prefix=prefix):
            found.update(item["path"].rsplit("/", 1)[-1] for item in batch)
        return found

    def publish_file(self, local: Path, relative: str) -> None:
        """Upload a finished copy from anywhere on disk as `relative`, then remove the local file."""
        upload(self.store, local, relative)
        local.unlink()
