"""Manifest benchmark: a 10,000-page collection, cold and cached, through the app.

Fills a SQLite catalogue with one collection of 100 documents x 100 pages,
then asks the ASGI app for the collection manifest: cold (the catalogue
changed, so nothing cached may answer) and cached (same revision), and for
comparison builds the same canvases through fully validated iiif-prezi3
models. Prints medians.

    python bench/manifests.py [--pages 10000] [--rounds 5]

Results, with the command that produced them: docs/benchmarks.md, "Manifests".
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from iiif_server import config  # noqa: E402
from iiif_server.db.catalogue import Catalogue  # noqa: E402
from iiif_server.db.models import Collection, Document, Image  # noqa: E402
from iiif_server.manifests import presentation  # noqa: E402
from iiif_server.web.app import create_app  # noqa: E402

PER_DOCUMENT = 100


def fill(catalogue: Catalogue, pages: int) -> None:
    with catalogue.session() as s:
        s.add(Collection(id="big", label="A large collection", tier="public", metadata_pairs=[["Extent", "large"]]))
        s.flush()
        for d in range(pages // PER_DOCUMENT):
            doc = Document(collection_id="big", ident=f"doc{d:04d}", label=f"Document {d}", position=d,
                           metadata_pairs=[])
            s.add(doc)
            s.flush()
            s.add_all(
                Image(document_pk=doc.pk, ident=f"p{p:03d}", position=p, label=str(p + 1), width=6000, height=8000,
                      checksum="0" * 64, source_path=f"/masters/{d}/{p}.tif", source_size=1, source_mtime=0.0)
                for p in range(PER_DOCUMENT)
            )


async def timed_get(client: httpx.AsyncClient, url: str) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = await client.get(url)
    return time.perf_counter() - t0, r


async def measure(app: object, catalogue: Catalogue, rounds: int) -> tuple[list[float], list[float], int]:
    cold, cached = [], []
    size = 0
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(rounds):
            with catalogue.session() as s:
                catalogue.touch(s, "big")  # a catalogue change: the next request must rebuild
            seconds, r = await timed_get(client, "/iiif/presentation/big/manifest")
            assert r.status_code == 200, r.text
            size = len(r.content)
            cold.append(seconds)
            for _ in range(20):
                seconds, r = await timed_get(client, "/iiif/presentation/big/manifest")
                assert r.status_code == 200
                cached.append(seconds)
    return cold, cached, size


def validated_models_seconds(catalogue: Catalogue, pages: int) -> float:
    """The same canvases built through validated iiif-prezi3 models, for comparison."""
    urls = presentation.Urls("http://bench")
    rows = catalogue.pages("big")[:pages]
    t0 = time.perf_counter()
    for row in rows:
        presentation.canvas_model(urls, "big", row, "en").jsonld()
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = config.Settings(data_dir=Path(tmp), images=Path(tmp) / "images", demo=False)
        app = create_app(settings)
        catalogue = Catalogue(settings.database_url)
        fill(catalogue, args.pages)
        cold, cached, size = asyncio.run(measure(app, catalogue, args.rounds))
        sample = min(1000, args.pages)
        models = validated_models_seconds(catalogue, sample) * args.pages / sample
        print(f"collection manifest, {args.pages} pages, {size / 1e6:.1f} MB")
        print(f"cold:   median {statistics.median(cold) * 1000:.0f} ms over {len(cold)} rebuilds "
              f"(min {min(cold) * 1000:.0f}, max {max(cold) * 1000:.0f})")
        print(f"cached: median {statistics.median(cached) * 1000:.2f} ms over {len(cached)} requests")
        print(f"validated iiif-prezi3 canvases alone, same pages: {models * 1000:.0f} ms "
              f"({models / statistics.median(cold):.1f}x the cold request)")
        catalogue.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
