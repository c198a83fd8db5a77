"""Access copies sized on purpose (quality, chroma subsampling) and JPEG 2000 masters with the default install."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile
from click.testing import CliRunner
from PIL import Image as PILImage
from support import FIXTURES

from iiif_server.cli import main
from iiif_server.db.catalogue import Catalogue
from iiif_server.ingest.convert import ACCESS_QUALITY, open_master
from iiif_server.ingest.run import Ingest

pytestmark = pytest.mark.libvips  # ingest conversion


def textured(width: int = 512, height: int = 384) -> pyvips.Image:
    """Colour detail that chroma subsampling and quality change the size of."""
    noise = [pyvips.Image.gaussnoise(width, height, sigma=40, mean=128) for _ in range(3)]
    return noise[0].bandjoin(noise[1:]).cast("uchar").copy(interpretation="srgb")


def tiff_first_page(path: Path) -> tuple[int, list[int], int]:
    """Photometric, the sampling factors of the first tile's JPEG (one byte per component), file bytes."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        tif.filehandle.seek(page.dataoffsets[0])
        tile = tif.filehandle.read(page.databytecounts[0])
        sof = tile.index(b"\xff\xc0")
        count = tile[sof + 9]
        factors = [tile[sof + 10 + 3 * n + 1] for n in range(count)]
        return int(page.photometric), factors, path.stat().st_size


def test_default_access_copy_is_ycbcr_420_and_a_third_of_an_unsubsampled_one(catalogue: Catalogue,
                                                                             tmp_path: Path) -> None:
    src = tmp_path / "masters"
    src.mkdir()
    textured().pngsave(str(src / "page.png"))
    root = tmp_path / "images"
    assert Ingest(catalogue, root, "small", workers=1).run(src).converted == 1
    assert Ingest(catalogue, root, "full", workers=1, quality=90, subsample=False).run(src).converted == 1
    photometric, sub, small = tiff_first_page(root / "small" / "page" / "page.tif")
    assert (photometric, sub) == (6, [0x22, 0x11, 0x11])  # YCbCr, chroma halved both ways (4:2:0)
    photometric, sub, full = tiff_first_page(root / "full" / "page" / "page.tif")
    assert (photometric, sub) == (2, [0x11, 0x11, 0x11])  # RGB-coded JPEG: no subsampling
    assert full > 2 * small
    assert ACCESS_QUALITY < 90


def test_quality_changes_the_size_and_is_kept_per_ingest(catalogue: Catalogue, tmp_path: Path) -> None:
    src = tmp_path / "masters"
    src.mkdir()
    textured().pngsave(str(src / "page.png"))
    root = tmp_path / "images"
    Ingest(catalogue, root, "low", workers=1, quality=60).run(src)
    Ingest(catalogue, root, "high", workers=1, quality=89).run(src)
    low, high = (tiff_first_page(root / name / "page" / "page.tif")[2] for name in ("low", "high"))
    assert low < 0.7 * high


def test_subsampling_at_quality_90_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    catalogue = Catalogue(f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(ValueError, match="below quality 90"):
        Ingest(catalogue, tmp_path / "images", "c", quality=90)
    with pytest.raises(ValueError, match="only from quality 90"):
        Ingest(catalogue, tmp_path / "images", "c", quality=85, subsample=False)
    Ingest(catalogue, tmp_path / "images", "c", quality=95, subsample=False)  # RGB JPEG: allowed
    src = tmp_path / "masters"
    src.mkdir()
    textured(16, 16).pngsave(str(src / "p.png"))
    storage = ["--data-dir", str(tmp_path / "data"), "--images", str(tmp_path / "images"),
               "--database", f"sqlite:///{tmp_path / 'cli.db'}"]
    result = CliRunner().invoke(main, ["ingest", str(src), "--collection", "c", "--quality", "95", *storage])
    assert result.exit_code == 2 and "below quality 90" in result.output
    assert not (tmp_path / "images").exists()
    result = CliRunner().invoke(main, ["ingest", str(src), "--collection", "c", "--no-subsample", *storage])
    assert result.exit_code == 0, result.output
    assert tiff_first_page(tmp_path / "images" / "c" / "p" / "p.tif")[:2] == (2, [0x11, 0x11, 0x11])  # at 90


def write_jp2_masters(src: Path) -> None:
    """8-bit colour with 5 resolution levels, 16-bit grey, 16-bit colour (fixture)."""
    folder = src / "charter"
    folder.mkdir(parents=True)
    rgb = np.zeros((240, 320, 3), np.uint8)
    rgb[:, :160] = [200, 40, 30]
    rgb[:, 160:] = [20, 60, 220]
    PILImage.fromarray(rgb).save(folder / "p1.jp2", num_resolutions=5, irreversible=True, quality_layers=[20])
    grey = np.full((48, 64), 60000, np.uint16)
    grey[:, 32:] = 5000
    PILImage.fromarray(grey).save(folder / "p2.jp2", num_resolutions=3)
    shutil.copy(FIXTURES / "rgb16-lossless.jp2", folder / "p3.jp2")


def pixel(path: Path, x: int, y: int) -> list[float]:
    return list(pyvips.Image.new_from_file(str(path))(x, y))


def close(actual: list[float], expected: list[float], tolerance: float = 10) -> bool:
    return len(actual) == len(expected) and all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def test_jpeg2000_masters_8_and_16_bit_multiresolution_become_access_copies(catalogue: Catalogue,
                                                                           tmp_path: Path) -> None:
    src, root = tmp_path / "masters", tmp_path / "images"
    write_jp2_masters(src)
    report = Ingest(catalogue, root, "jp2", workers=1).run(src)
    assert (report.converted, report.failed) == (3, [])
    folder = root / "jp2" / "charter"
    p1 = pyvips.Image.new_from_file(str(folder / "p1.tif"))
    assert (p1.width, p1.height) == (320, 240)  # the full resolution, not a reduced level
    assert close(pixel(folder / "p1.tif", 40, 120), [200, 40, 30])
    assert close(pixel(folder / "p1.tif", 280, 120), [20, 60, 220])
    p2 = pyvips.Image.new_from_file(str(folder / "p2.tif"))
    assert (p2.width, p2.height) == (64, 48)
    # 16-bit grey scaled to 8 bits (60000 / 257 = 233, 5000 / 257 = 19), not clipped to white
    assert abs(p2(8, 8)[0] - 233) <= 3 and abs(p2(56, 8)[0] - 19) <= 3
    assert close(pixel(folder / "p3.tif", 8, 8), [233, 47, 12])
    assert close(pixel(folder / "p3.tif", 56, 8), [8, 117, 195])


def test_jpeg2000_loads_whichever_way_the_installed_libvips_allows() -> None:
    img = open_master(FIXTURES / "rgb16-lossless.jp2", 0)
    assert (img.width, img.height) == (64, 48)
