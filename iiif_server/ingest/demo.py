"""The built-in demo collection, generated and ingested on first start so a bare install shows real images."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pyvips

if TYPE_CHECKING:
    from iiif_server.db.catalogue import Catalogue

SCAN_SIZE = (6000, 8000)
TILE = 256
PAPER = [236, 228, 208]
SQUARE_COLOURS = [
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 190],
]


def scan(width: int = SCAN_SIZE[0], height: int = SCAN_SIZE[1], seed: int = 1) -> pyvips.Image:
    """A typed-page look: paper, lines of 'words', a colour strip, noise; built lazily."""
    margin = width // 10
    cell = max(8, height // 160)
    cols, rows = (width - 2 * margin) // cell, (height - 2 * margin) // (2 * cell)
    # random ink cells, zoomed into word-like runs; only the top part of each line is inked
    words = pyvips.Image.gaussnoise(cols, rows, sigma=1, mean=0, seed=seed) > -0.5
    ink = words.zoom(cell, 2 * cell)
    stripe = (pyvips.Image.xyz(ink.width, ink.height)[1] % (2 * cell)) < (cell * 0.6)
    ink = (ink & stripe).embed(margin, margin, width, height)
    page = ink.ifthenelse([40, 38, 45], PAPER)
    strip_w = width // len(SQUARE_COLOURS)
    blocks = [(pyvips.Image.black(strip_w, margin // 3, bands=3) + c) for c in SQUARE_COLOURS]
    page = page.insert(pyvips.Image.arrayjoin(blocks), 0, height - margin // 2)
    noise = pyvips.Image.gaussnoise(width, height, sigma=5, mean=0, seed=seed)
    return (page + noise).cast("uchar").copy(interpretation="srgb")


def squares(side: int = 1000) -> pyvips.Image:
    """Ten by ten coloured squares: every region shows as a known colour."""
    cell = side // 10
    blocks = [pyvips.Image.black(cell, cell, bands=3) + SQUARE_COLOURS[(row + col) % 10]
              for row in range(10) for col in range(10)]
    return pyvips.Image.arrayjoin(blocks, across=10).cast("uchar").copy(interpretation="srgb")


def write_masters(folder: Path) -> None:
    """Archival-master-like files for the demo collection, one folder per document."""
    letter = folder / "letter"
    letter.mkdir(parents=True, exist_ok=True)
    scan().tiffsave(str(letter / "p1.tif"), tile=True, tile_width=TILE, tile_height=TILE, pyramid=True,
                    compression="jpeg", Q=90)
    scan(3000, 4000, seed=2).jpegsave(str(letter / "p2.jpg"), Q=90)
    (folder / "colour-chart").mkdir(exist_ok=True)
    squares().pngsave(str(folder / "colour-chart" / "chart.png"))
    gradient = pyvips.Image.xyz(3000, 2000)
    photo = ((gradient[0] / 12) + [0, 80, 160]).bandjoin(gradient[1] / 8).extract_band(0, n=3)
    photo.cast("uchar").copy(interpretation="srgb").jpegsave(str(folder / "photograph.jpg"), Q=90)
    squares(800).colourspace("b-w").pngsave(str(folder / "portrait-grey.png"))


DEMO_METADATA = """id,label,date,Type
letter,A typed letter (generated),1943-05-12,Correspondence
colour-chart,Colour chart (generated),2020,Calibration target
photograph,Photograph (generated),1938,Photograph
portrait-grey,Portrait (generated),1941-02,Portrait
"""


def install(catalogue: Catalogue, image_root: Path, data_dir: Path) -> None:
    """Ingest the generated demo collection `demo` (only into an empty catalogue)."""
    from iiif_server.ingest.run import Ingest

    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".demo-") as tmp:
        masters = Path(tmp) / "masters"
        write_masters(masters)
        csv = Path(tmp) / "metadata.csv"
        csv.write_text(DEMO_METADATA)
        Ingest(catalogue, image_root, "demo", label="Demo collection").run(masters, csv)
