"""8-bit JPEG 2000 masters are decoded through imagecodecs' OpenJPEG (the [jp2] extra) where libvips cannot read
JPEG 2000 itself: Pillow's pixels for 2-2.7x less CPU (bench/jp2_decode.py; issue 24)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iiif_server.ingest import convert


def jp2(folder: Path, mode: str, lossless: bool) -> Path:
    from PIL import Image as PILImage

    y, x = np.mgrid[0:600, 0:800]
    planes = [(x * 7 + y) % 256, (y * 3) % 256, (x ^ y) % 256, (x + 2 * y) % 256]
    pixels = np.stack(planes[: len(mode)], axis=2).astype(np.uint8) if len(mode) > 1 else planes[0].astype(np.uint8)
    path = folder / f"{mode}-{lossless}.jp2"
    options = {"irreversible": not lossless, "num_resolutions": 4}
    if not lossless:
        options |= {"quality_mode": "rates", "quality_layers": [12]}
    PILImage.fromarray(pixels, mode).save(path, **options)
    return path


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
@pytest.mark.parametrize("lossless", [True, False])
def test_an_8_bit_master_gives_pillows_pixels_without_pillow(mode: str, lossless: bool, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("imagecodecs")
    if convert.jp2_loads():
        pytest.skip("this libvips reads JPEG 2000 itself")
    path = jp2(tmp_path, mode, lossless)
    pillow = convert._pillow_load(path, 0)

    def refuse(*_args: object) -> None:
        raise AssertionError("decoded through Pillow")

    monkeypatch.setattr(convert, "_pillow_load", refuse)
    img = convert.open_master(path, 0)
    assert (img.width, img.height, img.bands, img.format) == (pillow.width, pillow.height, pillow.bands, "uchar")
    assert img.interpretation == pillow.interpretation == "srgb"
    assert (img.cast("short") - pillow.cast("short")).abs().max() == 0


def test_a_damaged_master_falls_back_to_pillow_which_says_why(tmp_path: Path) -> None:
    """imagecodecs' own error never leaks: the reading that explains a damaged file is Pillow's, as before."""
    path = jp2(tmp_path, "RGB", False)
    path.write_bytes(path.read_bytes()[: 2000])  # cut short: its codestream ends early
    assert convert.jp2_whole(path) is None
    with pytest.raises(OSError, match="broken data stream"):
        convert.open_master(path, 0).avg()
